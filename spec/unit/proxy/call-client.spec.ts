/**
 * The AMQP side of a proxy (CallClient) over a fake of the AMQP port: what it publishes, how
 * replies, returns, confirms and channel closes end its calls, and how it waits for write
 * capacity. Time is jest's fake clock where the behaviour is about time.
 */
import { jest } from '@jest/globals';
import { PortError, type FailureKind } from '../../../lib/amqp/port.js';
import { serializerNamed } from '../../../lib/serializers.js';
import { silentLogger } from '../../../lib/logger.js';
import { callmeClientProtocol } from '../../../lib/protocols/callme/client.js';
import type { ClientProtocol } from '../../../lib/protocols/client-protocol.js';
import { directClientProtocol } from '../../../lib/protocols/native/client.js';
import { qamClientProtocol } from '../../../lib/protocols/qam/client.js';
import { CallClient } from '../../../lib/proxy/call-client.js';
import { FakePort, turns, type Published } from '../../support/fake-port.js';

const serverId = 'calc';
const json = serializerNamed('json');
const maxBytes = 1024 * 1024;

type Kind = 'direct' | 'callme' | 'qam';

function protocolOf(kind: Kind): ClientProtocol {
  const errorClasses = new Map();
  switch (kind) {
    case 'direct':
      return directClientProtocol({ serverId, serializer: json, maxBytes, errorClasses });
    case 'callme':
      return callmeClientProtocol({ serverId, user: 'guest', serializer: json, maxBytes, errorClasses });
    case 'qam':
      return qamClientProtocol({ serverId, clientId: 'spec', expiresMs: undefined, maxBytes });
  }
}

type Outcome = { value: unknown } | { error: { code?: unknown } };

/** A CallClient of `kind` on a new fake port; `encoded` lists the methods whose requests were encoded, in order. */
function setup(kind: Kind = 'direct') {
  const port = new FakePort();
  const connection = port.connection();
  const protocol = protocolOf(kind);
  const encoded: string[] = [];
  const counting: ClientProtocol = Object.assign(Object.create(protocol) as ClientProtocol, {
    request: (...args: Parameters<ClientProtocol['request']>) => {
      encoded.push(args[1]);
      return protocol.request(...args);
    },
  });
  const client = new CallClient({
    serverId,
    connection,
    ownsConnection: true,
    maxBytes,
    logger: silentLogger,
    protocol: counting,
    userId: false,
  });
  const target = client.target(serverId, false);
  /** Starts a call; its outcome never rejects. */
  const call = (method: string, options: { params?: unknown[]; timeoutMs?: number; signal?: AbortSignal } = {}) => {
    let id = '';
    const outcome = new Promise<Outcome>((resolve) => {
      id = client.call({
        method,
        params: options.params ?? [],
        timeoutMs: options.timeoutMs ?? 10_000,
        completion: {
          kind: 'promise',
          resolve: (value) => resolve({ value }),
          reject: (error) => resolve({ error: error as { code?: unknown } }),
        },
        signal: options.signal,
        retries: 0,
        target,
        onStarted: undefined,
      });
    });
    return { id, outcome };
  };
  /** The publishes of requests (on confirm channels), in order. */
  const requests = (): Published[] => port.published.filter((message) => message.channel.confirms);
  /** The method a request calls. */
  const methodOf = (message: Published): unknown => {
    const body = JSON.parse(message.content.toString()) as { method?: unknown; method_name?: unknown };
    return body.method ?? body.method_name;
  };
  return { port, connection, client, call, encoded, requests, methodOf, protocol };
}

/** Races `promise` against a few turns of the event loop: 'pending' when it has not settled by then. */
async function settledSoon<T>(promise: Promise<T>): Promise<T | 'pending'> {
  return Promise.race([promise, turns().then(() => 'pending' as const)]);
}

/** A native reply to `request`, or with the correlation id given. */
function nativeReply(
  request: Published,
  body: unknown,
  correlation: { correlationId?: string } = { correlationId: request.properties.correlationId! },
) {
  return [Buffer.from(JSON.stringify(body)), { contentType: 'application/json', ...correlation }] as const;
}

let cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  jest.useRealTimers();
  for (const close of cleanup) await close();
  cleanup = [];
});

