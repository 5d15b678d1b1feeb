/**
 * Interop with Python QAM's JSON wire format, against spec/interop/qam_peer.py: an independent
 * peer written from the format, not from this library. Both directions: a TypeScript proxy calling
 * the Python server, and the Python proxy calling a TypeScript server.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as amqp from 'amqplib';
import type { ConsumeMessage } from 'amqplib';
import { QAMMethodNotFoundException, QAMProxy, QAMRemoteException, QAMServer, silentLogger, type WireProtocol } from '../../lib/index.js';
import { brokerUrl, listQueueInfo, listQueues, listExchanges, rabbitmqctl, uniqueName, waitUntil } from '../support/broker.js';
import { TcpProxy } from '../support/tcp-proxy.js';
import { QamPeer, peerCleanup, type PeerLine } from './peer.js';

const url = brokerUrl();
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

const names = (serverId: string) => ({
  exchange: `${serverId}_server_exchange`,
  queue: `${serverId}_server_queue`,
  routingKey: `${serverId}_server_routing_key`,
  replyExchange: `${serverId}_client_exchange`,
});
const clientQueue = (clientId: string): string => `${clientId}_client_queue`;
const clientKey = (clientId: string): string => `${clientId}_client_routing_key`;
const notFound = (name: string): string => `Methodname ${name} is not registered on QAMServer`;

const nested = { list: [1, 2.5, 'three', null, true, { deep: [[], {}] }], text: 'é ✓ "quoted"', zero: 0, negative: -7 };

class TestClass {
  adder_function(a: number, b: number): number {
    return a + b;
  }

  concat(a: string, b: string): string {
    return a + b;
  }
}

/** The functions the Python peer's server registers, here in TypeScript, plus two QAM cannot have. */
function buildServer(serverId: string, protocol: WireProtocol | WireProtocol[]) {
  return new QAMServer({ serverId, url, protocol, logger: silentLogger })
    .registerFunction((x: number, y: number) => x + y, 'add')
    .registerFunction((value: unknown) => value, 'echo')
    .registerFunction((): never => {
      throw Object.assign(new Error('boom'), { args: ['boom', 42] });
    }, 'raises')
    .registerFunction((): never => {
      throw new Error('plain failure');
    }, 'fails')
    .registerFunction(async (seconds: number, value: unknown) => {
      await sleep(seconds * 1000);
      return value;
    }, 'slow')
    .registerFunction(() => 10n, 'bigint')
    .registerClass(new TestClass(), 'my_instance');
}

/** Publishes bodies as a QAM peer would, however malformed, with QAM's properties. */
async function publishRaw(exchange: string, routingKey: string, bodies: Buffer[]): Promise<void> {
  const connection = await amqp.connect(url);
  try {
    const channel = await connection.createConfirmChannel();
    for (const body of bodies)
      channel.publish(exchange, routingKey, body, { persistent: true, contentType: 'application/json', contentEncoding: 'utf-8' });
    await channel.waitForConfirms();
  } finally {
    await connection.close();
  }
}

/** What a call rejected with. */
async function rejection(promise: Promise<unknown>): Promise<Error & Record<string, unknown>> {
  try {
    await promise;
  } catch (error) {
    return error as Error & Record<string, unknown>;
  }
  throw new Error('expected the call to fail');
}

