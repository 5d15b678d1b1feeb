import { setTimeout as delay } from 'node:timers/promises';
import { QAMConnection, QAMException, QAMProxy, QAMServer, silentLogger } from '../../lib/index.js';
import { deleteExchanges, deleteQueues, uniqueName, waitUntil } from '../support/broker.js';
import { TcpProxy } from '../support/tcp-proxy.js';
import { Servers, quietConnection, recordingLogger, url, rawChannel } from './fixtures.js';

const servers = new Servers();
let tcp: TcpProxy;

beforeEach(async () => {
  tcp = await TcpProxy.start();
});
afterEach(() => tcp.close());
afterAll(() => servers.closeAll());

const fastReconnect = { reconnectDelay: { min: 0.05, max: 0.5 }, logger: silentLogger };

async function slowServer(): Promise<QAMServer> {
  const server = servers.create({ workers: 200 });
  server.registerFunction(async (ms: number, value: unknown) => {
    await delay(ms);
    return value;
  }, 'slow');
  await server.serve();
  return server;
}

/** Calls until one succeeds, returning how long that took. */
async function recoveryTime(call: () => Promise<unknown>, limitMs: number): Promise<number> {
  const started = Date.now();
  await waitUntil(
    () =>
      call().then(
        () => true,
        () => false,
      ),
    { timeoutMs: limitMs, intervalMs: 100, message: 'a call succeeding again' },
  );
  return Date.now() - started;
}

describe('connection loss under the proxy', () => {
  it('settles 100 calls in flight within 1 s with CONNECTION_LOST, then works again', async () => {
    const server = await slowServer();
    const connection = new QAMConnection({ url: tcp.url(), ...fastReconnect });
    const events: string[] = [];
    connection.on('disconnect', () => events.push('disconnect'));
    connection.on('connect', () => events.push('connect'));
    const proxy = new QAMProxy({ serverId: server.serverId, connection, timeout: 20 });
    await proxy['slow'](0, 'warm');
    const calls = Promise.allSettled(Array.from({ length: 100 }, (_, i) => proxy['slow'](3000, i)));
    await delay(200);
    const cut = Date.now();
    tcp.cutAll();
    const outcomes = await calls;
    expect(Date.now() - cut).toBeLessThan(1000);
    expect(
      outcomes.every((outcome) => outcome.status === 'rejected' && (outcome.reason as { code?: string }).code === 'CONNECTION_LOST'),
    ).toBe(true);
    expect(proxy.getStats().pending).toBe(0);
    await expect(proxy['slow'](0, 'again')).resolves.toBe('again');
    expect(events).toEqual(['connect', 'disconnect', 'connect']);
    await proxy.close();
    await connection.close();
  });

  it('makes calls wait while the broker is unreachable, until their timeout or the reconnect', async () => {
    const server = await slowServer();
    const connection = new QAMConnection({ url: tcp.url(), ...fastReconnect });
    const failures: number[] = [];
    connection.on('reconnect-failed', (_error, attempt) => failures.push(attempt));
    const proxy = new QAMProxy({ serverId: server.serverId, connection, timeout: 5 });
    await proxy['slow'](0, 'warm');
    tcp.refuse(true);
    tcp.cutAll();
    await delay(50);
    await expect(proxy.setTimeout(0.5)['slow'](0, 'lost')).rejects.toMatchObject({ code: 'TIMEOUT' });
    expect(failures.length).toBeGreaterThan(0);
    const waiting = proxy['slow'](0, 'after');
    await delay(300);
    tcp.refuse(false);
    await expect(waiting).resolves.toBe('after');
    expect(proxy.getStats().pending).toBe(0);
    await proxy.close();
    await connection.close();
  });

  it('re-sends an idempotent call with retry() after the connection is lost', async () => {
    const server = await slowServer();
    const connection = new QAMConnection({ url: tcp.url(), ...fastReconnect });
    const proxy = new QAMProxy({ serverId: server.serverId, connection, timeout: 5 });
    await proxy['slow'](0, 'warm');
    const retried = proxy.retry(2)['slow'](300, 'retried');
    const plain = proxy['slow'](300, 'plain');
    await delay(100);
    tcp.cutAll();
    await expect(plain).rejects.toMatchObject({ code: 'CONNECTION_LOST' });
    await expect(retried).resolves.toBe('retried');
    await proxy.close();
    await connection.close();
  });
});

