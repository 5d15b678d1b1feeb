/**
 * Property-based fuzzing, in process: everything a server and a proxy read from the wire —
 * bodies, properties, headers and delivery fields of both protocols, random and mutated from
 * valid messages — fed to the protocols' readers and to a real QAMServer and QAMProxy over a
 * fake of the AMQP port (spec/support/fake-port.ts). Nothing may throw, hang, run what was not
 * registered or pollute a prototype; every request with a reply address gets exactly one reply;
 * a proxy settles a call only with the outcome its reply stands for. The same messages go to
 * RabbitMQ in broker.spec.ts and, by the hundred thousand, in scripts/fuzz.ts.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import type { QAMConnection } from '../../lib/amqp/connection.js';
import type { Delivery, IncomingProperties } from '../../lib/amqp/port.js';
import { QAMProxy, QAMServer, silentLogger, superjson } from '../../lib/index.js';
import { callmeClientProtocol } from '../../lib/protocols/callme/client.js';
import { decodeReply } from '../../lib/protocols/native/client.js';
import { nativeProtocol } from '../../lib/protocols/native/server.js';
import { qamClientProtocol } from '../../lib/protocols/qam/client.js';
import { qamProtocol } from '../../lib/protocols/qam/server.js';
import { serializerNamed } from '../../lib/serializers.js';
import { FakePort, type Published } from '../support/fake-port.js';
import {
  FuzzError,
  isTagged,
  newTally,
  pollution,
  prototypeKeys,
  registerFuzzApi,
  registeredCalls,
  type Tally,
} from '../support/fuzz-api.js';
import {
  expectReply,
  expectedResult,
  fuzzMaxBytes,
  nativeReplyArb,
  qamAddressOf,
  qamReplyArb,
  qamReplyBody,
  requestArb,
  type FuzzReply,
  type FuzzRequest,
  type ReplyAddress,
} from '../support/fuzz-messages.js';

/** Runs per property; the in-process server and proxies are slower per message than the readers. */
const readerRuns = 1000;
const serverRuns = 1000;
const proxyRuns = 300;

const serverId = 'fuzz';
const qamRoutingKey = 'fuzzclient_client_routing_key';
/** Addresses as RabbitMQ 3.10 makes them, and a callme client exchange. */
const directAddress = 'amq.rabbitmq.reply-to.g1h2AA1yZXBseUA5MjQ4ODg0AAA3FgAAAABrDMQi.WIMsiJJaaZVYlUriedNpBg==';
const callmeExchange = 'client_guest_ex_0b7e4a8e-5a8c-4a41-9d3f-5d1c2e0f9a11';

let prototypesBefore: string[];
beforeAll(() => {
  prototypesBefore = prototypeKeys();
});
afterEach(() => {
  expect(pollution(prototypesBefore)).toEqual([]);
});

function replyToValue(address: ReplyAddress): string | undefined {
  switch (address.kind) {
    case 'direct':
      return directAddress;
    case 'callme':
      return callmeExchange;
    case 'none':
      return undefined;
    default:
      return address.value;
  }
}

/** The delivery the amqplib adapter hands a consumer for `request`: every property amqplib decodes, undefined where the message has none. */
function delivery(request: FuzzRequest): Delivery {
  const { replyTo, ...rest } = request.properties;
  const properties: IncomingProperties = {
    contentType: undefined,
    contentEncoding: undefined,
    headers: {},
    deliveryMode: undefined,
    priority: undefined,
    correlationId: undefined,
    replyTo: replyToValue(replyTo),
    expiration: undefined,
    messageId: undefined,
    timestamp: undefined,
    type: undefined,
    userId: undefined,
    appId: undefined,
    ...rest,
  };
  return { content: request.body, properties, redelivered: request.redelivered, exchange: '', routingKey: 'fuzz', deliveryTag: 1 };
}