function started(kind: Kind = 'direct') {
  const context = setup(kind);
  cleanup.push(() => context.client.close());
  return context;
}

/** Fake clock for Date and timers; promises, setImmediate and microtasks stay real (the fake port uses them). */
function fakeClock(): void {
  jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
}

describe('CallClient dispatch', () => {
  it('publishes a native request over direct reply-to: mandatory, correlated, expiring with the caller', async () => {
    fakeClock();
    const { port, call, requests } = started('direct');
    const { id } = call('add', { params: [1, 2], timeoutMs: 7_000 });
    await port.until(() => requests().length >= 1);
    const [request] = requests();
    expect(request).toMatchObject({ exchange: '', routingKey: 'server_calc_queue', mandatory: true });
    expect(request!.properties).toMatchObject({
      correlationId: id,
      replyTo: 'amq.rabbitmq.reply-to',
      contentType: 'application/json',
      expiration: '7000',
    });
    expect(JSON.parse(request!.content.toString())).toEqual({ method: 'add', params: [1, 2], deadline: Date.now() + 7_000 });
    // Direct reply-to: the replies are consumed, without acks, on the channel that publishes.
    const consumer = port.consumers.get('amq.rabbitmq.reply-to');
    expect(consumer?.channel).toBe(request!.channel);
    expect(consumer?.options.noAck).toBe(true);
  });

  it('publishes with callme names: replies through a reply exchange of its own, consumed on a channel of their own', async () => {
    const { port, call, requests, protocol } = started('callme');
    const { id } = call('add', { params: [1, 2] });
    await port.until(() => requests().length >= 1);
    const [request] = requests();
    const replyExchange = request!.properties.replyTo as string;
    expect(replyExchange).toMatch(/^client_guest_ex_/);
    expect(request).toMatchObject({ exchange: 'server_calc_ex', routingKey: 'calc', mandatory: true });
    expect(request!.properties.correlationId).toBe(id);
    expect(port.operations).toEqual([
      `declareExchange ${replyExchange} fanout`,
      `declareQueue ${protocol.replyQueue}`,
      `bindQueue ${protocol.replyQueue} ${replyExchange} `,
    ]);
    const consumer = port.consumers.get(protocol.replyQueue);
    expect(consumer?.channel.confirms).toBe(false);
    expect(consumer?.channel).not.toBe(request!.channel);
  });

  it("publishes QAM's format: the call id in the body, replies bound to the client's queue", async () => {
    const { port, call, requests, protocol } = started('qam');
    const { id } = call('add', { params: [1, 2] });
    await port.until(() => requests().length >= 1);
    const [request] = requests();
    expect(request).toMatchObject({ exchange: 'calc_server_exchange', routingKey: 'calc_server_routing_key', mandatory: true });
    expect(JSON.parse(request!.content.toString())).toEqual({
      id: Number(id),
      method_name: 'add',
      routing_key: 'spec_client_routing_key',
      params: [1, 2],
    });
    expect(port.consumers.has(protocol.replyQueue)).toBe(true);
    expect(port.operations).toContain('declareExchange calc_server_exchange direct');
  });

  it('opens its channels once for calls made together', async () => {
    const { port, call, requests } = started('callme');
    for (let i = 0; i < 5; i++) call(`f${i}`);
    await port.until(() => requests().length >= 5);
    expect(port.channels).toHaveLength(2);
  });

  it('fails a call whose request exceeds maxMessageBytes without publishing it', async () => {
    const { port, call, requests, methodOf } = started('direct');
    const big = call('big', { params: ['x'.repeat(maxBytes)] });
    call('small');
    await expect(big.outcome).resolves.toMatchObject({ error: { code: 'PAYLOAD_TOO_LARGE' } });
    await port.until(() => requests().length >= 1);
    await turns();
    expect(requests().map(methodOf)).toEqual(['small']);
  });
});