describe('retries on timeout', () => {
  it('re-sends a bounded number of times, then gives up with TIMEOUT', async () => {
    let invocations = 0;
    const server = servers.create();
    server
      .registerFunction(async () => {
        invocations++;
        if (invocations === 1) await delay(1000);
        return invocations;
      }, 'flaky')
      .registerFunction(async () => {
        await delay(1000);
        return 'never in time';
      }, 'hopeless');
    await server.serve();
    const proxy = new QAMProxy({ serverId: server.serverId, url, logger: silentLogger });
    await expect(proxy.setTimeout(0.3).retry(2)['flaky']()).resolves.toBe(2);
    const started = Date.now();
    await expect(proxy.setTimeout(0.2).retry(1)['hopeless']()).rejects.toMatchObject({ code: 'TIMEOUT' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(380);
    expect(() => proxy.retry(-1)).toThrow(expect.objectContaining({ code: 'INVALID_CALL' }));
    await proxy.close();
  });
});

describe('connection loss under the server', () => {
  it('answers again within 10 s after its connection is cut, its consumer restored', async () => {
    const serverId = uniqueName('spec');
    const connection = new QAMConnection({ url: tcp.url(), ...fastReconnect });
    const server = new QAMServer({ serverId, connection, logger: silentLogger }).registerFunction(() => 'pong', 'ping');
    await server.serve();
    const proxy = new QAMProxy({ serverId, url, logger: silentLogger, timeout: 1 });
    await expect(proxy['ping']()).resolves.toBe('pong');
    tcp.cutAll();
    const took = await recoveryTime(() => proxy['ping'](), 10_000);
    expect(took).toBeLessThan(10_000);
    await proxy.close();
    await server.close({ deleteQueue: true });
    await connection.close();
  });

  it('redeclares its queue when it is deleted under it', async () => {
    const server = servers.create();
    server.registerFunction(() => 'pong', 'ping');
    await server.serve();
    const proxy = new QAMProxy({ serverId: server.serverId, url, logger: silentLogger, timeout: 1 });
    await expect(proxy['ping']()).resolves.toBe('pong');
    await deleteQueues([`server_${server.serverId}_queue`]);
    await expect(proxy['ping']()).rejects.toMatchObject({ code: 'NO_ROUTE' });
    await recoveryTime(() => proxy['ping'](), 10_000);
    await proxy.close();
  });

  it('declares its exchanges again when they are deleted under it, for both protocols', async () => {
    const logger = recordingLogger();
    const server = servers.create({ logger, protocol: ['native', 'qam'] });
    server.registerFunction(() => 'pong', 'ping');
    await server.serve();
    // callme's proxies publish to the server's exchange (direct reply-to ones to its queue).
    const native = new QAMProxy({ serverId: server.serverId, url, replies: 'callme', logger: silentLogger, timeout: 1 });
    const qam = new QAMProxy({ serverId: server.serverId, url, protocol: 'qam', logger: silentLogger, timeout: 1 });
    try {
      await expect(Promise.all([native['ping'](), qam['ping']()])).resolves.toEqual(['pong', 'pong']);
      const exchanges = [`server_${server.serverId}_ex`, `${server.serverId}_server_exchange`];
      await deleteExchanges(exchanges);
      await expect(Promise.all([native['ping'](), qam['ping']()].map((call) => call.catch((error: unknown) => error)))).resolves.toEqual([
        expect.objectContaining({ code: 'NO_ROUTE' }),
        expect.objectContaining({ code: 'NO_ROUTE' }),
      ]);
      await recoveryTime(() => native['ping'](), 40_000);
      await recoveryTime(() => qam['ping'](), 40_000);
      for (const exchange of exchanges)
        expect(logger.lines.filter((line) => line.includes(`its exchange ${exchange} is gone`))).toHaveLength(1);
    } finally {
      await Promise.all([native.close(), qam.close()]);
    }
  }, 90_000);

  it('names a queue declared with other flags, and the other servers on the connection keep answering', async () => {
    const connection = quietConnection();
    const healthy = new QAMServer({ serverId: uniqueName('spec'), connection, logger: silentLogger }).registerFunction(() => 'ok', 'ping');
    await healthy.serve();
    const clashing = uniqueName('spec');
    const channel = await rawChannel();
    await channel.assertQueue(`server_${clashing}_queue`, { durable: false });
    const broken = new QAMServer({ serverId: clashing, connection, logger: silentLogger });
    const error = await broken.serve().catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'PRECONDITION_FAILED' });
    expect((error as Error).message).toContain(`server_${clashing}_queue`);
    const proxy = new QAMProxy({ serverId: healthy.serverId, connection });
    await expect(proxy['ping']()).resolves.toBe('ok');
    await proxy.close();
    await channel.deleteQueue(`server_${clashing}_queue`);
    await healthy.close({ deleteQueue: true });
    await connection.close();
  });
});