describe('a TypeScript QAM proxy calling the Python QAM peer server', () => {
  const serverId = uniqueName('pyserver');
  const clientId = uniqueName('tsclient');
  let peer: QamPeer | undefined;
  let proxy: QAMProxy;

  beforeAll(async () => {
    peer = await QamPeer.start(['server', '--server-id', serverId], url);
    proxy = new QAMProxy({ url, serverId, protocol: 'qam', clientId, timeout: 5, logger: silentLogger });
  });

  afterAll(async () => {
    await proxy.close();
    await peer?.stop();
    await peerCleanup(url, serverId, [clientId]);
  });

  it('gets results', async () => {
    await expect(proxy.add(2, 3)).resolves.toBe(5);
    await expect(proxy.add('a', 'b')).resolves.toBe('ab');
    await expect(proxy.echo(null)).resolves.toBeNull();
  });

  it('passes nested JSON both ways', async () => {
    await expect(proxy.echo(nested)).resolves.toEqual(nested);
  });

  it('calls instance methods', async () => {
    await expect(proxy.my_instance.adder_function(2, 4)).resolves.toBe(6);
    await expect(proxy.my_instance.concat([1], [2])).resolves.toEqual([1, 2]);
  });

  it('rejects unknown functions, instances and methods with QAMMethodNotFoundException', async () => {
    for (const [method, name] of [
      ['nosuch', 'nosuch'],
      ['nope.x', 'x'],
      ['my_instance.nosuch', 'nosuch'],
    ] as const) {
      const error = await rejection(proxy.invoke(method));
      expect(error).toBeInstanceOf(QAMMethodNotFoundException);
      expect(error['code']).toBe('METHOD_NOT_FOUND');
      expect(error['args']).toEqual([notFound(name)]);
    }
  });

  it("rejects with the raised exception's args", async () => {
    const error = await rejection(proxy.raises());
    expect(error).toBeInstanceOf(QAMRemoteException);
    expect(error['code']).toBe('REMOTE_ERROR');
    expect(error['args']).toEqual(['boom', 42]);
  });

  it('runs 50 concurrent calls', async () => {
    const sums = await Promise.all(Array.from({ length: 50 }, (_, i) => proxy.add(i, 1000)));
    expect(sums).toEqual(Array.from({ length: 50 }, (_, i) => i + 1000));
  });

  it('does not take the late reply of a timed-out call for the next call', async () => {
    const dropped = proxy.getStats().droppedReplies;
    await expect(proxy.setTimeout(0.3).slow(0.8, 'late')).rejects.toMatchObject({ code: 'TIMEOUT' });
    // This call is waiting when the late reply arrives, half a second before its own.
    await expect(proxy.slow(0.8, 'fresh')).resolves.toBe('fresh');
    expect(proxy.getStats().droppedReplies).toBe(dropped + 1);
  });

  it('keeps a call waiting across a reconnect: its reply waits in the durable reply queue', async () => {
    const tcp = await TcpProxy.start();
    const cut = new QAMProxy({
      url: tcp.url(),
      serverId,
      protocol: 'qam',
      timeout: 5,
      reconnectDelay: { min: 0.05, max: 0.2 },
      logger: silentLogger,
    });
    try {
      await expect(cut.add(1, 1)).resolves.toBe(2);
      const call = cut.slow(0.8, 'kept');
      await sleep(200);
      tcp.cutAll();
      await expect(call).resolves.toBe('kept');
      expect(tcp.acceptedCount).toBe(2);
    } finally {
      await cut.close();
      await tcp.close();
    }
  });

  it('survives malformed request bodies', async () => {
    const dropped = proxy.getStats().droppedReplies;
    const { exchange, routingKey } = names(serverId);
    await publishRaw(exchange, routingKey, [
      Buffer.from('not json'),
      Buffer.from([0xff, 0xfe, 0x00]),
      Buffer.from('[1, 2]'),
      // Addressed to this proxy but for no call of it: the server's error reply is dropped.
      Buffer.from(JSON.stringify({ id: 7, routing_key: clientKey(clientId), method_name: 'add' })),
    ]);
    await expect(proxy.add(1, 2)).resolves.toBe(3);
    await waitUntil(() => proxy.getStats().droppedReplies === dropped + 1, { message: 'the error reply to the addressed malformed body' });
  });
});