const options = { qamRoutingKey };
/** The protocols' settings (with a `warn` for protocols that log through their settings). */
const settings = {
  serverId,
  maxBytes: fuzzMaxBytes,
  exposeStack: false,
  fallbackSerializer: serializerNamed('json'),
  accepted: new Set(['json', 'superjson'] as const),
  warn: (): void => undefined,
};

describe('the server protocols read any delivery', () => {
  it('and return a call or the error to answer with, never throwing', () => {
    const protocols = { native: nativeProtocol(settings), qam: qamProtocol(settings) };
    fc.assert(
      fc.property(requestArb(options), (request) => {
        const protocol = protocols[request.protocol];
        const read = protocol.read(delivery(request));
        if ('call' in read) {
          expect(typeof read.call.method).toBe('string');
          expect(Array.isArray(read.call.params)).toBe(true);
          if (read.call.deadline !== undefined) expect(Number.isFinite(read.call.deadline)).toBe(true);
        } else {
          expect(read.error).toBeInstanceOf(Error);
        }
      }),
      { numRuns: readerRuns },
    );
  });

  it('and build a reply for any outcome, or say with a code why it cannot', () => {
    const protocols = { native: nativeProtocol(settings), qam: qamProtocol(settings) };
    const outcome = fc.oneof(
      fc.jsonValue({ maxDepth: 3 }).map((result) => ({ result })),
      fc.anything({ maxDepth: 2, withMap: true, withSet: true, withDate: true, withBigInt: true }).map((result) => ({ result })),
      fc.string().map((message) => ({ error: new FuzzError(message) })),
      // Values whose own toString or valueOf is no function are hostile throws, which the item 3 deals with.
      fc.anything({ maxDepth: 1, key: fc.string().filter((key) => key !== 'toString' && key !== 'valueOf') }).map((error) => ({ error })),
    );
    fc.assert(
      fc.property(requestArb(options), outcome, (request, result) => {
        const message = delivery(request);
        let reply;
        try {
          reply = protocols[request.protocol].reply(message, result);
        } catch (error) {
          expect(['SERIALIZATION_FAILED', 'PAYLOAD_TOO_LARGE']).toContain((error as { code?: unknown }).code);
          return;
        }
        if (reply === undefined) return;
        expect(typeof reply.exchange).toBe('string');
        expect(typeof reply.routingKey).toBe('string');
        expect(Buffer.isBuffer(reply.body)).toBe(true);
      }),
      { numRuns: readerRuns },
    );
  });
});

describe('the proxies read any reply', () => {
  const errorClasses = new Map([['FuzzError', FuzzError]]);

  it('of the native protocol as a value or a coded error', () => {
    fc.assert(
      fc.property(nativeReplyArb, (reply) => {
        checkOutcome('native', reply, decodeReply(reply.body, reply.contentType, { maxBytes: fuzzMaxBytes, errorClasses }));
      }),
      { numRuns: readerRuns },
    );
  });

  it('of callme names, with the call named by the correlation id', () => {
    const protocol = callmeClientProtocol({
      serverId,
      user: 'guest',
      serializer: serializerNamed('json'),
      maxBytes: fuzzMaxBytes,
      errorClasses,
    });
    fc.assert(
      fc.property(nativeReplyArb, fc.option(fc.string({ maxLength: 40 }), { nil: undefined }), (reply, correlationId) => {
        const { id, outcome } = protocol.readReply(replyMessage(reply.body, reply.contentType, correlationId));
        expect(id).toBe(correlationId);
        checkOutcome('native', reply, outcome);
      }),
      { numRuns: readerRuns },
    );
  });

  it('of the QAM protocol, with the call named by the body id', () => {
    const protocol = qamClientProtocol({ serverId, clientId: 'fuzzclient', expiresMs: undefined, maxBytes: fuzzMaxBytes });
    fc.assert(
      fc.property(qamReplyArb, fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), (reply, callId) => {
        const body = qamReplyBody(reply, String(callId));
        const { id, outcome } = protocol.readReply(replyMessage(body, reply.contentType, undefined));
        expect(id).toBe(callIdOf(body));
        if (id !== undefined) checkOutcome('qam', { ...reply, body }, outcome);
      }),
      { numRuns: readerRuns },
    );
  });
});

