/**
 * A server's at-most-once window (`dedupe`) over a fake of the AMQP port: a request that comes
 * again under the same uid is answered from its call's run, finished or running, without running
 * the function again, within the window and the memory bound.
 */
import { jest } from '@jest/globals';
import { QAMServer, silentLogger } from '../../../lib/index.js';
import { FakePort } from '../../support/fake-port.js';
import { directAddress, serving, type Served } from './helpers.js';

let served: Served[] = [];
async function start(...args: Parameters<typeof serving>): Promise<Served> {
  const server = await serving(...args);
  served.push(server);
  return server;
}

afterEach(async () => {
  jest.useRealTimers();
  for (const server of served) await server.close();
  served = [];
});

/** Hands the server `method` under `uid` and waits until it is acknowledged. */
async function call(s: Served, method: string, uid: string, params: unknown[] = [], extra: { userId?: string; address?: number } = {}) {
  const properties = {
    replyTo: directAddress(extra.address ?? 1),
    correlationId: uid,
    ...(extra.userId === undefined ? {} : { userId: extra.userId }),
  };
  const { deliveryTag } = s.request(method, params, properties);
  await s.port.until(() => s.port.acked.has(deliveryTag));
}

describe('QAMServer dedupe', () => {
  it('without dedupe, runs a request again under the same uid', async () => {
    const s = await start();
    await call(s, 'add', 'u1', [1, 2]);
    await call(s, 'add', 'u1', [1, 2]);
    expect(s.ran).toEqual(['add', 'add']);
    expect(s.server.stats().deduplicated).toBe(0);
  });

  it('answers a request that comes again under a finished call’s uid from its outcome, at its own reply address, without running it', async () => {
    const s = await start({ dedupe: true });
    await call(s, 'add', 'u1', [1, 2]);
    await call(s, 'add', 'u1', [1, 2], { address: 2 });
    expect(s.ran).toEqual(['add']);
    expect(s.replies().map(({ target, body, message }) => [target, body, message.properties.correlationId])).toEqual([
      [directAddress(1), { result: 3 }, 'u1'],
      [directAddress(2), { result: 3 }, 'u1'],
    ]);
    expect(s.server.stats()).toMatchObject({ served: 2, deduplicated: 1 });
    await call(s, 'add', 'u2', [2, 2]);
    expect(s.ran).toEqual(['add', 'add']);
  });

  it('answers an error the function threw again as the same error', async () => {
    const s = await start({ dedupe: {} });
    await call(s, 'fail', 'u1');
    await call(s, 'fail', 'u1');
    expect(s.ran).toEqual(['fail']);
    const bodies = s.replies().map(({ body }) => body as { error: { message: string } });
    expect(bodies.map((body) => body.error.message)).toEqual(['failed', 'failed']);
    expect(s.server.stats()).toMatchObject({ failed: 2, deduplicated: 1 });
  });

  it.each(['afterReply', 'onReceipt'] as const)(
    'with ack %s, a duplicate of a running call waits for that run and gets its outcome, acknowledged once answered',
    async (ack) => {
      const s = await start({ dedupe: true, ack });
      const first = s.request('gated', [], { replyTo: directAddress(1), correlationId: 'u1' });
      const second = s.request('gated', [], { replyTo: directAddress(2), correlationId: 'u1' }, { redelivered: true });
      await s.port.until(() => s.ran.length === 1);
      expect(s.port.acked.has(second.deliveryTag)).toBe(false);
      expect(s.server.getCallbackState('u1')).toBe(1);
      s.open();
      await s.port.until(() => s.port.acked.has(first.deliveryTag) && s.port.acked.has(second.deliveryTag));
      await s.port.until(() => s.port.published.length === 2 && s.server.stats().active === 0);
      expect(s.ran).toEqual(['gated']);
      expect(s.replies().map(({ target, body }) => [target, body])).toEqual(
        expect.arrayContaining([
          [directAddress(1), { result: 'opened' }],
          [directAddress(2), { result: 'opened' }],
        ]),
      );
    },
  );

  it('runs a duplicate whose call was skipped (its caller’s deadline had passed), and remembers that run', async () => {
    const s = await start({ dedupe: true });
    const expired = s.request('add', [1, 1], { replyTo: directAddress(1), correlationId: 'u1', expiration: '0' });
    await s.port.until(() => s.port.acked.has(expired.deliveryTag));
    expect(s.ran).toEqual([]);
    await call(s, 'add', 'u1', [1, 1]);
    await call(s, 'add', 'u1', [1, 1]);
    expect(s.ran).toEqual(['add']);
    expect(s.server.stats()).toMatchObject({ expired: 1, served: 2, deduplicated: 1 });
  });

  it('forgets a finished call after its window', async () => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
    const s = await start({ dedupe: { window: 60 } });
    await call(s, 'add', 'u1', [1, 2]);
    jest.setSystemTime(Date.now() + 59_000);
    await call(s, 'add', 'u1', [1, 2]);
    expect(s.ran).toEqual(['add']);
    jest.setSystemTime(Date.now() + 2_000);
    await call(s, 'add', 'u1', [1, 2]);
    expect(s.ran).toEqual(['add', 'add']);
  });

  it('keeps at most maxEntries finished calls, forgetting the one that finished first', async () => {
    const s = await start({ dedupe: { maxEntries: 2 } });
    for (const uid of ['u1', 'u2', 'u3']) await call(s, 'add', uid, [1, 1]);
    await call(s, 'add', 'u3', [1, 1]);
    await call(s, 'add', 'u2', [1, 1]);
    expect(s.ran).toHaveLength(3);
    await call(s, 'add', 'u1', [1, 1]);
    expect(s.ran).toHaveLength(4);
  });

  it('takes the same uid from another verified user, or for another method, for another call', async () => {
    const s = await start({ dedupe: true });
    await call(s, 'add', 'u1', [1, 1], { userId: 'olivia' });
    await call(s, 'add', 'u1', [1, 1], { userId: 'mallory' });
    await call(s, 'fail', 'u1', [], { userId: 'olivia' });
    expect(s.ran).toEqual(['add', 'add', 'fail']);
    expect(s.server.stats().deduplicated).toBe(0);
  });

  it("in QAM's format, takes one body id from two proxies (two reply routing keys) for two calls, and from one proxy for one", async () => {
    const s = await start({ dedupe: true, protocol: 'qam' });
    const qamRequest = async (id: number, client: string): Promise<void> => {
      const body = { id, method_name: 'add', routing_key: `${client}_client_routing_key`, params: [1, 2] };
      const { deliveryTag } = s.port.deliver('calc_server_queue', Buffer.from(JSON.stringify(body)), { contentType: 'application/json' });
      await s.port.until(() => s.port.acked.has(deliveryTag));
    };
    await qamRequest(7, 'alice');
    await qamRequest(7, 'bob');
    await qamRequest(7, 'alice');
    expect(s.ran).toEqual(['add', 'add']);
    expect(s.port.published.map((message) => [message.routingKey, JSON.parse(message.content.toString()) as unknown])).toEqual([
      ['alice_client_routing_key', { id: 7, result: 3, exception: false, internal_exception: -1 }],
      ['bob_client_routing_key', { id: 7, result: 3, exception: false, internal_exception: -1 }],
      ['alice_client_routing_key', { id: 7, result: 3, exception: false, internal_exception: -1 }],
    ]);
  });

  it('refuses bad dedupe options with a TypeError naming the option', () => {
    const connection = new FakePort().connection();
    const make = (dedupe: unknown) => () =>
      new QAMServer({ serverId: 'calc', connection, logger: silentLogger, dedupe: dedupe as { window: number } });
    expect(make({ window: 0 })).toThrow(/dedupe\.window/);
    expect(make({ maxEntries: 1.5 })).toThrow(/dedupe\.maxEntries/);
    expect(make({ windw: 5 })).toThrow(/windw/);
    expect(make('yes')).toThrow(TypeError);
    expect(make(false)).not.toThrow();
  });
});