describe('CallClient replies', () => {
  it('settles a call with the reply that carries its id', async () => {
    const { port, call, requests } = started('direct');
    const { outcome } = call('add');
    await port.until(() => requests().length >= 1);
    port.deliver('amq.rabbitmq.reply-to', ...nativeReply(requests()[0]!, { result: 3 }));
    await expect(outcome).resolves.toEqual({ value: 3 });
  });

  it('drops and counts replies that name no waiting call, leaving the waiting call alone', async () => {
    const { port, client, call, requests } = started('direct');
    const { outcome } = call('add');
    await port.until(() => requests().length >= 1);
    const request = requests()[0]!;
    port.deliver('amq.rabbitmq.reply-to', ...nativeReply(request, { result: 'forged' }, { correlationId: 'someone-else' }));
    port.deliver('amq.rabbitmq.reply-to', ...nativeReply(request, { result: 'nameless' }, {}));
    expect(client.stats()).toMatchObject({ pending: 1, droppedReplies: 2 });
    expect(await settledSoon(outcome)).toBe('pending');
    port.deliver('amq.rabbitmq.reply-to', ...nativeReply(request, { result: 3 }));
    await expect(outcome).resolves.toEqual({ value: 3 });
    // A second reply to a call that ended is late: dropped and counted too.
    port.deliver('amq.rabbitmq.reply-to', ...nativeReply(request, { result: 4 }));
    expect(client.stats()).toMatchObject({ pending: 0, droppedReplies: 3 });
  });

  it('ends a call whose reply cannot be read with BAD_MESSAGE, and one over the limit with PAYLOAD_TOO_LARGE', async () => {
    const { port, call, requests } = started('direct');
    const first = call('a');
    const second = call('b');
    await port.until(() => requests().length >= 2);
    const [a, b] = requests();
    port.deliver('amq.rabbitmq.reply-to', Buffer.from('{not json'), {
      contentType: 'application/json',
      correlationId: a!.properties.correlationId,
    });
    port.deliver('amq.rabbitmq.reply-to', Buffer.alloc(maxBytes + 1), {
      contentType: 'application/json',
      correlationId: b!.properties.correlationId,
    });
    await expect(first.outcome).resolves.toMatchObject({ error: { code: 'BAD_MESSAGE' } });
    await expect(second.outcome).resolves.toMatchObject({ error: { code: 'PAYLOAD_TOO_LARGE' } });
  });

  it('routes QAM replies by the id in their body', async () => {
    const { port, client, call, requests, protocol } = started('qam');
    const { id, outcome } = call('add');
    await port.until(() => requests().length >= 1);
    const reply = (replyId: number, result: unknown): Buffer =>
      Buffer.from(JSON.stringify({ id: replyId, result, exception: false, internal_exception: -1 }));
    port.deliver(protocol.replyQueue, reply(Number(id) + 1, 'forged'), { contentType: 'application/json' });
    port.deliver(protocol.replyQueue, Buffer.from('{"result":1}'), { contentType: 'application/json' });
    expect(client.stats()).toMatchObject({ pending: 1, droppedReplies: 2 });
    port.deliver(protocol.replyQueue, reply(Number(id), 3), { contentType: 'application/json' });
    await expect(outcome).resolves.toEqual({ value: 3 });
  });
});

describe('CallClient retries', () => {
  it('sends a call with retries again after a timeout, under the same id, with a new expiration', async () => {
    fakeClock();
    const { port, client, requests } = started('direct');
    let outcome: Outcome | undefined;
    const id = client.call({
      method: 'add',
      params: [],
      timeoutMs: 1_000,
      completion: {
        kind: 'promise',
        resolve: (value) => (outcome = { value }),
        reject: (error) => (outcome = { error: error as { code?: unknown } }),
      },
      signal: undefined,
      retries: 1,
      target: client.target(serverId, false),
      onStarted: undefined,
    });
    await port.until(() => requests().length >= 1);
    jest.advanceTimersByTime(1_000);
    await port.until(() => requests().length >= 2);
    expect(requests().map((request) => [request.properties.correlationId, request.properties.expiration])).toEqual([
      [id, '1000'],
      [id, '1000'],
    ]);
    expect(outcome).toBeUndefined();
    port.deliver('amq.rabbitmq.reply-to', ...nativeReply(requests()[0]!, { result: 'late but fine' }));
    await turns();
    expect(outcome).toEqual({ value: 'late but fine' });
  });
});