describe('the Python QAM peer proxy calling a TypeScript QAMServer with protocol qam', () => {
  const serverId = uniqueName('tsserver');
  const clientId = uniqueName('pyclient');
  let server: ReturnType<typeof buildServer> | undefined;
  let peer: QamPeer | undefined;
  let seq = 0;

  const call = (method: string, params: unknown[] = [], timeout?: number): Promise<PeerLine> => {
    const n = ++seq;
    peer?.send({ seq: n, method, params, ...(timeout === undefined ? {} : { timeout }) });
    return peer!.result(n);
  };

  beforeAll(async () => {
    server = buildServer(serverId, 'qam');
    await server.serve();
    peer = await QamPeer.start(['proxy', '--server-id', serverId, '--client-id', clientId, '--verbose-replies', '--report-unmatched'], url);
  });

  afterAll(async () => {
    await peer?.stop();
    await server?.close({ deleteQueue: true });
    await peerCleanup(url, serverId, [clientId]);
  });

  it("answers with QAM's reply body and properties", async () => {
    const line = await call('add', [2, 3]);
    expect(line).toMatchObject({ ok: true, result: 5 });
    expect(line.reply).toEqual({ id: expect.any(Number), result: 5, exception: false, internal_exception: -1 });
    expect(line.properties).toEqual({
      delivery_mode: 2,
      content_type: 'application/json',
      content_encoding: 'utf-8',
      correlation_id: null,
      reply_to: null,
    });
    expect(line.problems).toBeUndefined();
    expect(await call('echo', [null])).toMatchObject({ ok: true, result: null });
  });

  it('passes nested JSON both ways', async () => {
    expect(await call('echo', [nested])).toMatchObject({ ok: true, result: nested });
  });

  it('calls instance methods', async () => {
    expect(await call('my_instance.adder_function', [2, 4])).toMatchObject({ ok: true, result: 6 });
    expect(await call('my_instance.concat', ['a', 'b'])).toMatchObject({ ok: true, result: 'ab' });
  });

  it("answers unknown names with QAM's not-found reply", async () => {
    const cases = [
      ['nosuch', 'nosuch'],
      ['nope.x', 'x'],
      ['my_instance.nosuch', 'nosuch'],
      ['my_instance', 'my_instance'],
      ['my_instance.adder_function.deeper', 'adder_function.deeper'],
      ['my_instance._hidden', '_hidden'],
      ['my_instance.constructor', 'constructor'],
    ];
    const lines = await Promise.all(cases.map(([method]) => call(method!, [1, 2])));
    cases.forEach(([, name], i) => {
      expect(lines[i]).toMatchObject({ ok: false, internal_exception: 1, result: notFound(name!) });
      expect(lines[i]?.reply).toMatchObject({ exception: true, internal_exception: 1 });
    });
  });

  it("answers a thrown error with its args, or its message, as QAM's exception args", async () => {
    expect(await call('raises')).toMatchObject({ ok: false, internal_exception: -1, result: ['boom', 42] });
    expect(await call('fails')).toMatchObject({ ok: false, internal_exception: -1, result: ['plain failure'] });
    const unserializable = await call('bigint');
    expect(unserializable).toMatchObject({ ok: false, internal_exception: -1, result: [expect.any(String)] });
  });

  it('runs 50 concurrent calls', async () => {
    const lines = await Promise.all(Array.from({ length: 50 }, (_, i) => call('add', [i, 1000])));
    expect(lines.map((line) => line.result)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1000));
  });

  it('replies to each request with its own id, so a late reply cannot answer a newer call', async () => {
    expect(await call('slow', [0.8, 'late'], 0.3)).toEqual({ seq, timeout: true });
    expect(await call('slow', [0.8, 'fresh'])).toMatchObject({ ok: true, result: 'fresh' });
    const late = await peer!.next((line) => line.unmatched === true && line.reply?.['result'] === 'late');
    expect(late.reply).toMatchObject({ exception: false, internal_exception: -1 });
  });

  it('survives malformed request bodies, answering those that carry an address', async () => {
    const failed = server!.stats().failed;
    const raw = (body: string): void => peer!.send({ seq: ++seq, raw: body });
    raw('not json');
    raw('[1, 2]');
    raw('{"id": 8, "routing_key": "x", "method_name": "add", "params": [NaN]}');
    // JSON.parse would round this id to 2^53, another id: it is refused without a reply.
    raw(`{"id": 9007199254740993, "routing_key": "${clientKey(clientId)}", "method_name": "add", "params": [1, 2]}`);
    raw(JSON.stringify({ id: 5, routing_key: clientKey(clientId), method_name: 3, params: [] }));
    raw(JSON.stringify({ id: 6, routing_key: clientKey(clientId), method_name: 'add' }));
    const { exchange, routingKey } = names(serverId);
    await publishRaw(exchange, routingKey, [Buffer.from([0xff, 0xfe, 0x00])]);

    for (const id of [5, 6]) {
      const reply = await peer!.next((line) => line.unmatched === true && line.reply?.['id'] === id);
      expect(reply.reply).toEqual({ id, result: [expect.any(String)], exception: true, internal_exception: -1 });
    }
    expect(await call('add', [1, 2])).toMatchObject({ ok: true, result: 3 });
    await waitUntil(() => server!.stats().failed === failed + 7, { message: 'seven refused requests' });
    expect(
      peer!
        .lines()
        .filter((line) => line.unmatched === true && typeof line.reply?.['id'] === 'number' && (line.reply['id'] as number) > 2 ** 52),
    ).toEqual([]);
  });
});

