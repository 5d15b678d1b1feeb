import { setTimeout as delay } from 'node:timers/promises';
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { QAMProxy, QAMTimeoutException, currentCall, silentLogger, type QAMServer } from '../../lib/index.js';
import { uniqueName, waitUntil } from '../support/broker.js';
import { brokers } from '../support/brokers.js';
import { recordingLogger } from './fixtures.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Callback mode, cancellation, deadlines and fast failures, on RabbitMQ and on the embedded broker (spec/support/brokers.ts). */
describe.each(brokers)('on %s', (_name, useBroker) => {
  const broker = useBroker();
  const servers = { create: (options: Parameters<typeof broker.server>[0] = {}): QAMServer => broker.server(options) };
  let url: string;
  let server: QAMServer;
  let proxy: QAMProxy;

  beforeAll(async () => {
    url = broker.url;
    server = servers.create({ workers: 64 });
    server
      .registerFunction((x: number, y: number) => x + y, 'add')
      .registerFunction(async (ms: number, value: unknown) => {
        await delay(ms);
        return value;
      }, 'slow')
      .registerFunction(() => {
        throw new Error('remote boom');
      }, 'fails')
      .registerClass(
        new (class {
          adder_function(a: number, b: number): number {
            return a + b;
          }
        })(),
        'my_instance',
      );
    await server.serve();
    proxy = new QAMProxy({ serverId: server.serverId, url, logger: silentLogger });
  });
  afterAll(() => proxy.close());

  function outcome(): { ok: (value: unknown) => void; err: (error: Error) => void; settled: Promise<{ value?: unknown; error?: Error }> } {
    let ok!: (value: unknown) => void;
    let err!: (error: Error) => void;
    const settled = new Promise<{ value?: unknown; error?: Error }>((resolve) => {
      ok = (value) => resolve({ value });
      err = (error) => resolve({ error });
    });
    return { ok, err, settled };
  }

  describe('callback mode', () => {
    it('returns a uid at once and calls ok with the result, also for instance methods', async () => {
      const first = outcome();
      const uid = proxy.callback(first.ok, first.err)['add'](2, 4);
      expect(typeof uid).toBe('string');
      expect(await first.settled).toEqual({ value: 6 });
      const second = outcome();
      proxy.callback(second.ok, second.err)['my_instance']['adder_function'](2, 4);
      expect(await second.settled).toEqual({ value: 6 });
    });

    it('moves through states 0 → 1 → 2 around a slow async ok', async () => {
      let release!: () => void;
      let entered!: () => void;
      const inOk = new Promise<void>((resolve) => (entered = resolve));
      const uid = proxy
        .callback(async () => {
          entered();
          await new Promise<void>((resolve) => (release = resolve));
        })
        ['slow'](200, 'x');
      expect(proxy.getCallbackState(uid)).toBe(0);
      expect(proxy.getNumWaitingCallbacks()).toBe(1);
      await inOk;
      expect(proxy.getCallbackState(uid)).toBe(1);
      expect(proxy.getNumWaitingCallbacks()).toBe(1);
      release();
      await delay(0);
      expect(proxy.getCallbackState(uid)).toBe(2);
      expect(proxy.getNumWaitingCallbacks()).toBe(0);
      expect(proxy.getCallbackState('no-such-uid')).toBe(2);
    });

    it('ends each of 1,000 calls exactly once', async () => {
      const endings = new Map<number, number>();
      const count = (i: number) => () => endings.set(i, (endings.get(i) ?? 0) + 1);
      for (let i = 0; i < 1000; i++) proxy.callback(count(i), count(i))['slow'](i % 5, i);
      while (proxy.getNumWaitingCallbacks() > 0) await delay(10);
      await delay(50);
      expect(endings.size).toBe(1000);
      expect([...endings.values()].every((n) => n === 1)).toBe(true);
    });

    it('gives err a QAMTimeoutException, then drops and counts the late reply', async () => {
      const call = outcome();
      const dropped = proxy.getStats().droppedReplies;
      const uid = proxy.callback(call.ok, call.err).setTimeout(0.2)['slow'](1000, 'late');
      const { error } = await call.settled;
      expect(error).toBeInstanceOf(QAMTimeoutException);
      expect(proxy.getCallbackState(uid)).toBe(2);
      await delay(1000);
      expect(proxy.getStats().droppedReplies).toBe(dropped + 1);
    });

    it('logs failures without err and exceptions thrown by ok, disturbing no other call', async () => {
      const logger = recordingLogger();
      const logged = new QAMProxy({ serverId: server.serverId, url, logger });
      logged.callback(() => undefined)['fails']();
      logged
        .callback(() => undefined)
        .setTimeout(0.05)
        ['slow'](500, 1);
      logged
        .callback(() => {
          throw new Error('ok exploded');
        })
        ['add'](1, 1);
      const healthy = outcome();
      logged.callback(healthy.ok, healthy.err)['add'](20, 22);
      expect(await healthy.settled).toEqual({ value: 42 });
      while (logged.getNumWaitingCallbacks() > 0) await delay(10);
      const text = logger.lines.join('\n');
      expect(text).toContain('remote boom');
      expect(text).toContain('no reply within 0.05 s');
      expect(text).toContain('ok exploded');
      await logged.close();
    });

    it('logs callbacks returning a thenable whose then() throws, on the reply and the timeout path, disturbing no other call', async () => {
      const logger = recordingLogger();
      const own = new QAMProxy({ serverId: server.serverId, url, logger });
      const hostile = (): PromiseLike<void> => ({
        then: () => {
          throw new Error('then broke');
        },
      });
      const inFlight = own['slow'](300, 'still here');
      own.callback(hostile)['add'](1, 2);
      own
        .callback(() => undefined, hostile)
        .setTimeout(0.05)
        ['slow'](500, 'late');
      await expect(inFlight).resolves.toBe('still here');
      while (own.getNumWaitingCallbacks() > 0) await delay(10);
      expect(logger.lines.filter((line) => line.includes('then broke'))).toHaveLength(2);
      await expect(own['add'](2, 3)).resolves.toBe(5);
      await own.close();
    });

    it('can be cancelled by uid, err receiving the abort', async () => {
      const call = outcome();
      const uid = proxy.callback(call.ok, call.err)['slow'](1000, 'never');
      expect(proxy.cancel(uid)).toBe(true);
      expect((await call.settled).error).toMatchObject({ code: 'ABORTED' });
      expect(proxy.cancel(uid)).toBe(false);
      expect(proxy.getCallbackState(uid)).toBe(2);
    });
  });

  describe('cancellation of awaited calls', () => {
    it('rejects on abort, long before the call would have finished, and frees the entry', async () => {
      const controller = new AbortController();
      const call = proxy.withSignal(controller.signal)['slow'](2000, 'x');
      await delay(50);
      const aborted = Date.now();
      controller.abort(new Error('user gave up'));
      await expect(call).rejects.toMatchObject({ code: 'ABORTED' });
      expect(Date.now() - aborted).toBeLessThan(1000);
      expect(proxy.getStats().pending).toBe(0);
    });

    it('rejects at once for a signal aborted before the call', async () => {
      await expect(proxy.withSignal(AbortSignal.abort())['add'](1, 2)).rejects.toMatchObject({ code: 'ABORTED' });
    });
  });

  describe('deadlines', () => {
    it('a request that waited in the queue past its deadline never runs', async () => {
      let ran = 0;
      const late = servers.create();
      late.registerFunction(() => ++ran, 'count');
      const connection = broker.connection();
      const channel = await broker.channel();
      await channel.declareQueue(`server_${late.serverId}_queue`, { durable: true, exclusive: false, autoDelete: false });
      const caller = new QAMProxy({ serverId: late.serverId, connection, timeout: 0.3 });
      await expect(caller['count']()).rejects.toMatchObject({ code: 'TIMEOUT' });
      // A broker counts the expiration from when it read the request; on a loaded machine that can
      // be a while after the caller wrote it, so the server starts well after the deadline.
      await delay(500);
      await late.serve();
      await delay(300);
      expect(ran).toBe(0);
      await caller.close();
    });

    it('a server skips a request whose deadline passed even when the broker delivers it', async () => {
      let ran = 0;
      const late = servers.create();
      late.registerFunction(() => ++ran, 'count');
      await late.serve();
      const channel = await broker.channel();
      channel.publish(
        '',
        `server_${late.serverId}_queue`,
        Buffer.from(JSON.stringify({ method: 'count', params: [], deadline: Date.now() - 1 })),
        { contentType: 'application/json' },
        { mandatory: false },
      );
      await delay(300);
      expect(ran).toBe(0);
      expect(late.stats().expired).toBe(1);
    });

    it("a caller whose clock is an hour behind the server's is still answered: the expiration counts, not the clocks", async () => {
      const server = servers.create();
      server.registerFunction(() => currentCall()?.deadline, 'deadline');
      await server.serve();
      const channel = await broker.channel();
      const replies: unknown[] = [];
      await channel.consume('amq.rabbitmq.reply-to', (message) => replies.push(JSON.parse(message.content.toString())), { noAck: true });
      const sent = Date.now();
      const body = { method: 'deadline', params: [], deadline: sent - 3_600_000 + 5000 };
      channel.publish(
        '',
        `server_${server.serverId}_queue`,
        Buffer.from(JSON.stringify(body)),
        { contentType: 'application/json', replyTo: 'amq.rabbitmq.reply-to', correlationId: 'skewed', expiration: '5000' },
        { mandatory: false },
      );
      while (replies.length === 0 && Date.now() - sent < 3000) await delay(10);
      expect(replies).toHaveLength(1);
      const deadline = (replies[0] as { result: number }).result;
      expect(deadline).toBeGreaterThanOrEqual(sent + 5000);
      expect(deadline).toBeLessThanOrEqual(Date.now() + 5000);
      expect(server.stats().expired).toBe(0);
    });
  });

  describe('fast failure', () => {
    it('a call to a server id no queue serves fails fast (NO_ROUTE), long before its 30 s timeout', async () => {
      const nobody = new QAMProxy({ serverId: uniqueName('nobody'), url, timeout: 30 });
      await nobody
        .setTimeout(30)
        ['add'](0, 0)
        .catch(() => undefined);
      const started = Date.now();
      await expect(nobody['add'](1, 2)).rejects.toMatchObject({ code: 'NO_ROUTE' });
      expect(Date.now() - started).toBeLessThan(10_000);
      const call = outcome();
      nobody.callback(call.ok, call.err)['add'](1, 2);
      expect((await call.settled).error).toMatchObject({ code: 'NO_ROUTE' });
      await nobody.close();
    });

    it('a publish the broker nacks fails its call (the embedded broker ignores x-max-length: the call waits)', async () => {
      const serverId = uniqueName('full');
      const connection = broker.connection();
      const channel = await broker.channel();
      await channel.declareQueue(`server_${serverId}_queue`, {
        durable: true,
        exclusive: false,
        autoDelete: false,
        arguments: { 'x-max-length': 0, 'x-overflow': 'reject-publish' },
      });
      const caller = new QAMProxy({ serverId, connection, timeout: broker.kind === 'rabbitmq' ? 30 : 0.5 });
      const started = Date.now();
      if (broker.kind === 'rabbitmq') {
        await expect(caller['add'](1, 2)).rejects.toMatchObject({ code: 'PUBLISH_FAILED' });
        expect(Date.now() - started).toBeLessThan(1000);
      } else {
        // A documented difference: queue length limits have no effect, so the queue takes the request.
        const call = caller['add'](1, 2);
        await waitUntil(async () => (await broker.queue(`server_${serverId}_queue`))?.ready === 1, {
          message: 'the queue taking the request',
        });
        await expect(call).rejects.toMatchObject({ code: 'TIMEOUT' });
      }
      await caller.close();
      await channel.deleteQueue(`server_${serverId}_queue`);
    });
  });

  describe('memory', () => {
    it('100,000 timed-out callback calls leave the table empty and the heap small', async () => {
      const serverId = uniqueName('silent');
      const connection = broker.connection();
      const channel = await broker.channel();
      await channel.declareQueue(`server_${serverId}_queue`, { durable: true, exclusive: false, autoDelete: false });
      const silent = new QAMProxy({ serverId, connection, timeout: 0.1 });
      await silent['warmup']().catch(() => undefined);
      gc();
      const before = process.memoryUsage().heapUsed;
      let errors = 0;
      const err = (): void => {
        errors++;
      };
      const ok = (): void => undefined;
      for (let batch = 0; batch < 20; batch++) {
        for (let i = 0; i < 5000; i++) silent.callback(ok, err)['add'](i, i);
        while (silent.getNumWaitingCallbacks() > 0) await delay(20);
      }
      gc();
      const grown = process.memoryUsage().heapUsed - before;
      console.info(`heap grew ${(grown / 1024 / 1024).toFixed(2)} MiB after 100,000 timed-out callback calls`);
      expect(errors).toBe(100_000);
      expect(silent.getStats().pending).toBe(0);
      expect(silent.getNumWaitingCallbacks()).toBe(0);
      expect(grown).toBeLessThan(8 * 1024 * 1024);
      await silent.close();
      await channel.deleteQueue(`server_${serverId}_queue`);
    }, 120_000);
  });
});