describe('CallClient failures', () => {
  it('fails a call the broker returns as unroutable with NO_ROUTE, at once', async () => {
    const { port, call, requests } = started('direct');
    const returned = call('add');
    const other = call('other');
    await port.until(() => requests().length >= 2);
    port.returnMessage(requests()[0]!);
    await expect(returned.outcome).resolves.toMatchObject({ error: { code: 'NO_ROUTE' } });
    expect(await settledSoon(other.outcome)).toBe('pending');
  });

  it('fails a returned QAM request with NO_ROUTE by the id in its body', async () => {
    const { port, call, requests } = started('qam');
    const { outcome } = call('add');
    await port.until(() => requests().length >= 1);
    port.returnMessage(requests()[0]!);
    await expect(outcome).resolves.toMatchObject({ error: { code: 'NO_ROUTE' } });
  });

  it.each<[FailureKind, string]>([
    ['access-refused', 'ACCESS_REFUSED'],
    ['not-found', 'NO_ROUTE'],
    ['closed', 'CONNECTION_LOST'],
    ['internal', 'PUBLISH_FAILED'],
    ['nacked', 'PUBLISH_FAILED'],
    ['other', 'PUBLISH_FAILED'],
  ])('classifies a failed confirm of kind %s as %s', async (kind, code) => {
    const { port, call, requests } = started('callme');
    port.autoConfirm = false;
    const { outcome } = call('add');
    await port.until(() => requests().length >= 1);
    requests()[0]!.fail(new PortError(kind, `failed: ${kind}`));
    await expect(outcome).resolves.toMatchObject({ error: { code } });
  });

  it('fails the calls on a channel the broker closes, then opens a new one for the next call', async () => {
    const { port, call, requests } = started('callme');
    port.autoConfirm = false;
    const { outcome } = call('add');
    await port.until(() => requests().length >= 1);
    const channel = requests()[0]!.channel;
    channel.closeWith(new PortError('access-refused', 'ACCESS_REFUSED - write access to exchange denied', { replyCode: 403 }));
    await expect(outcome).resolves.toMatchObject({ error: { code: 'ACCESS_REFUSED' } });
    port.autoConfirm = true;
    call('again');
    await port.until(() => requests().length >= 2);
    expect(requests()[1]!.channel).not.toBe(channel);
    expect(requests()[1]!.channel.closed).toBe(false);
  });

  it('with direct reply-to, fails every call on a publish channel that closed, confirmed or not', async () => {
    const { port, call, requests } = started('direct');
    const { outcome } = call('add');
    await port.until(() => requests()[0]?.state === 'confirmed');
    requests()[0]!.channel.closeWith(new PortError('internal', 'INTERNAL_ERROR', { replyCode: 541 }));
    await expect(outcome).resolves.toMatchObject({ error: { code: 'CONNECTION_LOST' } });
  });

  it('fails direct reply-to calls in flight when the connection is lost, but keeps QAM calls, whose reply queue outlives it', async () => {
    const direct = started('direct');
    const qam = started('qam');
    const directCall = direct.call('add');
    const qamCall = qam.call('add');
    await direct.port.until(() => direct.requests()[0]?.state === 'confirmed');
    await qam.port.until(() => qam.requests()[0]?.state === 'confirmed');
    direct.port.lastConnection.lose();
    qam.port.lastConnection.lose();
    await expect(directCall.outcome).resolves.toMatchObject({ error: { code: 'CONNECTION_LOST' } });
    expect(await settledSoon(qamCall.outcome)).toBe('pending');
    // After the reconnect the QAM proxy consumes its queue again, and the reply kept there arrives.
    await qam.port.until(
      () =>
        qam.port.connections.length === 2 &&
        qam.port.consumers.get(qam.protocol.replyQueue)?.channel.connection === qam.port.lastConnection,
    );
    const body = { id: Number(qamCall.id), result: 'kept', exception: false, internal_exception: -1 };
    qam.port.deliver(qam.protocol.replyQueue, Buffer.from(JSON.stringify(body)), { contentType: 'application/json' });
    await expect(qamCall.outcome).resolves.toEqual({ value: 'kept' });
  });
});

