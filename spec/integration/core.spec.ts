/** Core calls, on RabbitMQ and on the embedded broker with the same assertions (spec/support/brokers.ts). */
import { setTimeout as delay } from 'node:timers/promises';
import { QAMConnection, QAMProxy, QAMServer, QAMTimeoutException, silentLogger } from '../../lib/index.js';
import { uniqueName } from '../support/broker.js';
import { brokers } from '../support/brokers.js';

class Calculator {
  calls = 0;
  adder_function(a: number, b: number): number {
    this.calls++;
    return a + b;
  }
  _private(): string {
    this.calls++;
    return 'secret';
  }
  negate = (x: number): number => -x;
  get doubler(): (x: number) => number {
    return (x) => 2 * x;
  }
}

describe.each(brokers)('on %s', (_name, useBroker) => {
  const broker = useBroker();
  let url: string;
  beforeAll(() => {
    url = broker.url;
  });
  const servers = { create: (options: Parameters<typeof broker.server>[0] = {}): QAMServer => broker.server(options) };

  describe('awaited calls', () => {
    const calculator = new Calculator();
    let proxy: QAMProxy;
    let server: QAMServer;

    beforeAll(async () => {
      server = servers.create();
      server
        .registerFunction(function add(x: number, y: number) {
          return x + y;
        })
        .registerFunction((value: unknown) => value, 'echo')
        .registerFunction(async (ms: number, value: unknown) => {
          await delay(ms);
          return value;
        }, 'slow')
        .registerClass(calculator, 'my_instance');
      await server.serve();
      proxy = new QAMProxy({ serverId: server.serverId, url, logger: silentLogger });
    });
    afterAll(() => proxy.close());

    it('calls a function registered under its own name', async () => {
      await expect(proxy['add'](2, 3)).resolves.toBe(5);
    });

    it('calls an instance method', async () => {
      await expect(proxy['my_instance']['adder_function'](2, 4)).resolves.toBe(6);
    });

    it('calls an arrow-function field and an accessor returning a function, as the types promise', async () => {
      await expect(proxy['my_instance']['negate'](5)).resolves.toBe(-5);
      await expect(proxy['my_instance']['doubler'](5)).resolves.toBe(10);
    });

    it('gives each of 200 concurrent calls its own result', async () => {
      const values = Array.from({ length: 200 }, (_, i) => i);
      const results = await Promise.all(values.map((i) => proxy['slow'](i % 7, { i })));
      expect(results).toEqual(values.map((i) => ({ i })));
    });

    it.each(['constructor', '__proto__', '_private', 'toString', 'hasOwnProperty'])(
      'answers my_instance.%s with method-not-found and runs nothing',
      async (name) => {
        const before = calculator.calls;
        await expect(proxy.invoke(`my_instance.${name}`)).rejects.toMatchObject({
          code: 'METHOD_NOT_FOUND',
          name: 'QAMMethodNotFoundException',
        });
        expect(calculator.calls).toBe(before);
      },
    );

    it('answers an unknown function, instance or top-level Object.prototype name with method-not-found', async () => {
      for (const method of ['nosuch', 'nope.add', 'my_instance.nosuch', 'constructor', 'hasOwnProperty', 'my_instance']) {
        await expect(proxy.invoke(method)).rejects.toMatchObject({ code: 'METHOD_NOT_FOUND' });
      }
    });

    it('times out after setTimeout seconds with QAMTimeoutException', async () => {
      const started = Date.now();
      const error = await proxy
        .setTimeout(0.2)
        ['slow'](1000, 'late')
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(QAMTimeoutException);
      expect(error).toMatchObject({ code: 'TIMEOUT' });
      expect(Date.now() - started).toBeLessThan(900);
    });

    it('keeps the original proxy’s timeout after setTimeout', async () => {
      const quick = proxy.setTimeout(0.05);
      await expect(quick['slow'](300, 1)).rejects.toMatchObject({ code: 'TIMEOUT' });
      await expect(proxy['slow'](300, 2)).resolves.toBe(2);
    });

    it('reaches a remote function named like a control through invoke', async () => {
      const local = servers.create();
      local.registerFunction(() => 'remote close', 'close').registerFunction(() => 'remote callback', 'callback');
      await local.serve();
      const other = new QAMProxy({ serverId: local.serverId, url, logger: silentLogger });
      await expect(other.invoke('close')).resolves.toBe('remote close');
      await expect(other.invoke('callback')).resolves.toBe('remote callback');
      await other.close();
    });
  });

  describe('the worker pool', () => {
    it('never runs more than `workers` calls at once, and a fast call is not held behind 1 s calls', async () => {
      let running = 0;
      let peak = 0;
      const server = servers.create({ workers: 4 });
      server
        .registerFunction(async () => {
          running++;
          peak = Math.max(peak, running);
          await delay(1000);
          running--;
          return 'slow';
        }, 'slow')
        .registerFunction(() => 'fast', 'fast');
      await server.serve();
      const proxy = new QAMProxy({ serverId: server.serverId, url, logger: silentLogger });
      const slow = Array.from({ length: 3 }, () => proxy['slow']());
      await delay(100);
      const started = Date.now();
      await expect(proxy['fast']()).resolves.toBe('fast');
      const fastMs = Date.now() - started;
      const more = Array.from({ length: 6 }, () => proxy['slow']());
      await Promise.all([...slow, ...more]);
      expect(peak).toBe(4);
      expect(fastMs).toBeLessThan(900);
      await proxy.close();
    });
  });

  describe('errors from the remote function', () => {
    class InsufficientFunds extends Error {
      override name = 'InsufficientFunds';
    }
    class Overdrawn extends InsufficientFunds {
      override name = 'Overdrawn';
    }

    it('reject with the remote name, message, code and cause; registered classes are rebuilt', async () => {
      const server = servers.create();
      server
        .registerFunction(() => {
          throw Object.assign(new RangeError('too big', { cause: new Error('limit 10') }), { code: 'E_RANGE' });
        }, 'fails')
        .registerFunction(() => {
          throw new Overdrawn('balance -5');
        }, 'withdraw');
      await server.serve();
      const proxy = new QAMProxy({ serverId: server.serverId, url, logger: silentLogger, errors: [InsufficientFunds, Overdrawn] });
      const error = await proxy['fails']().catch((e: unknown) => e);
      expect(error).toMatchObject({
        name: 'QAMRemoteException',
        remoteName: 'RangeError',
        message: 'too big',
        code: 'REMOTE_ERROR',
        remoteCode: 'E_RANGE',
        remoteStack: undefined,
      });
      expect((error as Error).cause).toMatchObject({ remoteName: 'Error', message: 'limit 10' });
      const custom = await proxy['withdraw']().catch((e: unknown) => e);
      expect(custom).toBeInstanceOf(Overdrawn);
      expect(custom).toBeInstanceOf(InsufficientFunds);
      expect(custom).toMatchObject({ message: 'balance -5' });
      await proxy.close();
    });

    it('carry the remote stack only when the server opts in', async () => {
      const server = servers.create({ exposeStack: true });
      server.registerFunction(function explode() {
        throw new Error('kaboom');
      });
      await server.serve();
      const proxy = new QAMProxy({ serverId: server.serverId, url, logger: silentLogger });
      await expect(proxy['explode']()).rejects.toMatchObject({ remoteStack: expect.stringContaining('explode') });
      await proxy.close();
    });

    it('turn a result that cannot be serialized into an error reply, not a timeout', async () => {
      const server = servers.create();
      server
        .registerFunction(() => 10n, 'bigint')
        .registerFunction(() => {
          const cyclic: Record<string, unknown> = {};
          cyclic['self'] = cyclic;
          return cyclic;
        }, 'cyclic');
      await server.serve();
      const proxy = new QAMProxy({ serverId: server.serverId, url, logger: silentLogger, timeout: 5 });
      await expect(proxy['bigint']()).rejects.toMatchObject({ code: 'SERIALIZATION_FAILED' });
      await expect(proxy['cyclic']()).rejects.toMatchObject({ code: 'SERIALIZATION_FAILED' });
      const superProxy = new QAMProxy({ serverId: server.serverId, url, logger: silentLogger, serializer: 'superjson' });
      await expect(superProxy['bigint']()).resolves.toBe(10n);
      await Promise.all([proxy.close(), superProxy.close()]);
    });
  });

  describe('serializers', () => {
    class Point {
      constructor(
        readonly x: number,
        readonly y: number,
      ) {}
    }

    it('superjson round-trips rich values, the server answering in the request’s serializer', async () => {
      const { superjson } = await import('../../lib/index.js');
      superjson.registerClass(Point, { identifier: 'spec.Point' });
      const server = servers.create();
      server.registerFunction((value: unknown) => value, 'echo');
      await server.serve();
      const rich = {
        when: new Date('2026-01-02T03:04:05Z'),
        big: 2n ** 80n,
        map: new Map<unknown, unknown>([[1, 'one']]),
        set: new Set(['a']),
        missing: undefined,
        pattern: /qam/i,
        bytes: new Uint8Array([0, 255]),
        buffer: Buffer.from([1, 2, 3]),
        point: new Point(1, 2),
      };
      const proxy = new QAMProxy({ serverId: server.serverId, url, serializer: 'superjson', logger: silentLogger });
      const back = (await proxy['echo'](rich)) as typeof rich;
      expect(back).toEqual(rich);
      expect(back.point).toBeInstanceOf(Point);
      const json = new QAMProxy({ serverId: server.serverId, url, logger: silentLogger });
      await expect(json['echo']({ when: new Date(0) })).resolves.toEqual({ when: '1970-01-01T00:00:00.000Z' });
      await Promise.all([proxy.close(), json.close()]);
    });
  });

  describe('hostile input', () => {
    it('pollutes nothing with __proto__ or constructor keys, on either side', async () => {
      const server = servers.create();
      server.registerFunction((value: Record<string, unknown>) => ({ ...value, seen: Object.keys(value) }), 'inspect');
      await server.serve();
      for (const serializer of ['json', 'superjson'] as const) {
        const proxy = new QAMProxy({ serverId: server.serverId, url, serializer, logger: silentLogger });
        const hostile = JSON.parse('{"__proto__": {"polluted": true}, "constructor": {"prototype": {"polluted": true}}}') as Record<
          string,
          unknown
        >;
        await proxy['inspect'](hostile).catch(() => undefined);
        expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
        expect(Object.prototype).not.toHaveProperty('polluted');
        await proxy.close();
      }
    });

    it('refuses an oversized request locally and an oversized one on the server with PAYLOAD_TOO_LARGE', async () => {
      const server = servers.create({ maxMessageBytes: 1024 });
      server.registerFunction((value: string) => value.length, 'size').registerFunction((n: number) => 'x'.repeat(n), 'make');
      await server.serve();
      const strict = new QAMProxy({ serverId: server.serverId, url, logger: silentLogger, maxMessageBytes: 1024 });
      await expect(strict['size']('x'.repeat(2000))).rejects.toMatchObject({ code: 'PAYLOAD_TOO_LARGE' });
      const lax = new QAMProxy({ serverId: server.serverId, url, logger: silentLogger });
      await expect(lax['size']('x'.repeat(2000))).rejects.toMatchObject({ code: 'PAYLOAD_TOO_LARGE' });
      await expect(lax['make'](5000)).rejects.toMatchObject({ code: 'PAYLOAD_TOO_LARGE' });
      await expect(lax['size']('small')).resolves.toBe(5);
      await Promise.all([strict.close(), lax.close()]);
    });

    it('answers the Map methods of a registered Map subclass with method-not-found, leaving the store intact', async () => {
      class Store extends Map<string, number> {
        total(): number {
          return [...this.values()].reduce((sum, value) => sum + value, 0);
        }
      }
      const store = new Store([
        ['a', 1],
        ['b', 2],
      ]);
      const server = servers.create();
      server.registerClass(store, 'store');
      await server.serve();
      const proxy = new QAMProxy({ serverId: server.serverId, url, logger: silentLogger });
      await expect(proxy['store']['clear']()).rejects.toMatchObject({ code: 'METHOD_NOT_FOUND' });
      await expect(proxy['store']['set']('c', 3)).rejects.toMatchObject({ code: 'METHOD_NOT_FOUND' });
      await expect(proxy['store']['delete']('a')).rejects.toMatchObject({ code: 'METHOD_NOT_FOUND' });
      expect([...store]).toEqual([
        ['a', 1],
        ['b', 2],
      ]);
      await expect(proxy['store']['total']()).resolves.toBe(3);
      await proxy.close();
    });
  });

  describe('proxy lifecycle', () => {
    it('publishes nothing when awaited or printed (counted on the broker)', async () => {
      const server = servers.create();
      const serverId = server.serverId;
      const connection = broker.connection();
      const channel = await broker.channel();
      await channel.declareQueue(`server_${serverId}_queue`, { durable: true, exclusive: false, autoDelete: false });
      const proxy = new QAMProxy({ serverId, connection, timeout: 0.2 });
      await proxy;
      await proxy['my_instance'];
      String(proxy['my_instance']['add']);
      JSON.stringify(proxy);
      await delay(100);
      expect(await broker.queue(`server_${serverId}_queue`)).toMatchObject({ ready: 0, unacked: 0 });
      await expect(proxy['add'](1, 2)).rejects.toMatchObject({ code: 'TIMEOUT' });
      await proxy.close();
      await channel.deleteQueue(`server_${serverId}_queue`);
      await connection.close();
    }, 90_000);

    it('close() rejects every pending call with CLOSED, and later calls too', async () => {
      const server = servers.create();
      server.registerFunction(() => delay(2000), 'hang');
      await server.serve();
      const proxy = new QAMProxy({ serverId: server.serverId, url, logger: silentLogger });
      const pending = Promise.allSettled([proxy['hang'](), proxy['hang']()]);
      await delay(100);
      await proxy.close();
      expect(await pending).toEqual([
        { status: 'rejected', reason: expect.objectContaining({ code: 'CLOSED' }) },
        { status: 'rejected', reason: expect.objectContaining({ code: 'CLOSED' }) },
      ]);
      await expect(proxy['hang']()).rejects.toMatchObject({ code: 'CLOSED' });
    });

    it('leaves no queue on the broker after close, with either kind of reply', async () => {
      // In a vhost of its own, so that what the other tests declare meanwhile does not count.
      const vhost = await broker.addVhost();
      const vhostUrl = broker.urlFor({ name: 'guest', password: 'guest' }, vhost);
      const names = async (): Promise<string[]> => (await broker.queues(vhost)).map((queue) => queue.name);
      const server = new QAMServer({ serverId: uniqueName('spec'), url: vhostUrl, logger: silentLogger }).registerFunction(() => 1, 'one');
      await server.serve();
      const before = (await names()).sort();
      // The request queue, and the instance's own queue of cancels (exclusive, auto-delete).
      const cancels = `server_${server.serverId}_cancel_${server.instanceId.slice(server.serverId.length + 1)}`;
      expect(before).toEqual([cancels, `server_${server.serverId}_queue`]);
      for (const replies of ['direct', 'callme'] as const) {
        const proxy = new QAMProxy({ serverId: server.serverId, url: vhostUrl, replies, logger: silentLogger });
        await expect(proxy['one']()).resolves.toBe(1);
        await proxy.close();
      }
      expect((await names()).sort()).toEqual(before);
      await server.close();
      expect(await names()).toEqual([`server_${server.serverId}_queue`]);
    }, 90_000);

    it('shares one connection between several servers and proxies, each on its own channels', async () => {
      const connection = new QAMConnection({ url, logger: silentLogger });
      const first = new QAMServer({ serverId: uniqueName('spec'), connection, logger: silentLogger }).registerFunction(
        () => 'first',
        'who',
      );
      const second = new QAMServer({ serverId: uniqueName('spec'), connection, logger: silentLogger }).registerFunction(
        () => 'second',
        'who',
      );
      await Promise.all([first.serve(), second.serve()]);
      const a = new QAMProxy({ serverId: first.serverId, connection });
      const b = new QAMProxy({ serverId: second.serverId, connection });
      await expect(Promise.all([a['who'](), b['who']()])).resolves.toEqual(['first', 'second']);
      await a.close();
      await expect(b['who']()).resolves.toBe('second');
      await Promise.all([b.close(), first.close({ deleteQueue: true }), second.close({ deleteQueue: true })]);
      expect(connection.connected).toBe(true);
      await connection.close();
    });

    it('a server close lets running calls finish and reply', async () => {
      const server = new QAMServer({ serverId: uniqueName('spec'), url, logger: silentLogger }).registerFunction(async () => {
        await delay(300);
        return 'done';
      }, 'work');
      await server.serve();
      const proxy = new QAMProxy({ serverId: server.serverId, url, logger: silentLogger });
      const running = proxy['work']();
      await delay(100);
      await server.close({ deleteQueue: true });
      await expect(running).resolves.toBe('done');
      await proxy.close();
    });
  });

  describe('acknowledgement', () => {
    it('with ack: onReceipt, still pulls no more than its workers take from the queue', async () => {
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      const server = servers.create({ workers: 2, ack: 'onReceipt' });
      server.registerFunction(() => gate, 'held');
      await server.serve();
      const proxy = new QAMProxy({ serverId: server.serverId, url, logger: silentLogger });
      const calls = Promise.all(Array.from({ length: 10 }, () => proxy['held']()));
      await delay(200);
      const info = await broker.queue(`server_${server.serverId}_queue`);
      release();
      expect(info?.ready).toBe(6);
      await calls;
      await proxy.close();
    }, 90_000);
  });

  describe('reply addresses', () => {
    it('never runs a request whose reply_to is an exchange that is not a client reply exchange, nor publishes into it', async () => {
      let runs = 0;
      const server = servers.create();
      server.registerFunction(() => {
        runs++;
        return 'pong';
      }, 'ping');
      await server.serve();
      const channel = await broker.channel();
      const tap = uniqueName('tap');
      await channel.declareQueue(tap, { durable: false, exclusive: true, autoDelete: false });
      await channel.bindQueue(tap, 'amq.fanout', '');
      const replies: unknown[] = [];
      await channel.consume(tap, (message) => replies.push(message.content.toString()), { noAck: true });
      channel.publish(
        '',
        `server_${server.serverId}_queue`,
        Buffer.from(JSON.stringify({ method: 'ping', params: [] })),
        { replyTo: 'amq.fanout', contentType: 'application/json' },
        { mandatory: false },
      );
      const proxy = new QAMProxy({ serverId: server.serverId, url, logger: silentLogger });
      await delay(200);
      await expect(proxy['ping']()).resolves.toBe('pong');
      expect(replies).toEqual([]);
      expect(runs).toBe(1);
      expect(server.stats()).toMatchObject({ served: 1, failed: 1 });
      await proxy.close();
    });
  });
});
