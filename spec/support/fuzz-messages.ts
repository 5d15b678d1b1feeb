/**
 * What a fuzzer sends a qam server or proxy: fast-check arbitraries for request and reply
 * deliveries of both wire formats (qam's own, "native", and Python QAM's, "qam"), random and
 * mutated from valid messages, and an oracle, written from the wire format rather than from lib/,
 * that says which of them must, may or cannot be answered.
 *
 * Reply addresses are symbolic ({@link ReplyAddress}) because the names are made per run; the
 * harness turns them into the names it declared.
 */
import fc from 'fast-check';
import { superjson } from '../../lib/index.js';

export type FuzzProtocol = 'native' | 'qam';

/** `maxMessageBytes` of the fuzzed servers and proxies: small, so that the limit is met often. */
export const fuzzMaxBytes = 16 * 1024;

/** An expiration at least this long (ms) outlasts any fuzz run: the request must be answered. */
export const longExpiration = 3_600_000;

/** Where a native request asks for its reply, before the harness names it. */
export type ReplyAddress =
  /** RabbitMQ's direct reply-to, on the channel that publishes */
  | { kind: 'direct' }
  /** a callme client exchange the harness declared */
  | { kind: 'callme' }
  /** no reply_to property */
  | { kind: 'none' }
  /** a reply_to that names no reply route at all: neither direct reply-to nor a callme client exchange */
  | { kind: 'inert'; value: string }
  /**
   * A reply_to that looks like a reply route but is none a broker accepts (issue 10 item 1): a
   * malformed direct reply-to address, or a callme client exchange that does not exist.
   */
  | { kind: 'hostile'; value: string };

/** The AMQP properties a publisher sets, with the reply address still symbolic. */
export interface FuzzProperties {
  contentType?: string;
  contentEncoding?: string;
  correlationId?: string;
  replyTo: ReplyAddress;
  expiration?: string;
  headers?: Record<string, unknown>;
  messageId?: string;
  type?: string;
  appId?: string;
  timestamp?: number;
  priority?: number;
  deliveryMode?: 1 | 2;
}

/** How a body was made, for the figures. */
export type Origin = 'valid' | 'mutated' | 'random';

/** One fuzzed request. For 'qam', the reply address is the body's `routing_key`; `replyTo` is then ignored. */
export interface FuzzRequest {
  protocol: FuzzProtocol;
  origin: Origin;
  body: Buffer;
  properties: FuzzProperties;
  /** Only for the in-process level: amqplib's `fields.redelivered`. */
  redelivered: boolean;
}

/** The registered API the fuzzed servers serve (see fuzz-api.ts): method paths that may run. */
export const registeredPaths = [
  'echo',
  'add',
  'throws',
  'later',
  'whoami',
  'calc.mul',
  'calc.echo',
  'calc.fail',
  'calc.base_method',
  'calc.arrow',
  'calc.accessor',
] as const;

/**
 * Paths that reach something that is not registered: JavaScript's own members at every level, the
 * instance's hidden names (canaries that count if they ever run), members of the registered
 * functions, and paths of other depths.
 */
export const forbiddenPaths = [
  'constructor',
  '__proto__',
  'prototype',
  'toString',
  'valueOf',
  'hasOwnProperty',
  'isPrototypeOf',
  '__defineGetter__',
  '__lookupGetter__',
  'toLocaleString',
  'calc',
  'calc.constructor',
  'calc.__proto__',
  'calc.toString',
  'calc.hasOwnProperty',
  'calc._secret',
  'calc._hidden',
  'calc.prop',
  'calc.create',
  'calc.prototype',
  'echo.call',
  'echo.apply',
  'echo.bind',
  'echo.secret',
  'echo.constructor',
  'add.__proto__',
  'calc.mul.call',
  'calc.mul.constructor',
  'a.b.c',
  'calc.',
  '.echo',
  '.',
  '',
  'echo\nserver x refused a request: forged line',
  'Echo',
  'echo ',
];

const hostileKeys = [
  '__proto__',
  'constructor',
  'prototype',
  'then',
  'toString',
  'valueOf',
  'method',
  'params',
  'deadline',
  'id',
  'routing_key',
  'method_name',
  'result',
  'error',
  'json',
  'meta',
];