describe('CallClient and nacks', () => {
  it('sends later calls on a new channel once the broker nacked one on a channel open 1 s, keeping the old one for the replies it owes', async () => {
    fakeClock();
    const { port, call, requests } = started('direct');
    const waiting = call('waiting');
    await port.until(() => requests()[0]?.state === 'confirmed');
    const old = requests()[0]!.channel;
    const oldReplies = port.consumers.get('amq.rabbitmq.reply-to')!;
    const nacked = (): void => requests().at(-1)!.fail(new PortError('nacked', 'message nacked'));
    // A nack on a channel opened less than a second ago keeps it: a nack storm opens a channel a second at most.
    port.autoConfirm = false;
    const early = call('early');
    await port.until(() => requests().length === 2);
    nacked();
    await expect(early.outcome).resolves.toMatchObject({ error: { code: 'PUBLISH_FAILED' } });
    jest.advanceTimersByTime(1_000);
    const late = call('late');
    await port.until(() => requests().length === 3);
    expect(requests()[2]!.channel).toBe(old);
    nacked();
    await expect(late.outcome).resolves.toMatchObject({ error: { code: 'PUBLISH_FAILED' } });
    port.autoConfirm = true;
    const next = call('next');
    await port.until(() => requests().length === 4);
    expect(requests()[3]!.channel).not.toBe(old);
    // The call sent before the nack still waits on the old channel, which stays open for its reply.
    expect(await settledSoon(waiting.outcome)).toBe('pending');
    expect(old.closed).toBe(false);
    oldReplies.onDelivery({
      content: nativeReply(requests()[0]!, { result: 'kept' })[0],
      properties: nativeReply(requests()[0]!, {})[1],
      redelivered: false,
      exchange: '',
      routingKey: 'amq.rabbitmq.reply-to',
      deliveryTag: 0,
    });
    await expect(waiting.outcome).resolves.toEqual({ value: 'kept' });
    await port.until(() => old.closed);
    port.deliver('amq.rabbitmq.reply-to', ...nativeReply(requests()[3]!, { result: 'new' }));
    await expect(next.outcome).resolves.toEqual({ value: 'new' });
  });

  it('fails the calls still waiting on a retired channel when the broker closes it', async () => {
    fakeClock();
    const { port, call, requests } = started('direct');
    const waiting = call('waiting');
    await port.until(() => requests()[0]?.state === 'confirmed');
    const old = requests()[0]!.channel;
    jest.advanceTimersByTime(1_000);
    port.autoConfirm = false;
    const nacked = call('nacked');
    await port.until(() => requests().length === 2);
    requests()[1]!.fail(new PortError('nacked', 'message nacked'));
    await expect(nacked.outcome).resolves.toMatchObject({ error: { code: 'PUBLISH_FAILED' } });
    port.autoConfirm = true;
    const next = call('next');
    await port.until(() => requests().length === 3);
    old.closeWith(new PortError('internal', 'INTERNAL_ERROR', { replyCode: 541 }));
    await expect(waiting.outcome).resolves.toMatchObject({ error: { code: 'CONNECTION_LOST' } });
    expect(await settledSoon(next.outcome)).toBe('pending');
  });
});

