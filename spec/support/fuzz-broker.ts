/**
 * Fuzzing against RabbitMQ. {@link fuzzServer} starts a real QAMServer serving both protocols and
 * publishes fuzzed requests to its queues with raw amqplib, asking for replies at addresses it
 * watches (direct reply-to on its own channel, a callme exchange it declared, a QAM reply queue);
 * {@link fuzzProxy} plays the server to a real QAMProxy and answers its calls with fuzzed replies.
 * Both return figures; spec/fuzz/broker.spec.ts asserts on them, scripts/fuzz.ts prints them.
 *
 * Every batch is sampled from a seed (`seed + batch number`), so a failure is replayed by its seed.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { inspect, isDeepStrictEqual } from 'node:util';
import * as amqp from 'amqplib';
import type { Channel, ConfirmChannel, ConsumeMessage, Options } from 'amqplib';
import fc from 'fast-check';
import { QAMProxy, QAMServer, QAMTimeoutException, superjson, type Logger } from '../../lib/index.js';
import { deleteExchanges, deleteQueues, uniqueName } from './broker.js';
import { FuzzError, isTagged, newTally, pollution, prototypeKeys, registerFuzzApi, registeredCalls } from './fuzz-api.js';
import {
  expectReply,
  expectedResult,
  fuzzMaxBytes,
  nativeReplyArb,
  qamAddressOf,
  qamReplyArb,
  qamReplyBody,
  requestArb,
  type Expectation,
  type FuzzReply,
  type FuzzRequest,
} from './fuzz-messages.js';

/** A logger that counts what it is told and keeps the first error lines. */
export function countingLogger(): Logger & { counts: Record<'debug' | 'info' | 'warn' | 'error', number>; first: string[] } {
  const counts = { debug: 0, info: 0, warn: 0, error: 0 };
  const first: string[] = [];
  const level =
    (name: keyof typeof counts) =>
    (message: string): void => {
      counts[name]++;
      if (name === 'error' && first.length < 20) first.push(message.slice(0, 300));
    };
  return { counts, first, debug: level('debug'), info: level('info'), warn: level('warn'), error: level('error') };
}

export interface ServerFuzzOptions {
  url: string;
  /** Requests to send, of both protocols. */
  messages: number;
  seed: number;
  /** Also send reply_to values the broker refuses (issue 10 item 1). */
  hostileReplyTo?: boolean;
  /** Requests published before waiting for their replies. @default 500 */
  batch?: number;
  /** How long to wait for the replies of a batch. @default 60 s */
  replyTimeoutMs?: number;
  /** Told after each batch. */
  progress?: (figures: ServerFuzzFigures) => void;
}

export interface ServerFuzzFigures {
  seed: number;
  messages: number;
  byProtocol: { native: number; qam: number };
  byOrigin: { valid: number; mutated: number; random: number };
  /** Requests with a reply address that must be answered. */
  mustReply: number;
  /** Requests that may go unanswered (their caller's deadline may have passed). */
  mayReply: number;
  /** Replies received. */
  replies: number;
  /** Replies that must have come and did not (a hang, or a lost reply). */
  missing: number;
  /** Replies to a request that was already answered. */
  duplicates: number;
  /** Replies that match no request sent, or came where the request did not ask for them. */
  stray: number;
  /** Replies of the wrong shape, or results no registered function returned. */
  malformed: number;
  /** Results for a method the request did not name. */
  wrongMethod: number;
  /** Runs of registered functions for the fuzzed requests, and of canaries (hidden members that must never run). */
  registeredCalls: number;
  canaryCalls: number;
  /** Keys added to built-in prototypes. */
  pollution: string[];
  /** Connections the server lost during the run. */
  serverConnectionLosses: number;
  /** Channels of the publishing client the broker closed (its requests are then not counted as due). */
  publisherChannelLosses: number;
  /** Requests amqplib refused to encode. */
  unpublishable: number;
  /** The server answered a normal call of each protocol after the run. */
  alive: boolean | undefined;
  /**
   * Longest event-loop stall, in ms, while the server worked through a batch (the server runs in
   * this process; the time spent making and publishing the batch is left out).
   */
  maxEventLoopDelayMs: number;
  /** Log lines of the server by level, and the first error lines. */
  logged: Record<'debug' | 'info' | 'warn' | 'error', number>;
  errorLines: string[];
  durationMs: number;
  /** The first problems, with the seed of their batch and their index in it. */
  problems: string[];
}