/** Byte strings that break parsers: structure, numbers at the edges, escapes, invalid UTF-8, pollution. */
const tokens: Buffer[] = [
  ...[
    '{',
    '}',
    '[',
    ']',
    '"',
    '\\',
    ',',
    ':',
    'null',
    'true',
    'false',
    '1e999',
    '-0',
    '9007199254740993',
    '1.5',
    '-1',
    '"\\u0000"',
    '"\\ud800"',
    '"__proto__"',
    '{"__proto__":{"polluted":1}}',
    '{"constructor":{"prototype":{"polluted":1}}}',
    ' ',
    '\n',
    '\u2028',
  ].map((text) => Buffer.from(text)),
  Buffer.from([0xff]),
  Buffer.from([0xc0, 0x80]),
  Buffer.from([0xed, 0xa0, 0x80]),
  Buffer.from([0xef, 0xbb, 0xbf]),
  Buffer.from([0x00]),
];

const anyString = fc.string({ unit: 'binary', maxLength: 40 });

const methodArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...registeredPaths) },
  { weight: 3, arbitrary: fc.constantFrom(...forbiddenPaths) },
  { weight: 1, arbitrary: anyString },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.constantFrom(...registeredPaths, ...forbiddenPaths), fc.constantFrom('.', '..', '\u0000', '\r\n', ' '), anyString)
      .map(([a, b, c]) => a + b + c),
  },
  { weight: 1, arbitrary: fc.integer({ min: 256, max: 2000 }).map((n) => 'e'.repeat(n)) },
);

const jsonArb = fc.jsonValue({ maxDepth: 3 });

/** A JSON value nested `depth` levels deep, as text (too deep for a recursive parser or printer). */
const deepJsonText = fc
  .tuple(fc.integer({ min: 100, max: 20_000 }), fc.constantFrom('[', '{"a":'))
  .map(([depth, open]) => open.repeat(depth) + '1' + (open === '[' ? ']' : '}').repeat(depth));

/** What a native request may carry as `deadline`: none, ahead, passed, or no number at all. */
const deadlineArb: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: fc.constant(undefined) },
  { weight: 2, arbitrary: fc.integer({ min: 60_000, max: 3_600_000 }).map((ahead) => Date.now() + ahead) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 1_000_000 }).map((ago) => Date.now() - ago) },
  { weight: 1, arbitrary: fc.constantFrom<unknown>(0, -1, 1e308, -1e308, 'soon', null, [], {}, true, 8.64e15 + 1) },
);

/** Extra top-level keys, hostile ones included. */
const extraKeys = fc.dictionary(fc.constantFrom(...hostileKeys, 'extra', 'x'), jsonArb, { maxKeys: 2 });

function withoutUndefined(record: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(record).filter(([, value]) => value !== undefined));
}

/** A well-formed native JSON request, sometimes with extra keys. */
const nativeJsonEnvelope = fc
  .record({ method: methodArb, params: fc.array(jsonArb, { maxLength: 4 }), deadline: deadlineArb, extra: extraKeys })
  .map(({ method, params, deadline, extra }) => JSON.stringify({ ...extra, ...withoutUndefined({ method, params, deadline }) }));

/** Values superjson gives types to: dates, maps, sets, bigints, undefined, special numbers, typed arrays. */
const richValue = fc.anything({
  maxDepth: 2,
  maxKeys: 3,
  withMap: true,
  withSet: true,
  withDate: true,
  withBigInt: true,
  withTypedArray: true,
  withSparseArray: true,
});

/**
 * `value` as superjson text. superjson refuses to encode some values (objects with a
 * `constructor` key, say) that a hostile peer sends anyway: those go as superjson's plain form.
 */
function superjsonText(value: unknown): string {
  try {
    return superjson.stringify(value);
  } catch {
    return JSON.stringify({ json: value }) ?? '{"json":null}';
  }
}

/** A well-formed native superjson request. */
const nativeSuperjsonEnvelope = fc
  .record({ method: methodArb, params: fc.array(fc.oneof(richValue, jsonArb), { maxLength: 3 }), deadline: deadlineArb })
  .map(({ method, params, deadline }) => superjsonText(withoutUndefined({ method, params, deadline })));

