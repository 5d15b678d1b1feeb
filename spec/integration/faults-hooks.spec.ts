/**
 * Faults the brokers' hooks can make, on RabbitMQ and on the embedded broker with the same
 * assertions (spec/support/brokers.ts): connections cut under a proxy or a server (RabbitMQ:
 * through a TCP proxy; embedded: `MemoryBroker.cut`), queues and exchanges deleted under a
 * server, a queue declared with other flags. Faults only a network makes (a broker that refuses
 * connections, a port that never answers) are in faults.spec.ts and connect.spec.ts.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { QAMProxy, QAMServer, silentLogger } from '../../lib/index.js';
import { uniqueName, waitUntil } from '../support/broker.js';
import { brokers } from '../support/brokers.js';
import { recordingLogger } from './fixtures.js';

const fastReconnect = { reconnectDelay: { min: 0.05, max: 0.5 }, logger: silentLogger };

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

describe.each(brokers)('on %s', (_name, useBroker) => {
  const broker = useBroker();
  const servers = { create: (options: Parameters<typeof broker.server>[0] = {}): QAMServer => broker.server(options) };
  let url: string;
  beforeAll(() => {
    url = broker.url;
  });

  async function slowServer(): Promise<QAMServer> {
    const server = servers.create({ workers: 200 });
    server.registerFunction(async (ms: number, value: unknown) => {
      await delay(ms);
      return value;
    }, 'slow');
    await server.serve();
    return server;
  }

  describe('connection loss under the proxy', () => {
    it('settles 100 calls in flight within 1 s with CONNECTION_LOST, then works again', async () => {
      const server = await slowServer();
      const faulty = await broker.faulty();
      const connection = broker.connection({ ...faulty.options, ...fastReconnect });
      const events: string[] = [];
      connection.on('disconnect', () => events.push('disconnect'));
      connection.on('connect', () => events.push('connect'));
      const proxy = new QAMProxy({ serverId: server.serverId, connection, timeout: 20 });
      await proxy['slow'](0, 'warm');
      const calls = Promise.allSettled(Array.from({ length: 100 }, (_, i) => proxy['slow'](3000, i)));
      await delay(200);
      const cut = Date.now();
      faulty.cut();
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

    it('re-sends an idempotent call with retry() after the connection is lost', async () => {
      const server = await slowServer();
      const faulty = await broker.faulty();
      const connection = broker.connection({ ...faulty.options, ...fastReconnect });
      const proxy = new QAMProxy({ serverId: server.serverId, connection, timeout: 5 });
      await proxy['slow'](0, 'warm');
      const retried = proxy.retry(2)['slow'](300, 'retried');
      const plain = proxy['slow'](300, 'plain');
      await delay(100);
      faulty.cut();
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
      const faulty = await broker.faulty();
      const connection = broker.connection({ ...faulty.options, ...fastReconnect });
      const server = new QAMServer({ serverId, connection, logger: silentLogger }).registerFunction(() => 'pong', 'ping');
      await server.serve();
      const proxy = new QAMProxy({ serverId, url, logger: silentLogger, timeout: 1 });
      await expect(proxy['ping']()).resolves.toBe('pong');
      faulty.cut();
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
      await (await broker.channel()).deleteQueue(`server_${server.serverId}_queue`);
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
        const channel = await broker.channel();
        for (const exchange of exchanges) await channel.deleteExchange(exchange);
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
      const connection = broker.connection();
      const healthy = new QAMServer({ serverId: uniqueName('spec'), connection, logger: silentLogger }).registerFunction(
        () => 'ok',
        'ping',
      );
      await healthy.serve();
      const clashing = uniqueName('spec');
      const channel = await broker.channel();
      await channel.declareQueue(`server_${clashing}_queue`, { durable: false, exclusive: false, autoDelete: false });
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
});