/** The call a QAM reply names by the wire format: its `id`, when the body is JSON within the limit and the id a safe integer. */
function callIdOf(body: Buffer): string | undefined {
  if (body.length > fuzzMaxBytes) return undefined;
  try {
    const value: unknown = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body));
    const id =
      typeof value === 'object' && value !== null && !Array.isArray(value) && Object.prototype.hasOwnProperty.call(value, 'id')
        ? (value as { id: unknown }).id
        : undefined;
    return Number.isSafeInteger(id) ? String(id) : undefined;
  } catch {
    return undefined;
  }
}

function replyMessage(content: Buffer, contentType: string | undefined, correlationId: string | undefined): Delivery {
  return delivery({
    protocol: 'native',
    origin: 'random',
    body: content,
    redelivered: false,
    properties: {
      replyTo: { kind: 'none' },
      ...(contentType === undefined ? {} : { contentType }),
      ...(correlationId === undefined ? {} : { correlationId }),
    },
  });
}

/** A call's outcome is a value only when its reply is a result, and otherwise an Error that has a code. */
function checkOutcome(protocol: 'native' | 'qam', reply: FuzzReply, outcome: unknown): void {
  const expected = expectedResult(protocol, reply.body, reply.contentType, fuzzMaxBytes);
  if (outcome instanceof Error) {
    if (expected !== undefined) expect(expected).toBe('error');
    if (!(outcome instanceof FuzzError)) expect(typeof (outcome as { code?: unknown }).code).toBe('string');
    return;
  }
  expect(Object.keys(outcome as object)).toEqual(['value']);
  if (expected !== undefined) {
    expect(expected).not.toBe('error');
    expect((outcome as { value: unknown }).value).toEqual((expected as { value: unknown }).value);
  }
}

describe('a QAMServer fed any delivery, in process', () => {
  const port = new FakePort();
  const connection = port.connection();
  const tally: Tally = newTally();
  let server: QAMServer;
  let delivered = 0;

  beforeAll(async () => {
    server = registerFuzzApi(
      new QAMServer({ serverId, connection, protocol: ['native', 'qam'], maxMessageBytes: fuzzMaxBytes, workers: 4, logger: silentLogger }),
      tally,
    );
    await server.serve();
  });

  afterAll(async () => {
    await server.close();
    await connection.close();
  });

  it('answers each request with a reply address once, with a registered result or an error, and acknowledges it', async () => {
    await fc.assert(
      fc.asyncProperty(requestArb(options), async (request) => {
        const before = port.published.length;
        const queue = request.protocol === 'native' ? `server_${serverId}_queue` : `${serverId}_server_queue`;
        const message = delivery(request);
        const { deliveryTag } = port.deliver(queue, message.content, message.properties, { redelivered: request.redelivered });
        delivered++;
        await port.until(() => port.acked.has(deliveryTag));
        checkReplies(request, port.published.slice(before));
      }),
      { numRuns: serverRuns },
    );
    expect(tally.canary).toBe(0);
    expect(port.acked.size).toBe(delivered);
    // The fake closes a channel on an ack of a delivery it does not hold (twice acknowledged), as RabbitMQ does.
    expect(port.channels.filter((channel) => channel.closeError !== undefined)).toEqual([]);
    expect(registeredCalls(tally)).toBeGreaterThan(0);
    expect(server.stats().active).toBe(0);
  });
});