/** superjson paths and annotations chosen to pollute, confuse or expand what the decoder builds. */
const superjsonPath = fc.constantFrom(
  '__proto__',
  '__proto__.polluted',
  'constructor.prototype.polluted',
  'method',
  'params',
  'params.0',
  'params.0.__proto__',
  'params.1',
  'deadline',
  'json',
  '',
  '.',
);
/** The type names superjson annotates values with, its own and qam's custom ones, and unknown ones. */
const superjsonType = fc.constantFrom<unknown>(
  'undefined',
  'Date',
  'regexp',
  'set',
  'map',
  'bigint',
  'number',
  'Error',
  'URL',
  'typed-array',
  'nope',
  ['class', 'Nope'],
  ['symbol', 'nope'],
  ['custom', 'Buffer'],
  ['custom', 'TypedArray'],
  ['custom', 'BigInt'],
  ['custom', 'Nope'],
);

/**
 * A node of superjson's annotation tree: mostly well-formed (`[type]`, or `[type, children]`), and
 * sometimes what superjson never writes (a bare type name, an empty array, an object, null).
 */
const superjsonAnnotation: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 6, arbitrary: superjsonType.map((type) => [type]) },
  {
    weight: 1,
    arbitrary: fc.tuple(
      superjsonType,
      fc.dictionary(
        fc.constantFrom('0', '1', '0.0', '__proto__'),
        superjsonType.map((type) => [type]),
        { maxKeys: 2 },
      ),
    ),
  },
  { weight: 1, arbitrary: fc.oneof(superjsonType, fc.constantFrom<unknown>([], {}, null, 1)) },
);

/** A superjson body whose meta names hostile paths, unknown annotations and back-references. */
const hostileSuperjsonEnvelope = fc
  .record({
    method: methodArb,
    params: fc.array(jsonArb, { maxLength: 3 }),
    values: fc.dictionary(superjsonPath, superjsonAnnotation, { maxKeys: 3 }),
    equalities: fc.option(fc.dictionary(superjsonPath, fc.array(superjsonPath, { maxLength: 3 }), { maxKeys: 2 }), { nil: undefined }),
  })
  .map(({ method, params, values, equalities }) =>
    JSON.stringify({ json: { method, params }, meta: withoutUndefined({ values, referentialEqualities: equalities, v: 1 }) }),
  );

/** A well-formed QAM request body; its id and routing key vary around the valid ones. */
function qamEnvelope(routingKey: string): fc.Arbitrary<string> {
  const id = fc.oneof(
    { weight: 6, arbitrary: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }) },
    { weight: 1, arbitrary: fc.constantFrom<unknown>(-1, 0, 2 ** 53, 2 ** 53 + 2, 1.5, -0, 1e308, '3', null, [], {}, true) },
  );
  const key = fc.oneof(
    { weight: 6, arbitrary: fc.constant<unknown>(routingKey) },
    { weight: 1, arbitrary: fc.constantFrom<unknown>('', null, 7, [routingKey], `${routingKey} `, 'k'.repeat(300), 'x'.repeat(255)) },
    { weight: 1, arbitrary: anyString },
  );
  return fc
    .record({
      id,
      method_name: methodArb,
      routing_key: key,
      params: fc.oneof({ weight: 6, arbitrary: fc.array(jsonArb, { maxLength: 4 }) }, { weight: 1, arbitrary: jsonArb }),
      extra: extraKeys,
    })
    .map(({ extra, ...body }) => JSON.stringify({ ...extra, ...body }));
}

/** One edit of a byte string. Positions are taken modulo the length, so any nat is a position. */
type Mutation =
  | { op: 'set'; at: number; byte: number }
  | { op: 'delete'; at: number; length: number }
  | { op: 'insert'; at: number; bytes: Buffer }
  | { op: 'truncate'; at: number }
  | { op: 'duplicate'; at: number; length: number }
  | { op: 'inject'; at: number; key: string; value: string };

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant('set' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ op: fc.constant('delete' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 16 }) }),
  fc.record({
    op: fc.constant('insert' as const),
    at: fc.nat(),
    bytes: fc.oneof(
      fc.constantFrom(...tokens),
      fc.uint8Array({ minLength: 1, maxLength: 8 }).map((bytes) => Buffer.from(bytes)),
    ),
  }),
  fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ op: fc.constant('duplicate' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 32 }) }),
  fc.record({
    op: fc.constant('inject' as const),
    at: fc.nat(),
    key: fc.constantFrom(...hostileKeys),
    value: fc.oneof(
      jsonArb.map((value) => JSON.stringify(value)),
      fc.constantFrom('{"polluted":1}', '{"prototype":{"polluted":1}}', '"echo"', '[]'),
    ),
  }),
);