describe('one QAMServer serving both protocols', () => {
  const serverId = uniqueName('both');
  const clientId = uniqueName('pyboth');
  let server: ReturnType<typeof buildServer> | undefined;
  let peer: QamPeer | undefined;
  let proxy: QAMProxy | undefined;

  beforeAll(async () => {
    server = buildServer(serverId, ['native', 'qam']);
    await server.serve();
  });

  afterAll(async () => {
    await proxy?.close();
    await peer?.stop();
    await server?.close({ deleteQueue: true });
    await peerCleanup(url, serverId, [clientId]);
  });

  it('answers native TypeScript proxies and Python QAM proxies at once', async () => {
    peer = await QamPeer.start(['proxy', '--server-id', serverId, '--client-id', clientId], url);
    proxy = new QAMProxy({ url, serverId, timeout: 5, logger: silentLogger });
    for (let i = 1; i <= 20; i++) peer.send({ seq: i, method: 'my_instance.adder_function', params: [i, 100] });
    const native = await Promise.all(Array.from({ length: 20 }, (_, i) => proxy!.add(i, 200)));
    const python = await Promise.all(Array.from({ length: 20 }, (_, i) => peer!.result(i + 1)));
    expect(native).toEqual(Array.from({ length: 20 }, (_, i) => i + 200));
    expect(python.map((line) => line.result)).toEqual(Array.from({ length: 20 }, (_, i) => i + 101));

    const queues = await listQueueInfo();
    expect(queues.find((queue) => queue.name === `server_${serverId}_queue`)?.consumers).toBe(1);
    expect(queues.find((queue) => queue.name === names(serverId).queue)?.consumers).toBe(1);
  });

  it('deletes the queues and exchanges of both protocols on close({ deleteQueue: true })', async () => {
    await peer?.stop();
    peer = undefined;
    await server?.close({ deleteQueue: true });
    const [queues, exchanges] = await Promise.all([listQueues(), listExchanges()]);
    const { exchange, queue, replyExchange } = names(serverId);
    expect(queues).not.toContain(`server_${serverId}_queue`);
    expect(queues).not.toContain(queue);
    for (const name of [`server_${serverId}_ex`, exchange, replyExchange]) expect(exchanges).not.toContain(name);
  });
});

/** `rabbitmqctl list_queues` flags and arguments of one queue. */
async function queueFlags(name: string): Promise<Record<string, unknown> | undefined> {
  const rows = JSON.parse(
    await rabbitmqctl('list_queues', 'name', 'durable', 'auto_delete', 'exclusive', 'arguments', '--formatter', 'json', '--quiet'),
  ) as Record<string, unknown>[];
  return rows.find((row) => row['name'] === name);
}

/** `rabbitmqctl list_exchanges` type and flags of the named exchanges. */
async function exchangeFlags(wanted: string[]): Promise<Record<string, unknown>[]> {
  const rows = JSON.parse(
    await rabbitmqctl('list_exchanges', 'name', 'type', 'durable', 'auto_delete', '--formatter', 'json', '--quiet'),
  ) as Record<string, unknown>[];
  return rows.filter((row) => wanted.includes(String(row['name'])));
}