interface Sent {
  protocol: FuzzRequest['protocol'];
  origin: FuzzRequest['origin'];
  /** The method the request names, when the oracle can read it. */
  method: string | undefined;
  /** The start of its body, for problem reports. */
  preview: string;
  expectation: Expectation;
  /** Where the reply is expected: 'direct' | 'callme' | 'qam'. */
  route: 'direct' | 'callme' | 'qam' | undefined;
  replies: number;
  where: string;
  /** The channel it was published on: direct reply-to replies come back on it only. */
  channel: ConfirmChannel | undefined;
  /** Other requests may get the same reply (no correlation id, or a QAM id they share): its method is not checked. */
  ambiguous: boolean;
}

const maxShortString = 255;

/** Any value, for a problem report: never throws (bigints, hostile objects), at most 200 characters. */
function show(value: unknown): string {
  try {
    return inspect(value, { depth: 3, breakLength: Infinity, maxArrayLength: 10, maxStringLength: 100 }).slice(0, 200);
  } catch {
    return '(a value that cannot be shown)';
  }
}

function truncateBytes(text: string, bytes: number): string {
  let out = text;
  while (Buffer.byteLength(out) > bytes) out = out.slice(0, -1);
  return out;
}

/** Fuzzes a real QAMServer through RabbitMQ; see the module comment. */
export async function fuzzServer(options: ServerFuzzOptions): Promise<ServerFuzzFigures> {
  const started = Date.now();
  const { url, seed } = options;
  const batchSize = options.batch ?? 500;
  const replyTimeoutMs = options.replyTimeoutMs ?? 60_000;
  const serverId = uniqueName('fuzz');
  const clientId = uniqueName('fuzzc');
  const qamRoutingKey = `${clientId}_client_routing_key`;
  const qamQueue = `${clientId}_client_queue`;
  const callmeExchange = uniqueName('client_fuzz_ex');
  const callmeQueue = uniqueName('fuzz_callme_queue');
  const prototypesBefore = prototypeKeys();
  const logger = countingLogger();
  const tally = newTally();
  const lag = monitorEventLoopDelay({ resolution: 10 });

  const figures: ServerFuzzFigures = {
    seed,
    messages: 0,
    byProtocol: { native: 0, qam: 0 },
    byOrigin: { valid: 0, mutated: 0, random: 0 },
    mustReply: 0,
    mayReply: 0,
    replies: 0,
    missing: 0,
    duplicates: 0,
    stray: 0,
    malformed: 0,
    wrongMethod: 0,
    registeredCalls: 0,
    canaryCalls: 0,
    pollution: [],
    serverConnectionLosses: 0,
    publisherChannelLosses: 0,
    unpublishable: 0,
    alive: undefined,
    maxEventLoopDelayMs: 0,
    logged: logger.counts,
    errorLines: logger.first,
    durationMs: 0,
    problems: [],
  };
  const problem = (text: string): void => {
    if (figures.problems.length < 20) figures.problems.push(text.slice(0, 500));
  };

  const server = registerFuzzApi(
    new QAMServer({ serverId, url, protocol: ['native', 'qam'], maxMessageBytes: fuzzMaxBytes, logger }),
    tally,
  );
  server.connection.on('disconnect', () => figures.serverConnectionLosses++);
  const connection = await amqp.connect(url);
  connection.on('error', () => undefined);
  let publisher: ConfirmChannel | undefined;
  let subscriber: Channel | undefined;
  /** Requests by correlation id (native) and by QAM id (several may share one). */
  const byCorrelation = new Map<string, Sent>();
  const anonymous: Sent[] = [];
  const byQamId = new Map<number, Sent[]>();

  const settle = (sent: Sent | undefined, route: Sent['route'], body: unknown, contentType: string | undefined): void => {
    figures.replies++;
    if (sent === undefined || sent.route !== route) {
      figures.stray++;
      problem(`stray ${route} reply ${show(body)}`);
      return;
    }
    sent.replies++;
    if (sent.replies > 1) {
      figures.duplicates++;
      problem(`duplicate reply for ${sent.where}`);
    }
    checkReply(sent, body, contentType);
  };

  const checkReply = (sent: Sent, body: unknown, contentType: string | undefined): void => {
    const record = typeof body === 'object' && body !== null && !Array.isArray(body) ? (body as Record<string, unknown>) : undefined;
    const has = (key: string): boolean => record !== undefined && Object.prototype.hasOwnProperty.call(record, key);
    let result: unknown;
    if (sent.route === 'qam') {
      if (
        !has('id') ||
        typeof record?.['exception'] !== 'boolean' ||
        !Number.isInteger(record['internal_exception']) ||
        contentType !== 'application/json'
      ) {
        figures.malformed++;
        problem(`malformed QAM reply to ${sent.where}: ${show(body)}`);
        return;
      }
      if (record['exception'] === true) return;
      result = record['result'];
    } else {
      if (has('result') === has('error')) {
        figures.malformed++;
        problem(`malformed reply to ${sent.where}: ${show(body)}`);
        return;
      }
      if (has('error')) {
        const error = record!['error'] as { name?: unknown; message?: unknown } | null;
        if (typeof error?.name !== 'string' || typeof error.message !== 'string') {
          figures.malformed++;
          problem(`malformed error reply to ${sent.where}`);
        }
        return;
      }
      result = record!['result'];
    }
    if (!isTagged(result)) {
      figures.malformed++;
      problem(`result no registered function returned, for ${sent.where}: ${show(result)}`);
      return;
    }
    const method = sent.ambiguous ? undefined : sent.method;
    if (method !== undefined && method !== result.ran) {
      figures.wrongMethod++;
      problem(`${sent.where} named ${show(method)} and ${result.ran} ran`);
    }
  };

  const decode = (message: ConsumeMessage): unknown => {
    const text = message.content.toString('utf8');
    try {
      return message.properties.contentType === 'application/x-superjson' ? superjson.parse(text) : JSON.parse(text);
    } catch {
      return undefined;
    }
  };

  const onNativeReply = (route: 'direct' | 'callme') => (message: ConsumeMessage | null) => {
    if (message === null) return;
    const correlationId = message.properties.correlationId as string | undefined;
    let sent: Sent | undefined;
    if (correlationId === undefined) {
      // Replies without a correlation id cannot say which request they answer: count them against the due ones first.
      const unanswered = anonymous.filter((candidate) => candidate.route === route && candidate.replies === 0);
      sent = unanswered.find((candidate) => candidate.expectation === 'must') ?? unanswered[0];
    } else {
      sent = byCorrelation.get(correlationId);
    }
    settle(sent, route, decode(message), message.properties.contentType as string | undefined);
  };

  const onQamReply = (message: ConsumeMessage | null): void => {
    if (message === null) return;
    const body = decode(message);
    const id = (body as { id?: unknown } | undefined)?.id;
    // Fuzzed requests may share an id (0, 2^53-1, …): its replies count against the due ones first.
    const candidates = (typeof id === 'number' ? byQamId.get(id) : undefined) ?? [];
    const unanswered = candidates.filter((candidate) => candidate.replies === 0);
    const sent = unanswered.find((candidate) => candidate.expectation === 'must') ?? unanswered[0] ?? candidates[0];
    settle(sent, 'qam', body, message.properties.contentType as string | undefined);
  };

  /** The publishing channel, which also consumes direct reply-to; a new one if the broker closed it. */
  const openPublisher = async (): Promise<ConfirmChannel> => {
    const channel = await connection.createConfirmChannel();
    channel.on('error', (error: Error) => {
      figures.publisherChannelLosses++;
      problem(`the broker closed the publishing channel: ${error.message}`);
    });
    channel.on('close', () => {
      if (publisher === channel) publisher = undefined;
    });
    await channel.consume('amq.rabbitmq.reply-to', onNativeReply('direct'), { noAck: true });
    publisher = channel;
    return channel;
  };

  try {
    await server.serve();
    subscriber = await connection.createChannel();
    subscriber.on('error', () => undefined);
    await subscriber.assertExchange(callmeExchange, 'fanout', { durable: false, autoDelete: true });
    await subscriber.assertQueue(callmeQueue, { durable: false, exclusive: true });
    await subscriber.bindQueue(callmeQueue, callmeExchange, '');
    await subscriber.consume(callmeQueue, onNativeReply('callme'), { noAck: true });
    await subscriber.assertQueue(qamQueue, { durable: false, exclusive: true });
    await subscriber.bindQueue(qamQueue, `${serverId}_client_exchange`, qamRoutingKey);
    await subscriber.consume(qamQueue, onQamReply, { noAck: true });
    await openPublisher();

    const arbitrary = requestArb({ qamRoutingKey, hostileReplyTo: options.hostileReplyTo ?? false });
    for (let batch = 0; figures.messages < options.messages; batch++) {
      const batchSeed = seed + batch;
      const requests = fc.sample(arbitrary, { numRuns: Math.min(batchSize, options.messages - figures.messages), seed: batchSeed });
      const due: Sent[] = [];
      let channel = publisher ?? (await openPublisher());
      for (const [index, request] of requests.entries()) {
        figures.messages++;
        figures.byProtocol[request.protocol]++;
        figures.byOrigin[request.origin]++;
        const where = `seed ${batchSeed} #${index}`;
        let expectation = expectReply(request, qamRoutingKey);
        const route =
          request.protocol === 'qam'
            ? 'qam'
            : request.properties.replyTo.kind === 'direct'
              ? 'direct'
              : request.properties.replyTo.kind === 'callme'
                ? 'callme'
                : undefined;
        const sent: Sent = {
          protocol: request.protocol,
          origin: request.origin,
          method: methodOf(request),
          preview: request.body.toString('utf8', 0, 200),
          expectation,
          route,
          replies: 0,
          where,
          channel: undefined,
          ambiguous: false,
        };
        const { exchange, routingKey, properties } = publication(request, {
          serverId,
          callmeExchange,
          correlationId: `${batchSeed}.${index}|`,
        });
        if (properties.correlationId !== undefined) byCorrelation.set(properties.correlationId as string, sent);
        else if (request.protocol === 'native') {
          sent.ambiguous = true;
          anonymous.push(sent);
        }
        if (request.protocol === 'qam') {
          const address = qamAddressOf(request.body);
          const sharing = address === undefined ? [] : (byQamId.get(address.id) ?? []);
          if (address !== undefined) byQamId.set(address.id, [...sharing, sent]);
          if (sharing.length > 0) for (const other of [...sharing, sent]) other.ambiguous = true;
        }
        if (publisher !== channel) channel = publisher ?? (await openPublisher());
        sent.channel = channel;
        try {
          channel.publish(exchange, routingKey, request.body, properties);
        } catch (error) {
          figures.unpublishable++;
          expectation = sent.expectation = 'never';
          problem(`${where} could not be published: ${String(error)}`);
        }
        if (expectation === 'must') due.push(sent);
        else if (expectation === 'may') figures.mayReply++;
      }
      lag.enable();
      await channel.waitForConfirms().catch(() => undefined);
      // Replies to direct reply-to go to the channel that published: if the broker closed it, they cannot come.
      const reachable = due.filter((sent) => sent.route !== 'direct' || sent.channel === publisher);
      figures.mustReply += reachable.length;
      const deadline = Date.now() + replyTimeoutMs;
      while (reachable.some((sent) => sent.replies === 0) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
      for (const sent of reachable) {
        if (sent.replies > 0) continue;
        figures.missing++;
        problem(`no reply for ${sent.where} (${sent.protocol}, ${sent.origin}): ${sent.preview}`);
      }
      lag.disable();
      // Late replies of this batch still find their request; anonymous ones are only matched in order.
      anonymous.splice(0, anonymous.length - 1000);
      figures.registeredCalls = registeredCalls(tally);
      figures.canaryCalls = tally.canary;
      figures.maxEventLoopDelayMs = Math.round(lag.max / 1e6);
      figures.durationMs = Date.now() - started;
      options.progress?.(figures);
    }
    figures.registeredCalls = registeredCalls(tally);
    figures.alive = await answersNormalCalls(url, serverId, logger);
  } finally {
    lag.disable();
    figures.maxEventLoopDelayMs = Math.round(lag.max / 1e6);
    figures.canaryCalls = tally.canary;
    figures.pollution = pollution(prototypesBefore);
    await connection.close().catch(() => undefined);
    await server.close({ deleteQueue: true });
    // The server deletes its names only while connected, which a run that broke it may not be.
    await deleteQueues([`server_${serverId}_queue`, `${serverId}_server_queue`, qamQueue, callmeQueue]).catch(() => undefined);
    await deleteExchanges([`server_${serverId}_ex`, `${serverId}_server_exchange`, `${serverId}_client_exchange`, callmeExchange]).catch(
      () => undefined,
    );
    figures.durationMs = Date.now() - started;
  }
  return figures;
}

/** Where and how a fuzzed request is published; its correlation id gets `prefix` to be told apart. */
function publication(
  request: FuzzRequest,
  names: { serverId: string; callmeExchange: string; correlationId: string },
): { exchange: string; routingKey: string; properties: Options.Publish } {
  const { replyTo, correlationId, ...rest } = request.properties;
  const properties: Options.Publish = { ...rest };
  if (correlationId !== undefined) properties.correlationId = truncateBytes(names.correlationId + correlationId, maxShortString);
  switch (replyTo.kind) {
    case 'direct':
      properties.replyTo = 'amq.rabbitmq.reply-to';
      break;
    case 'callme':
      properties.replyTo = names.callmeExchange;
      break;
    case 'none':
      break;
    default:
      properties.replyTo = replyTo.value;
  }
  // Through the server's exchange or straight to its queue, as either kind of peer may.
  const viaExchange = request.body.length % 2 === 0;
  if (request.protocol === 'qam') {
    return viaExchange
      ? { exchange: `${names.serverId}_server_exchange`, routingKey: `${names.serverId}_server_routing_key`, properties }
      : { exchange: '', routingKey: `${names.serverId}_server_queue`, properties };
  }
  return viaExchange
    ? { exchange: `server_${names.serverId}_ex`, routingKey: names.serverId, properties }
    : { exchange: '', routingKey: `server_${names.serverId}_queue`, properties };
}

/** The method a JSON request names, when the oracle can read it without superjson. */
function methodOf(request: FuzzRequest): string | undefined {
  const contentType = request.properties.contentType;
  if (request.protocol === 'native' && contentType !== undefined && contentType !== 'application/json') return undefined;
  try {
    const value: unknown = JSON.parse(request.body.toString('utf8'));
    const key = request.protocol === 'qam' ? 'method_name' : 'method';
    const method =
      typeof value === 'object' && value !== null && Object.prototype.hasOwnProperty.call(value, key)
        ? (value as Record<string, unknown>)[key]
        : undefined;
    return typeof method === 'string' ? method : undefined;
  } catch {
    return undefined;
  }
}

/** True when the server answers a normal call of each protocol (native with both reply kinds, and QAM). */
async function answersNormalCalls(url: string, serverId: string, logger: Logger): Promise<boolean> {
  const proxies = [
    new QAMProxy({ serverId, url, timeout: 30, logger }),
    new QAMProxy({ serverId, url, timeout: 30, logger, replies: 'callme' }),
    new QAMProxy({ serverId, url, timeout: 30, logger, protocol: 'qam' }),
  ];
  try {
    const results = await Promise.all(proxies.map((proxy) => proxy['echo']('alive')));
    return results.every((result) => isTagged(result) && result.value === 'alive');
  } catch {
    return false;
  } finally {
    await Promise.all(proxies.map((proxy) => proxy.close()));
  }
}

// ---------------------------------------------------------------------------------------------
// Proxies

export type ProxyTransport = 'direct' | 'callme' | 'qam';

export interface ProxyFuzzOptions {
  url: string;
  transport: ProxyTransport;
  /** Calls to make, each answered with one fuzzed reply. */
  calls: number;
  seed: number;
  /** Calls in flight at once. @default 200 */
  concurrency?: number;
}

export interface ProxyFuzzFigures {
  transport: ProxyTransport;
  seed: number;
  calls: number;
  /** Calls that resolved and rejected with what their fuzzed reply stands for. */
  values: number;
  errors: number;
  /** Calls whose fuzzed reply named another call or none, answered by the proper reply sent after it. */
  followUps: number;
  /** Calls settled with an outcome their replies do not stand for, or timed out although answered. */
  wrongOutcome: number;
  /** Calls that did not settle at all. */
  hangs: number;
  /** The proxy answered a normal call after the run. */
  alive: boolean | undefined;
  pollution: string[];
  logged: Record<'debug' | 'info' | 'warn' | 'error', number>;
  durationMs: number;
  problems: string[];
}

/** The result of the proper reply that follows every fuzzed one. */
const followUp = 'follow-up';
/** Seconds a proxy call waits: long enough to mean "never" for a reply that is already on its way. */
const proxyTimeout = 60;

/**
 * Fuzzes a real QAMProxy through RabbitMQ, playing its server: each call gets a fuzzed reply and,
 * right after it on the same channel, a proper one. A call settles with what the fuzzed reply
 * stands for when that reply names it, else with the proper reply's result; anything else, a
 * timeout included, is a wrong outcome.
 */
export async function fuzzProxy(options: ProxyFuzzOptions): Promise<ProxyFuzzFigures> {
  const started = Date.now();
  const { url, transport, seed } = options;
  const concurrency = options.concurrency ?? 200;
  const serverId = uniqueName('fuzzp');
  const protocol = transport === 'qam' ? 'qam' : 'native';
  const prototypesBefore = prototypeKeys();
  const logger = countingLogger();
  const figures: ProxyFuzzFigures = {
    transport,
    seed,
    calls: 0,
    values: 0,
    errors: 0,
    followUps: 0,
    wrongOutcome: 0,
    hangs: 0,
    alive: undefined,
    pollution: [],
    logged: logger.counts,
    durationMs: 0,
    problems: [],
  };
  const problem = (text: string): void => {
    if (figures.problems.length < 20) figures.problems.push(text.slice(0, 500));
  };
  const names =
    transport === 'qam'
      ? {
          exchange: `${serverId}_server_exchange`,
          queue: `${serverId}_server_queue`,
          routingKey: `${serverId}_server_routing_key`,
          durable: true,
        }
      : { exchange: `server_${serverId}_ex`, queue: `server_${serverId}_queue`, routingKey: serverId, durable: false };
  const replyExchange = `${serverId}_client_exchange`;

  /** The fuzzed reply each call gets, by the number the call sends as its param (none: only the proper one). */
  const replies = new Map<number, FuzzReply>();
  /** The fuzzed body each call was answered with (QAM bodies get the call's id put in), and its QAM id. */
  const answeredWith = new Map<number, Buffer>();
  const qamIds = new Map<number, string>();

  const connection = await amqp.connect(url);
  connection.on('error', () => undefined);
  const channel = await connection.createChannel();
  channel.on('error', (error: Error) => problem(`the broker closed the replying channel: ${error.message}`));
  const proxy = new QAMProxy({
    serverId,
    url,
    timeout: proxyTimeout,
    errors: [FuzzError],
    maxMessageBytes: fuzzMaxBytes,
    logger,
    protocol,
    ...(transport === 'callme' ? { replies: 'callme' as const } : {}),
  });

  const answer = (message: ConsumeMessage | null): void => {
    if (message === null) return;
    let request: { id?: number; routing_key?: string; params?: unknown[] };
    try {
      request = JSON.parse(message.content.toString('utf8')) as typeof request;
    } catch {
      return;
    }
    const n = request.params?.[0];
    if (typeof n !== 'number') return;
    const { replyTo, correlationId } = message.properties as { replyTo?: string; correlationId?: string };
    const publish = (body: Buffer, properties: Options.Publish): void => {
      try {
        if (transport === 'qam') channel.publish(replyExchange, request.routing_key ?? '', body, properties);
        else if (transport === 'callme') channel.publish(replyTo ?? '', '', body, properties);
        else channel.publish('', replyTo ?? '', body, properties);
      } catch (error) {
        problem(`could not publish a reply to call ${n}: ${String(error)}`);
      }
    };
    const reply = replies.get(n);
    if (reply !== undefined) {
      if (transport === 'qam') {
        const body = qamReplyBody(reply, String(request.id));
        qamIds.set(n, String(request.id));
        answeredWith.set(n, body);
        publish(body, reply.contentType === undefined ? {} : { contentType: reply.contentType });
      } else {
        answeredWith.set(n, reply.body);
        const properties: Options.Publish = reply.contentType === undefined ? {} : { contentType: reply.contentType };
        if (reply.correlation === 'same' && correlationId !== undefined) properties.correlationId = correlationId;
        // '~' appears in no call id (base36 counters, base64url prefixes, uuids): this names no call at all.
        if (reply.correlation === 'other') properties.correlationId = `${correlationId ?? ''}~`;
        publish(reply.body, properties);
      }
    }
    if (transport === 'qam')
      publish(Buffer.from(JSON.stringify({ id: request.id, result: followUp, exception: false, internal_exception: -1 })), {
        contentType: 'application/json',
      });
    else
      publish(Buffer.from(JSON.stringify({ result: followUp })), {
        contentType: 'application/json',
        ...(correlationId === undefined ? {} : { correlationId }),
      });
  };

  try {
    await channel.assertExchange(names.exchange, 'direct', { durable: names.durable, autoDelete: false });
    if (transport === 'qam') await channel.assertExchange(replyExchange, 'direct', { durable: true, autoDelete: false });
    await channel.assertQueue(names.queue, { durable: false, exclusive: true });
    await channel.bindQueue(names.queue, names.exchange, names.routingKey);
    await channel.consume(names.queue, answer, { noAck: true });

    const arbitrary = transport === 'qam' ? qamReplyArb : nativeReplyArb;
    for (let batch = 0; figures.calls < options.calls; batch++) {
      const batchSeed = seed + batch;
      const sampled = fc.sample(arbitrary, { numRuns: Math.min(concurrency, options.calls - figures.calls), seed: batchSeed });
      const calls = sampled.map(async (reply, index) => {
        const n = figures.calls++;
        replies.set(n, reply);
        const where = `seed ${batchSeed} #${index}`;
        let guard: NodeJS.Timeout | undefined;
        const outcome = await Promise.race([
          (proxy['echo'](n) as Promise<unknown>).then(
            (value) => ({ value }),
            (error: unknown) => ({ error }),
          ),
          new Promise<'hang'>((resolve) => (guard = setTimeout(resolve, (proxyTimeout + 30) * 1000, 'hang'))),
        ]);
        clearTimeout(guard);
        replies.delete(n);
        const body = answeredWith.get(n);
        answeredWith.delete(n);
        if (outcome === 'hang') {
          figures.hangs++;
          problem(`call ${where} did not settle`);
          return;
        }
        const shown = `${show('error' in outcome ? outcome.error : outcome.value)} for ${body?.toString('utf8').slice(0, 200)}`;
        if (body === undefined || !namesItsCall(transport, reply, body, qamIds.get(n))) {
          figures.followUps++;
          if (!('value' in outcome) || outcome.value !== followUp) {
            figures.wrongOutcome++;
            problem(`call ${where}, whose fuzzed reply named another call, settled with ${shown}`);
          }
          return;
        }
        const expected = expectedResult(protocol, body, reply.contentType, fuzzMaxBytes);
        if ('error' in outcome) {
          figures.errors++;
          const error = outcome.error;
          const coded = error instanceof FuzzError || (error instanceof Error && typeof (error as { code?: unknown }).code === 'string');
          // The proxy's own timeout is no outcome of a reply that came; a remote error may carry the code TIMEOUT.
          if (!coded || error instanceof QAMTimeoutException || (expected !== undefined && expected !== 'error')) {
            figures.wrongOutcome++;
            problem(`call ${where} rejected with ${shown}`);
          }
          return;
        }
        figures.values++;
        if (expected === 'error' || (expected !== undefined && !isDeepStrictEqual(expected.value, outcome.value))) {
          figures.wrongOutcome++;
          problem(`call ${where} resolved with ${shown}`);
        }
      });
      await Promise.all(calls);
    }
    figures.alive = await (proxy['echo'](-1) as Promise<unknown>).then(
      (value) => value === followUp,
      () => false,
    );
  } finally {
    figures.pollution = pollution(prototypesBefore);
    await proxy.close();
    await connection.close().catch(() => undefined);
    await deleteExchanges(transport === 'qam' ? [names.exchange, replyExchange] : [names.exchange]).catch(() => undefined);
    figures.durationMs = Date.now() - started;
  }
  return figures;
}

/** Whether a reply names the call it answers, by the wire format: its correlation id, or its QAM id. */
function namesItsCall(transport: ProxyTransport, reply: FuzzReply, body: Buffer, callId: string | undefined): boolean {
  if (transport !== 'qam') return reply.correlation === 'same';
  if (body.length > fuzzMaxBytes) return false;
  try {
    const value: unknown = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body));
    const id =
      typeof value === 'object' && value !== null && !Array.isArray(value) && Object.prototype.hasOwnProperty.call(value, 'id')
        ? (value as { id: unknown }).id
        : undefined;
    return Number.isSafeInteger(id) && String(id) === callId;
  } catch {
    return false;
  }
}