function applyMutation(body: Buffer, mutation: Mutation): Buffer {
  const at = mutation.at % (body.length + 1);
  switch (mutation.op) {
    case 'set':
      if (body.length === 0) return body;
      return Buffer.concat([body.subarray(0, at % body.length), Buffer.from([mutation.byte]), body.subarray((at % body.length) + 1)]);
    case 'delete':
      return Buffer.concat([body.subarray(0, at), body.subarray(at + mutation.length)]);
    case 'insert':
      return Buffer.concat([body.subarray(0, at), mutation.bytes, body.subarray(at)]);
    case 'truncate':
      return body.subarray(0, at);
    case 'duplicate':
      return Buffer.concat([
        body.subarray(0, at + mutation.length),
        body.subarray(at, at + mutation.length),
        body.subarray(at + mutation.length),
      ]);
    case 'inject': {
      // After the n-th '{' (n from the position), where a key may begin.
      const opens = [...body.keys()].filter((index) => body[index] === 0x7b);
      if (opens.length === 0) return body;
      const open = opens[mutation.at % opens.length]! + 1;
      return Buffer.concat([
        body.subarray(0, open),
        Buffer.from(`${JSON.stringify(mutation.key)}:${mutation.value},`),
        body.subarray(open),
      ]);
    }
  }
}

/** `valid` bodies after one to four edits. */
function mutated(valid: fc.Arbitrary<string>): fc.Arbitrary<Buffer> {
  return fc
    .tuple(valid, fc.array(mutationArb, { minLength: 1, maxLength: 4 }))
    .map(([text, mutations]) => mutations.reduce(applyMutation, Buffer.from(text)));
}

/** Bodies that owe nothing to the format: random bytes, random text, random JSON, deep nesting. */
const randomBody: fc.Arbitrary<Buffer> = fc.oneof(
  fc.uint8Array({ maxLength: 200 }).map((bytes) => Buffer.from(bytes)),
  fc.string({ unit: 'binary', maxLength: 100 }).map((text) => Buffer.from(text)),
  fc.jsonValue({ maxDepth: 4 }).map((value) => Buffer.from(JSON.stringify(value))),
  deepJsonText.map((text) => Buffer.from(text)),
  fc
    .constantFrom('', 'null', '[]', '{}', '"method"', '{"method":null}', '{"json":null}', '{"json":{"method":"echo"},"meta":null}')
    .map((text) => Buffer.from(text)),
);

/** A body above the fuzzed servers' `maxMessageBytes` ({@link fuzzMaxBytes}). */
const oversizedBody: fc.Arbitrary<Buffer> = fc
  .integer({ min: 1, max: 4096 })
  .map((extra) => Buffer.from(JSON.stringify({ method: 'echo', params: ['x'.repeat(fuzzMaxBytes + extra)] })));

const contentTypes = [
  'application/json',
  'application/x-superjson',
  'application/json; charset=utf-8',
  'APPLICATION/JSON',
  'text/plain',
  'application/x-python-serialize',
  '',
  ' application/json',
];

function contentTypeArb(usual: string): fc.Arbitrary<string | undefined> {
  return fc.oneof(
    { weight: 8, arbitrary: fc.constant(usual) },
    { weight: 1, arbitrary: fc.constant(undefined) },
    { weight: 1, arbitrary: fc.constantFrom(...contentTypes) },
    { weight: 1, arbitrary: fc.string({ maxLength: 30 }) },
  );
}

/** Keys of header tables; amqplib reads a table with a `type` or `!` key as a typed value, not a table. */
const headerKey = fc.string({ minLength: 1, maxLength: 20 }).filter((key) => key !== 'type' && key !== '!');

/** Header tables as AMQP carries them: strings, integers, doubles, booleans, nested tables and arrays. */
const headerValue: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.string({ maxLength: 20 }),
    fc.integer(),
    fc.double({ min: -1e15, max: 1e15, noNaN: true }),
    fc.boolean(),
    fc.dictionary(headerKey, tie('value'), { maxKeys: 3, noNullPrototype: true }),
    fc.array(tie('value'), { maxLength: 3 }),
  ),
})).value;

const headersArb = fc.dictionary(
  fc.oneof(headerKey, fc.constantFrom('__proto__', 'constructor', 'x-death', 'x-first-death-reason')),
  headerValue,
  { maxKeys: 4, noNullPrototype: true },
);

/** An AMQP short string (at most 255 bytes) of any characters. */
const shortString = fc.string({ unit: 'binary', maxLength: 60 });