/** The replies published for one request: where they went and what they say. */
function checkReplies(request: FuzzRequest, replies: Published[]): void {
  if (request.protocol === 'qam') {
    const address = qamAddressOf(request.body);
    const expectation = address === undefined ? 'never' : expectReply(request, address.routingKey);
    expect(replies.length).toBeLessThanOrEqual(expectation === 'never' ? 0 : 1);
    if (expectation === 'must') expect(replies).toHaveLength(1);
    for (const reply of replies) checkQamReply(request, reply, address!);
    return;
  }
  const expectation = expectReply(request, qamRoutingKey);
  expect(replies.length).toBeLessThanOrEqual(expectation === 'never' ? 0 : 1);
  if (expectation === 'must') expect(replies).toHaveLength(1);
  for (const reply of replies) checkNativeReply(request, reply);
}

function checkNativeReply(request: FuzzRequest, reply: Published): void {
  const replyTo = replyToValue(request.properties.replyTo)!;
  if (request.properties.replyTo.kind === 'direct') expect([reply.exchange, reply.routingKey]).toEqual(['', replyTo]);
  else expect(reply.exchange).toBe(replyTo);
  expect(reply.properties.correlationId).toBe(request.properties.correlationId);
  const contentType = reply.properties.contentType;
  expect(['application/json', 'application/x-superjson']).toContain(contentType);
  const text = reply.content.toString('utf8');
  const body: unknown = contentType === 'application/json' ? JSON.parse(text) : superjson.parse(text);
  expect(typeof body).toBe('object');
  const has = (key: string): boolean => Object.prototype.hasOwnProperty.call(body, key);
  expect(has('result') !== has('error')).toBe(true);
  if (has('error')) {
    const { name, message } = (body as { error: { name: unknown; message: unknown } }).error;
    expect([typeof name, typeof message]).toEqual(['string', 'string']);
    return;
  }
  const result = (body as { result: unknown }).result;
  expect(isTagged(result)).toBe(true);
  checkRan(
    result as { ran: string; value: unknown },
    request.properties.contentType === 'application/json' || request.properties.contentType === undefined
      ? ownString(request.body, 'method')
      : undefined,
  );
}

function checkQamReply(request: FuzzRequest, reply: Published, address: { id: number; routingKey: string }): void {
  expect([reply.exchange, reply.routingKey]).toEqual([`${serverId}_client_exchange`, address.routingKey]);
  expect(reply.properties.contentType).toBe('application/json');
  const body = JSON.parse(reply.content.toString('utf8')) as Record<string, unknown>;
  expect(body['id']).toBe(address.id);
  expect(typeof body['exception']).toBe('boolean');
  expect(Number.isInteger(body['internal_exception'])).toBe(true);
  if (body['exception'] === false) {
    expect(isTagged(body['result'])).toBe(true);
    checkRan(body['result'] as { ran: string; value: unknown }, ownString(request.body, 'method_name'));
  }
}

/** A result came from the function the request named; `whoami` saw a sane call context. */
function checkRan(result: { ran: string; value: unknown }, method: string | undefined): void {
  if (method !== undefined) expect(result.ran).toBe(method);
  if (result.ran === 'whoami') {
    const { deadline } = result.value as { deadline: unknown };
    if (deadline !== null) expect(Number.isFinite(deadline)).toBe(true);
  }
}

/** A string member of a JSON body, when the body is JSON and has one. */
function ownString(body: Buffer, key: string): string | undefined {
  try {
    const value: unknown = JSON.parse(body.toString('utf8'));
    const member =
      typeof value === 'object' && value !== null && Object.prototype.hasOwnProperty.call(value, key)
        ? (value as Record<string, unknown>)[key]
        : undefined;
    return typeof member === 'string' ? member : undefined;
  } catch {
    return undefined;
  }
}