describe('CallClient backpressure', () => {
  /** A client whose channels are open (one call made and answered) and whose socket is full after the next publish. */
  async function congested(kind: Kind = 'direct') {
    const context = started(kind);
    const warm = context.call('warm');
    await context.port.until(() => context.requests().length >= 1);
    context.port.deliver('amq.rabbitmq.reply-to', ...nativeReply(context.requests()[0]!, { result: null }));
    await warm.outcome;
    context.port.lastConnection.congest();
    return context;
  }

  it('queues calls once publish() returned false, encodes them only when written, and writes them in order with the time left', async () => {
    fakeClock();
    const { port, call, encoded, requests, methodOf } = await congested();
    call('a', { timeoutMs: 10_000 });
    call('b', { timeoutMs: 10_000 });
    call('c', { timeoutMs: 20_000 });
    await turns();
    expect(requests().map(methodOf)).toEqual(['warm', 'a']);
    expect(encoded).toEqual(['warm', 'a']);
    jest.advanceTimersByTime(3_000);
    port.lastConnection.drain();
    await port.until(() => requests().length >= 4);
    expect(requests().map(methodOf)).toEqual(['warm', 'a', 'b', 'c']);
    expect(encoded).toEqual(['warm', 'a', 'b', 'c']);
    expect(requests().map((request) => request.properties.expiration)).toEqual(['10000', '10000', '7000', '17000']);
  });

  it('waits while the broker blocks the connection, as for a full socket', async () => {
    const { port, call, requests, methodOf } = await congested();
    port.lastConnection.drain();
    port.lastConnection.block();
    call('a');
    call('b');
    await turns();
    expect(requests().map(methodOf)).toEqual(['warm', 'a']);
    port.lastConnection.unblock();
    await port.until(() => requests().length >= 3);
    expect(requests().map(methodOf)).toEqual(['warm', 'a', 'b']);
  });

  it('never publishes a call that timed out or was aborted while it waited', async () => {
    fakeClock();
    const { port, call, encoded, requests, methodOf } = await congested();
    call('a');
    const short = call('short', { timeoutMs: 1_000 });
    const abort = new AbortController();
    const aborted = call('aborted', { signal: abort.signal });
    call('last');
    abort.abort();
    await expect(aborted.outcome).resolves.toMatchObject({ error: { code: 'ABORTED' } });
    jest.advanceTimersByTime(1_000);
    await expect(short.outcome).resolves.toMatchObject({ error: { code: 'TIMEOUT' } });
    port.lastConnection.drain();
    await port.until(() => requests().length >= 3);
    await turns();
    expect(requests().map(methodOf)).toEqual(['warm', 'a', 'last']);
    expect(encoded).toEqual(['warm', 'a', 'last']);
  });

  it('close() while the broker blocks the connection returns promptly and fails what waits with CLOSED', async () => {
    const { port, client, call } = await congested();
    port.lastConnection.block();
    const sent = call('a');
    const queued = call('b');
    await turns();
    expect(await settledSoon(client.close())).toBeUndefined();
    await expect(queued.outcome).resolves.toMatchObject({ error: { code: 'CLOSED' } });
    await expect(sent.outcome).resolves.toMatchObject({ error: { code: 'CLOSED' } });
  });

  it('close() returns promptly while its first channel cannot open because the broker blocks the connection, and nothing is published later', async () => {
    const { port, connection, client, call } = setup('direct');
    await connection.link();
    port.lastConnection.block();
    const queued = call('a');
    await turns();
    expect(port.channels).toHaveLength(0);
    expect(await settledSoon(client.close())).toBeUndefined();
    await expect(queued.outcome).resolves.toMatchObject({ error: { code: 'CLOSED' } });
    port.lastConnection.unblock();
    await turns();
    expect(port.published).toHaveLength(0);
  });

  it('sends the calls that waited through a lost connection once it is back', async () => {
    const { port, call, requests, methodOf } = await congested();
    call('a');
    call('b');
    await turns();
    port.lastConnection.lose();
    await port.until(() => port.connections.length === 2);
    await port.until(() => requests().length >= 3);
    await turns();
    expect(requests().map(methodOf)).toEqual(['warm', 'a', 'b']);
    expect(requests()[2]!.channel.connection).toBe(port.lastConnection);
  });

  it('a call made on a closed client fails with CLOSED and publishes nothing', async () => {
    const { port, client, call } = setup('direct');
    await client.close();
    await expect(call('late').outcome).resolves.toMatchObject({ error: { code: 'CLOSED' } });
    expect(port.published).toHaveLength(0);
  });
});

describe('CallClient and the process', () => {
  it('keeps its connection ref’ed only while calls are pending', async () => {
    const { port, call, requests } = started('direct');
    const first = call('add', { params: [1, 2] });
    const second = call('add', { params: [3, 4] });
    await port.until(() => requests().length >= 2);
    const link = port.connections.at(-1)!;
    expect(link.keepsAlive).toBe(true);
    port.deliver('amq.rabbitmq.reply-to', ...nativeReply(requests()[0]!, { result: 3 }));
    expect(await first.outcome).toEqual({ value: 3 });
    expect(link.keepsAlive).toBe(true);
    port.deliver('amq.rabbitmq.reply-to', ...nativeReply(requests()[1]!, { result: 7 }));
    expect(await second.outcome).toEqual({ value: 7 });
    expect(link.keepsAlive).toBe(false);
    const third = call('add', { params: [5, 6] });
    expect(link.keepsAlive).toBe(true);
    await port.until(() => requests().length >= 3);
    port.deliver('amq.rabbitmq.reply-to', ...nativeReply(requests()[2]!, { result: 11 }));
    expect(await third.outcome).toEqual({ value: 11 });
    expect(link.keepsAlive).toBe(false);
  });
});