/**
 * Expirations: none, longer than any run, or short enough that the broker or the server may drop
 * the request (a server skips a call whose caller's deadline passed, and answers nothing).
 */
const expirationArb: fc.Arbitrary<string | undefined> = fc.oneof(
  { weight: 4, arbitrary: fc.constant(undefined) },
  { weight: 4, arbitrary: fc.integer({ min: longExpiration, max: 100 * longExpiration }).map(String) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 100_000 }).map(String) },
);

/** A reply_to of no reply route: safe for a server to ignore, unknown to every broker. */
const inertReplyTo = fc
  .oneof(
    shortString,
    fc.constantFrom('server_x_ex', 'amq.direct', 'amq.rabbitmq.trace', 'client_', 'client__ex_', 'client_x_ex_a b', 'reply'),
  )
  .filter((value) => !value.startsWith('amq.rabbitmq.reply-to') && !value.startsWith('client_'))
  .map((value): ReplyAddress => ({ kind: 'inert', value }));

/**
 * reply_to values that pass for reply routes and are refused by the broker: direct reply-to
 * addresses it cannot decode (the broker closes the publisher's connection, issue 10 item 1) and
 * callme client exchanges that do not exist (404 on the publisher's channel).
 */
export const hostileReplyTo: fc.Arbitrary<ReplyAddress> = fc
  .oneof(
    fc.constantFrom(
      'amq.rabbitmq.reply-to.AAAA.BBBB',
      'amq.rabbitmq.reply-to.g2gDZAAPYWR2QGxvY2FsaG9zdA.x',
      'amq.rabbitmq.reply-to.',
      'amq.rabbitmq.reply-to.....',
      'amq.rabbitmq.reply-tox',
    ),
    fc.string({ unit: 'binary-ascii', maxLength: 60 }).map((tail) => `amq.rabbitmq.reply-to.${tail}`),
    fc.stringMatching(/^[A-Za-z0-9-]{1,20}$/).map((tail) => `client_fuzz_ex_${tail}`),
  )
  .map((value): ReplyAddress => ({ kind: 'hostile', value }));

function propertiesArb(contentType: fc.Arbitrary<string | undefined>, replyTo: fc.Arbitrary<ReplyAddress>): fc.Arbitrary<FuzzProperties> {
  return fc
    .record(
      {
        contentType,
        contentEncoding: fc.constantFrom('utf-8', 'gzip', '', 'x'),
        correlationId: shortString,
        replyTo,
        expiration: expirationArb,
        headers: headersArb,
        messageId: shortString,
        type: shortString,
        appId: shortString,
        timestamp: fc.integer({ min: 0, max: 2 ** 40 }),
        priority: fc.integer({ min: 0, max: 9 }),
        deliveryMode: fc.constantFrom<1 | 2>(1, 2),
      },
      { requiredKeys: ['replyTo'] },
    )
    .map((properties) => withoutUndefined(properties) as unknown as FuzzProperties);
}

/** The reply addresses a request may carry; `hostile` ones only when asked for. */
export function replyToArb(hostile: boolean): fc.Arbitrary<ReplyAddress> {
  return fc.oneof(
    { weight: 5, arbitrary: fc.constant<ReplyAddress>({ kind: 'direct' }) },
    { weight: 3, arbitrary: fc.constant<ReplyAddress>({ kind: 'callme' }) },
    { weight: 1, arbitrary: fc.constant<ReplyAddress>({ kind: 'none' }) },
    { weight: 1, arbitrary: inertReplyTo },
    { weight: hostile ? 3 : 0, arbitrary: hostileReplyTo },
  );
}

export interface RequestOptions {
  /** The routing key QAM requests name as theirs when well-formed. */
  qamRoutingKey: string;
  /** Also send reply_to values a broker refuses (see {@link hostileReplyTo}). */
  hostileReplyTo?: boolean;
}