describe('first connection', () => {
  it('fails at once with a clear error for a wrong password or an unreachable broker', async () => {
    const wrong = new QAMServer({ serverId: uniqueName('spec'), url: 'amqp://guest:wrong@127.0.0.1:5672', logger: silentLogger });
    await expect(wrong.serve()).rejects.toMatchObject({ code: 'ACCESS_REFUSED' });
    tcp.refuse(true);
    const unreachable = new QAMProxy({ serverId: 'x', url: tcp.url(), logger: silentLogger, timeout: 5 });
    const started = Date.now();
    await expect(unreachable['ping']()).rejects.toMatchObject({ code: 'CONNECT_FAILED' });
    expect(Date.now() - started).toBeLessThan(2000);
    await unreachable.close();
  });
});

describe('stuck states', () => {
  it('sends again once the broker is back after a first call with an already aborted signal failed to connect', async () => {
    const server = await slowServer();
    tcp.refuse(true);
    const proxy = new QAMProxy({ serverId: server.serverId, url: tcp.url(), logger: silentLogger, timeout: 15 });
    const controller = new AbortController();
    controller.abort();
    await expect(proxy.withSignal(controller.signal)['slow'](0, 'aborted')).rejects.toMatchObject({ code: 'ABORTED' });
    await expect(proxy['slow'](0, 'refused')).rejects.toBeInstanceOf(QAMException);
    tcp.refuse(false);
    await expect(proxy['slow'](0, 'back')).resolves.toBe('back');
    expect(proxy.getStats().pending).toBe(0);
    await proxy.close();
  });

  it('tries to connect again for calls that retry after the first connection failed, instead of leaving them to time out', async () => {
    const server = await slowServer();
    tcp.refuse(true);
    const proxy = new QAMProxy({ serverId: server.serverId, url: tcp.url(), logger: silentLogger, timeout: 10 });
    const retried = [proxy.retry(1)['slow'](0, 1), proxy.retry(1)['slow'](0, 2)];
    const outcomes = await Promise.allSettled(retried);
    expect(outcomes.map((outcome) => outcome.status)).toEqual(['rejected', 'rejected']);
    expect(outcomes.map((outcome) => (outcome.status === 'rejected' ? (outcome.reason as QAMException).code : undefined))).not.toContain(
      'TIMEOUT',
    );
    tcp.refuse(false);
    await expect(proxy['slow'](0, 'back')).resolves.toBe('back');
    await proxy.close();
  });
});