describe.each([
  ['native, direct reply-to', { protocol: 'native' as const }],
  ['native, callme names', { protocol: 'native' as const, replies: 'callme' as const }],
  ['QAM', { protocol: 'qam' as const, clientId: 'fuzzclient' }],
])('a QAMProxy (%s) fed any reply, in process', (_, transport) => {
  const port = new FakePort();
  let connection: QAMConnection;
  let proxy: QAMProxy;
  const settledWith: { value: number; error: number; waiting: number } = { value: 0, error: 0, waiting: 0 };

  beforeAll(() => {
    connection = port.connection();
    proxy = new QAMProxy({
      serverId,
      connection,
      maxMessageBytes: fuzzMaxBytes,
      errors: [FuzzError],
      timeout: 600,
      logger: silentLogger,
      ...transport,
    });
  });

  afterAll(async () => {
    await proxy.close();
    await connection.close();
  });

  /** Makes a call, waits for its request, and answers it with `answer`; returns how it ended, or 'waiting'. */
  async function answered(
    answer: (request: Published) => { body: Buffer; properties: IncomingProperties },
    signal: AbortSignal,
  ): Promise<{ value: unknown } | { error: unknown } | 'waiting'> {
    const before = port.published.length;
    let outcome: { value: unknown } | { error: unknown } | undefined;
    proxy
      .withSignal(signal)
      .echo('ping')
      .then(
        (value: unknown) => (outcome = { value }),
        (error: unknown) => (outcome = { error }),
      );
    await port.until(() => port.published.length > before);
    const request = port.published[before]!;
    const [queue] = [...port.consumers.keys()];
    const { body, properties } = answer(request);
    port.deliver(queue!, body, properties);
    await new Promise((resolve) => setImmediate(resolve));
    return outcome ?? 'waiting';
  }

  it('settles a call only with the outcome the reply stands for, or leaves it waiting, and keeps working', async () => {
    const protocol = transport.protocol;
    await fc.assert(
      fc.asyncProperty(protocol === 'qam' ? qamReplyArb : nativeReplyArb, async (reply) => {
        const abort = new AbortController();
        let body = reply.body;
        let callId: string | undefined;
        const outcome = await answered((request) => {
          if (protocol === 'qam') {
            callId = String((JSON.parse(request.content.toString()) as { id: number }).id);
            body = qamReplyBody(reply, callId);
            return { body, properties: reply.contentType === undefined ? {} : { contentType: reply.contentType } };
          }
          const correlationId =
            reply.correlation === 'same' ? request.properties.correlationId : reply.correlation === 'other' ? 'other' : undefined;
          return { body, properties: { contentType: reply.contentType, correlationId } };
        }, abort.signal);
        if (outcome === 'waiting') {
          settledWith.waiting++;
          // Only a reply that names no waiting call leaves the call waiting.
          if (protocol === 'qam') expect(callIdOf(body)).not.toBe(callId);
          else expect(reply.correlation).not.toBe('same');
          abort.abort();
          await new Promise((resolve) => setImmediate(resolve));
          return;
        }
        if ('error' in outcome) {
          settledWith.error++;
          checkOutcome(protocol, { ...reply, body }, outcome.error);
        } else {
          settledWith.value++;
          checkOutcome(protocol, { ...reply, body }, outcome);
        }
      }),
      { numRuns: proxyRuns },
    );
    expect(proxy.getStats().pending).toBe(0);
    const healthy = await answered((request) => {
      const id = protocol === 'qam' ? (JSON.parse(request.content.toString()) as { id: number }).id : undefined;
      return protocol === 'qam'
        ? {
            body: Buffer.from(JSON.stringify({ id, result: 'pong', exception: false, internal_exception: -1 })),
            properties: { contentType: 'application/json' },
          }
        : {
            body: Buffer.from('{"result":"pong"}'),
            properties: { contentType: 'application/json', correlationId: request.properties.correlationId },
          };
    }, new AbortController().signal);
    expect(healthy).toEqual({ value: 'pong' });
    expect(settledWith.value + settledWith.error).toBeGreaterThan(0);
  });
});