/** Fuzzed requests of qam's own protocol. */
export function nativeRequestArb(options: RequestOptions): fc.Arbitrary<FuzzRequest> {
  const replyTo = replyToArb(options.hostileReplyTo ?? false);
  const json = contentTypeArb('application/json');
  const sj = contentTypeArb('application/x-superjson');
  const made = (origin: Origin, body: fc.Arbitrary<Buffer>, contentType: fc.Arbitrary<string | undefined>): fc.Arbitrary<FuzzRequest> =>
    fc
      .record({ body, properties: propertiesArb(contentType, replyTo), redelivered: fc.boolean() })
      .map((parts) => ({ protocol: 'native' as const, origin, ...parts }));
  const text = (arb: fc.Arbitrary<string>): fc.Arbitrary<Buffer> => arb.map((value) => Buffer.from(value));
  return fc.oneof(
    { weight: 4, arbitrary: made('valid', text(nativeJsonEnvelope), json) },
    { weight: 2, arbitrary: made('valid', text(nativeSuperjsonEnvelope), sj) },
    { weight: 1, arbitrary: made('valid', text(hostileSuperjsonEnvelope), sj) },
    { weight: 1, arbitrary: made('valid', oversizedBody, json) },
    { weight: 3, arbitrary: made('mutated', mutated(nativeJsonEnvelope), json) },
    { weight: 2, arbitrary: made('mutated', mutated(fc.oneof(nativeSuperjsonEnvelope, hostileSuperjsonEnvelope)), sj) },
    { weight: 2, arbitrary: made('random', randomBody, fc.oneof(json, sj)) },
  );
}

/** Fuzzed requests of Python QAM's protocol. */
export function qamRequestArb(options: RequestOptions): fc.Arbitrary<FuzzRequest> {
  const replyTo = replyToArb(false);
  const contentType = contentTypeArb('application/json');
  const made = (origin: Origin, body: fc.Arbitrary<Buffer>): fc.Arbitrary<FuzzRequest> =>
    fc
      .record({ body, properties: propertiesArb(contentType, replyTo), redelivered: fc.boolean() })
      .map((parts) => ({ protocol: 'qam' as const, origin, ...parts }));
  const valid = qamEnvelope(options.qamRoutingKey);
  return fc.oneof(
    {
      weight: 5,
      arbitrary: made(
        'valid',
        valid.map((text) => Buffer.from(text)),
      ),
    },
    {
      weight: 1,
      arbitrary: made(
        'valid',
        fc.integer({ min: 1, max: 4096 }).map((extra) =>
          Buffer.from(
            JSON.stringify({
              id: 1,
              method_name: 'echo',
              routing_key: options.qamRoutingKey,
              params: ['x'.repeat(fuzzMaxBytes + extra)],
            }),
          ),
        ),
      ),
    },
    { weight: 4, arbitrary: made('mutated', mutated(valid)) },
    { weight: 2, arbitrary: made('random', randomBody) },
  );
}

/** Requests of either protocol. */
export function requestArb(options: RequestOptions): fc.Arbitrary<FuzzRequest> {
  return fc.oneof(nativeRequestArb(options), qamRequestArb(options));
}

// ---------------------------------------------------------------------------------------------
// The oracle

/** Whether a server must answer a request, may (its caller's deadline may have passed), or cannot. */
export type Expectation = 'must' | 'may' | 'never';

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

function ownValue(record: unknown, key: string): unknown {
  return typeof record === 'object' && record !== null && !Array.isArray(record) && Object.prototype.hasOwnProperty.call(record, key)
    ? (record as Record<string, unknown>)[key]
    : undefined;
}

/** The reply address in a QAM body, as the wire format defines it, or undefined when it has none. */
export function qamAddressOf(body: Buffer): { id: number; routingKey: string } | undefined {
  if (body.length > fuzzMaxBytes) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(strictUtf8.decode(body));
  } catch {
    return undefined;
  }
  const id = ownValue(value, 'id');
  const routingKey = ownValue(value, 'routing_key');
  // A routing key travels as an AMQP short string: at most 255 bytes.
  if (
    typeof id !== 'number' ||
    !Number.isSafeInteger(id) ||
    typeof routingKey !== 'string' ||
    routingKey === '' ||
    Buffer.byteLength(routingKey) > 255
  )
    return undefined;
  return { id, routingKey };
}

/**
 * Whether the request must be answered at the address the harness watches (direct reply-to,
 * the callme exchange, or the QAM routing key `qamRoutingKey`). A server skips, without a
 * reply, a registered call whose caller's deadline passed: its expiration if it has one, else
 * the `deadline` in a native body; and the `deadline` in a native body beside an expiration
 * from a direct reply-to caller whose earlier requests said how its clock compares (all the
 * harness's direct requests come from one such caller). Requests that may carry a passed
 * deadline are 'may'.
 */