describe('the QAM proxy on the wire', () => {
  const qamFlags = { durable: true, exclusive: false, autoDelete: false } as const;
  let connection: amqp.ChannelModel;

  beforeAll(async () => {
    connection = await amqp.connect(url);
  });

  afterAll(async () => {
    await connection.close();
  });

  it("declares QAM's names and flags, sends QAM's body and properties, with ids that only increase from a random start", async () => {
    const serverId = uniqueName('wire');
    const clientId = uniqueName('wirecl');
    const server = names(serverId);
    const channel = await connection.createChannel();
    try {
      // A hand-made QAM server that answers every request with its method name.
      await channel.assertExchange(server.exchange, 'direct', { durable: true, autoDelete: false });
      const { queue } = await channel.assertQueue('', { exclusive: true });
      await channel.bindQueue(queue, server.exchange, server.routingKey);
      // A reply an earlier process under this client id left behind, for an id of a minute ago.
      await channel.assertExchange(server.replyExchange, 'direct', { durable: true, autoDelete: false });
      await channel.assertQueue(clientQueue(clientId), qamFlags);
      await channel.bindQueue(clientQueue(clientId), server.replyExchange, clientKey(clientId));
      const stale = { id: (Date.now() - 60_000) * 1000, result: 'stale', exception: false, internal_exception: -1 };
      channel.publish(server.replyExchange, clientKey(clientId), Buffer.from(JSON.stringify(stale)), { persistent: true });

      const requests: ConsumeMessage[] = [];
      await channel.consume(
        queue,
        (message) => {
          if (message === null) return;
          requests.push(message);
          const body = JSON.parse(message.content.toString()) as { id: number; routing_key: string; method_name: string };
          const reply = { id: body.id, result: `answer to ${body.method_name}`, exception: false, internal_exception: -1 };
          channel.publish(server.replyExchange, body.routing_key, Buffer.from(JSON.stringify(reply)), { persistent: true });
        },
        { noAck: true },
      );

      const proxy = new QAMProxy({ url, serverId, protocol: 'qam', clientId, timeout: 5, logger: silentLogger });
      try {
        await expect(proxy.add(1, 2)).resolves.toBe('answer to add');
        await expect(proxy.my_instance.adder_function(3, 4)).resolves.toBe('answer to my_instance.adder_function');
        expect(proxy.getStats().droppedReplies).toBe(1);

        const bodies = requests.map((message) => JSON.parse(message.content.toString()) as Record<string, unknown>);
        expect(bodies).toEqual([
          { id: expect.any(Number), method_name: 'add', routing_key: clientKey(clientId), params: [1, 2] },
          { id: expect.any(Number), method_name: 'my_instance.adder_function', routing_key: clientKey(clientId), params: [3, 4] },
        ]);
        const ids = bodies.map((body) => body['id'] as number);
        expect(ids.every((id) => Number.isSafeInteger(id) && id > 0)).toBe(true);
        expect(ids[1]).toBe(ids[0]! + 1);
        for (const message of requests) {
          expect(message.properties).toMatchObject({ deliveryMode: 2, contentType: 'application/json', contentEncoding: 'utf-8' });
          expect(message.properties.correlationId).toBeUndefined();
          expect(message.properties.replyTo).toBeUndefined();
        }

        const [queueRow, exchangeRows] = await Promise.all([
          queueFlags(clientQueue(clientId)),
          exchangeFlags([server.exchange, server.replyExchange]),
        ]);
        expect(queueRow).toEqual({ name: clientQueue(clientId), durable: true, auto_delete: false, exclusive: false, arguments: [] });
        expect(exchangeRows).toEqual(
          expect.arrayContaining(
            [server.exchange, server.replyExchange].map((name) => ({ name, type: 'direct', durable: true, auto_delete: false })),
          ),
        );
        expect(exchangeRows).toHaveLength(2);
      } finally {
        await proxy.close();
      }
      expect(await listQueues()).not.toContain(clientQueue(clientId));
    } finally {
      await channel.close();
      await peerCleanup(url, serverId, [clientId]);
    }
  });

  it('fails a call to a server nothing serves at once, and gives a generated reply queue an expiry', async () => {
    const serverId = uniqueName('nobody');
    const server = names(serverId);
    const proxy = new QAMProxy({ url, serverId, protocol: 'qam', timeout: 5, logger: silentLogger });
    try {
      const started = Date.now();
      await expect(proxy.add(1, 2)).rejects.toMatchObject({ code: 'NO_ROUTE' });
      expect(Date.now() - started).toBeLessThan(2000);

      const bindings = await rabbitmqctl('list_bindings', 'source_name', 'destination_name', '--formatter', 'json', '--quiet');
      const bound = (JSON.parse(bindings) as Record<string, unknown>[]).filter((row) => row['source_name'] === server.replyExchange);
      expect(bound).toHaveLength(1);
      const replyQueue = String(bound[0]?.['destination_name']);
      expect(replyQueue).toMatch(/^qam_[0-9a-f-]{36}_client_queue$/);
      expect(await queueFlags(replyQueue)).toEqual({
        name: replyQueue,
        durable: true,
        auto_delete: false,
        exclusive: false,
        arguments: [['x-expires', 'signedint', 3_600_000]],
      });
      await proxy.close();
      expect(await listQueues()).not.toContain(replyQueue);
    } finally {
      await proxy.close();
      await peerCleanup(url, serverId);
    }
  });

  it('refuses options that QAM cannot honour', () => {
    expect(() => new QAMProxy({ url, serverId: 'x', protocol: 'qam', serializer: 'superjson' })).toThrow(TypeError);
    expect(() => new QAMProxy({ url, serverId: 'x', protocol: 'qam', replies: 'callme' })).toThrow(TypeError);
    expect(() => new QAMProxy({ url, serverId: 'x', clientId: 'c' })).toThrow(TypeError);
    expect(() => new QAMProxy({ url, serverId: 'x', protocol: 'qam', clientId: 'bad name' })).toThrow(TypeError);
  });
});