export function expectReply(request: FuzzRequest, qamRoutingKey: string): Expectation {
  const { expiration } = request.properties;
  const bodyDeadline = request.protocol === 'native' && request.body.includes('deadline');
  const mayExpire =
    expiration !== undefined
      ? !/^\d+$/.test(expiration) || Number(expiration) < longExpiration || (bodyDeadline && request.properties.replyTo.kind === 'direct')
      : bodyDeadline;
  if (request.protocol === 'qam') {
    const address = qamAddressOf(request.body);
    if (address === undefined || address.routingKey !== qamRoutingKey) return 'never';
  } else if (request.properties.replyTo.kind !== 'direct' && request.properties.replyTo.kind !== 'callme') {
    return 'never';
  }
  return mayExpire ? 'may' : 'must';
}

// ---------------------------------------------------------------------------------------------
// Replies, for proxies

/** One fuzzed reply to a call a proxy made. */
export interface FuzzReply {
  origin: Origin;
  body: Buffer;
  contentType: string | undefined;
  /** Whether the reply names the call it answers (its correlation id, or its QAM id), another, or none. */
  correlation: 'same' | 'other' | 'none';
}

const errorNames = [
  'Error',
  'TypeError',
  'FuzzError',
  'QAMMethodNotFoundException',
  'QAMTimeoutException',
  'QAMBadMessageException',
  'QAMException',
  '__proto__',
  'constructor',
  'toString',
  'hasOwnProperty',
  '',
];
const errorCodes = [
  'TIMEOUT',
  'METHOD_NOT_FOUND',
  'BAD_MESSAGE',
  'PAYLOAD_TOO_LARGE',
  'SERIALIZATION_FAILED',
  'CONNECTION_LOST',
  'REMOTE_ERROR',
  '__proto__',
  'E42',
];

/** Error payloads: mostly well-formed (string name and message), sometimes of any shape. */
const errorPayload: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  payload: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    {
      weight: 4,
      arbitrary: fc.record(
        {
          name: fc.constantFrom(...errorNames),
          message: fc.string({ maxLength: 30 }),
          code: fc.constantFrom(...errorCodes),
          args: fc.array(jsonArb, { maxLength: 3 }),
          stack: fc.string({ maxLength: 30 }),
          cause: tie('payload'),
        },
        { requiredKeys: ['name', 'message'] },
      ),
    },
    {
      weight: 1,
      arbitrary: fc.record(
        {
          name: fc.oneof(fc.constantFrom<unknown>(...errorNames), jsonArb),
          message: fc.oneof(fc.string({ maxLength: 30 }), jsonArb),
          code: fc.oneof(fc.constantFrom<unknown>(...errorCodes), jsonArb),
          args: jsonArb,
          cause: jsonArb,
        },
        { requiredKeys: [] },
      ),
    },
  ),
})).payload;

/** A native reply: a result, an error payload, or something that is neither. */
const nativeReplyJson = fc.oneof(
  fc.record({ result: jsonArb }),
  fc.record({ error: errorPayload }),
  fc.record({ result: jsonArb, error: errorPayload }),
  extraKeys,
);

function nativeReplyText(superjsonBody: boolean): fc.Arbitrary<string> {
  if (!superjsonBody) return nativeReplyJson.map((value) => JSON.stringify(value));
  return fc.oneof(
    fc.oneof(richValue, jsonArb).map((result) => superjsonText({ result })),
    nativeReplyJson.map((value) => superjsonText(value)),
    fc
      .record({
        values: fc.dictionary(fc.constantFrom('result', 'error', '__proto__', 'result.0', 'error.cause'), superjsonAnnotation, {
          maxKeys: 2,
        }),
      })
      .map(({ values }) => JSON.stringify({ json: { result: [1] }, meta: { values } })),
  );
}

const correlationArb = fc.constantFrom<FuzzReply['correlation']>('same', 'same', 'same', 'same', 'other', 'none');

/** Fuzzed replies of qam's own protocol, as a proxy with direct reply-to or callme names reads them. */
export const nativeReplyArb: fc.Arbitrary<FuzzReply> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc
      .record({
        body: nativeReplyText(false).map((text) => Buffer.from(text)),
        contentType: contentTypeArb('application/json'),
        correlation: correlationArb,
      })
      .map((reply) => ({ origin: 'valid' as const, ...reply })),
  },
  {
    weight: 2,
    arbitrary: fc
      .record({
        body: nativeReplyText(true).map((text) => Buffer.from(text)),
        contentType: contentTypeArb('application/x-superjson'),
        correlation: correlationArb,
      })
      .map((reply) => ({ origin: 'valid' as const, ...reply })),
  },
  {
    weight: 2,
    arbitrary: fc
      .record({ body: mutated(nativeReplyText(false)), contentType: contentTypeArb('application/json'), correlation: correlationArb })
      .map((reply) => ({ origin: 'mutated' as const, ...reply })),
  },
  {
    weight: 1,
    arbitrary: fc
      .record({ body: mutated(nativeReplyText(true)), contentType: contentTypeArb('application/x-superjson'), correlation: correlationArb })
      .map((reply) => ({ origin: 'mutated' as const, ...reply })),
  },
  {
    weight: 1,
    arbitrary: fc
      .record({ body: randomBody, contentType: contentTypeArb('application/json'), correlation: correlationArb })
      .map((reply) => ({ origin: 'random' as const, ...reply })),
  },
);

/**
 * A QAM reply body for the call with id `id`, as text: `ID` stands for the id, so that the
 * mutations work on the text the proxy will read. The harness substitutes it.
 */
const qamReplyText: fc.Arbitrary<string> = fc
  .record({
    id: fc.oneof(
      { weight: 6, arbitrary: fc.constant('ID') },
      { weight: 1, arbitrary: fc.constantFrom('ID.5', '"ID"', '-ID', 'ID0', 'null', '9007199254740993') },
    ),
    result: jsonArb.map((value) => JSON.stringify(value)),
    exception: fc.oneof(
      { weight: 6, arbitrary: fc.boolean().map(String) },
      { weight: 1, arbitrary: fc.constantFrom('0', '1', '"false"', 'null') },
    ),
    internal: fc.oneof(
      { weight: 6, arbitrary: fc.constantFrom('-1', '1') },
      { weight: 1, arbitrary: fc.constantFrom('0', '1.5', '"1"', 'null', '2') },
    ),
  })
  .map(
    ({ id, result, exception, internal }) =>
      `{"id": ${id}, "result": ${result}, "exception": ${exception}, "internal_exception": ${internal}}`,
  );

/** Fuzzed replies of Python QAM's protocol; `ID` in a body stands for the id of the call it answers. */
export const qamReplyArb: fc.Arbitrary<FuzzReply> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc
      .record({ body: qamReplyText.map((text) => Buffer.from(text)), contentType: contentTypeArb('application/json') })
      .map((reply) => ({ origin: 'valid' as const, correlation: 'same' as const, ...reply })),
  },
  {
    weight: 3,
    arbitrary: fc
      .record({ body: mutated(qamReplyText), contentType: contentTypeArb('application/json') })
      .map((reply) => ({ origin: 'mutated' as const, correlation: 'same' as const, ...reply })),
  },
  {
    weight: 1,
    arbitrary: fc
      .record({ body: randomBody, contentType: contentTypeArb('application/json') })
      .map((reply) => ({ origin: 'random' as const, correlation: 'none' as const, ...reply })),
  },
);

/** A QAM reply body with the call's id put in. */
export function qamReplyBody(reply: FuzzReply, id: string): Buffer {
  return Buffer.from(reply.body.toString('latin1').replaceAll('ID', id), 'latin1');
}

/**
 * What a proxy may settle a call with, given the reply it got: `{ value }` only when the body is,
 * by the wire format, a result; anything else is an error. Undefined when the oracle cannot tell
 * (superjson bodies, whose values the oracle does not decode): then any well-shaped outcome goes.
 */
export function expectedResult(
  protocol: FuzzProtocol,
  body: Buffer,
  contentType: string | undefined,
  maxBytes: number,
): { value: unknown } | 'error' | undefined {
  if (body.length > maxBytes) return 'error';
  if (protocol === 'native' && contentType === 'application/x-superjson') return undefined;
  if (protocol === 'native' && contentType !== undefined && contentType !== 'application/json') return 'error';
  let value: unknown;
  try {
    value = JSON.parse(protocol === 'qam' ? strictUtf8.decode(body) : body.toString('utf8'));
  } catch {
    return 'error';
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'error';
  const has = (key: string): boolean => Object.prototype.hasOwnProperty.call(value, key);
  if (protocol === 'native') return has('error') || !has('result') ? 'error' : { value: ownValue(value, 'result') };
  const internal = ownValue(value, 'internal_exception');
  if (!has('result') || typeof ownValue(value, 'exception') !== 'boolean' || typeof internal !== 'number' || !Number.isInteger(internal))
    return 'error';
  return ownValue(value, 'exception') === false ? { value: ownValue(value, 'result') } : 'error';
}
