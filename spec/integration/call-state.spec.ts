import { QAMProxy, silentLogger, type QAMServer } from '../../lib/index.js';
import { uniqueName, waitUntil } from '../support/broker.js';
import { Servers, rawChannel, url } from './fixtures.js';

const servers = new Servers();
const proxies: QAMProxy[] = [];
afterAll(async () => {
  await Promise.all(proxies.map((proxy) => proxy.close()));
  await servers.closeAll();
});

/** A gate the registered `hold` function waits on; `open()` lets every held call finish. */
function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((resolve) => (open = resolve));
  return { wait, open };
}

let gates: Array<{ wait: Promise<void>; open: () => void }> = [];

/** A server with one worker whose `hold(tag)` runs until the current gate opens. */
async function holdingServer(serverId?: string, options: Parameters<Servers['create']>[0] = {}): Promise<QAMServer> {
  const server = servers.create({ workers: 1, ...(serverId === undefined ? {} : { serverId }), ...options });
  server.registerFunction(async (tag: string) => {
    await gates[gates.length - 1]?.wait;
    return tag;
  }, 'hold');
  await server.serve();
  return server;
}

function proxyFor(serverId: string, replies: 'direct' | 'callme' = 'direct'): QAMProxy {
  const proxy = new QAMProxy({ serverId, url, logger: silentLogger, replies });
  proxies.push(proxy);
  return proxy;
}

afterEach(() => {
  for (const open of gates) open.open();
  gates = [];
});

describe("the server's call state per uid", () => {
  it('tells a call waiting for a worker (0) from a running one (1) and a finished or unknown one (2)', async () => {
    // One worker serving two protocols: each protocol's channel has a prefetch of 1, so a second
    // call, through the other protocol, is delivered and waits for the worker.
    const server = await holdingServer(undefined, { protocol: ['native', 'qam'] });
    const proxy = proxyFor(server.serverId);
    const qamProxy = new QAMProxy({ serverId: server.serverId, url, logger: silentLogger, protocol: 'qam' });
    proxies.push(qamProxy);
    const held = gate();
    gates.push(held);
    const results: unknown[] = [];
    const first = proxy.callback((value) => results.push(value))['hold']('first') as string;
    await waitUntil(() => server.getCallbackState(first) === 1, { message: 'first running' });
    const second = qamProxy.callback((value) => results.push(value))['hold']('second') as string;
    const third = proxy.callback((value) => results.push(value))['hold']('third') as string;
    await waitUntil(() => server.getCallbackState(second) === 0, { message: 'second waiting for the worker' });
    // The third is still in the broker's queue (the native channel's prefetch is taken): unknown here.
    expect([server.getCallbackState(first), server.getCallbackState(second), server.getCallbackState(third)]).toEqual([1, 0, 2]);
    expect(server.getCallbackState('no-such-uid')).toBe(2);
    held.open();
    await waitUntil(() => results.length === 3, { message: 'all replies' });
    expect(results.sort()).toEqual(['first', 'second', 'third']);
    expect([first, second, third].map((uid) => server.getCallbackState(uid))).toEqual([2, 2, 2]);
  });
});

describe('the started notice', () => {
  it.each(['direct', 'callme'] as const)(
    'tells a proxy that opted in which instance took its call, before the reply (%s replies)',
    async (replies) => {
      const server = await holdingServer();
      const proxy = proxyFor(server.serverId, replies);
      const held = gate();
      gates.push(held);
      const started: Array<[string, string]> = [];
      const notified = proxy.withStartNotice((uid, instanceId) => started.push([uid, instanceId]));
      const results: unknown[] = [];
      const first = notified.callback((value) => results.push(value))['hold']('first') as string;
      const second = notified.callback((value) => results.push(value))['hold']('second') as string;
      await waitUntil(() => started.length === 1, { message: 'the first notice' });
      expect(started).toEqual([[first, server.instanceId]]);
      expect([notified.getRemoteState(first), notified.getRemoteState(second)]).toEqual([1, 0]);
      expect(proxy.startedBy(first)).toBe(server.instanceId);
      expect(proxy.startedBy(second)).toBeUndefined();
      held.open();
      await waitUntil(() => results.length === 2, { message: 'both replies' });
      expect(started).toEqual([
        [first, server.instanceId],
        [second, server.instanceId],
      ]);
      expect([proxy.getRemoteState(first), proxy.getRemoteState(second)]).toEqual([2, 2]);
      expect(proxy.startedBy(first)).toBeUndefined();
    },
  );

  it('names the instance that took the call among servers sharing one id', async () => {
    const serverId = uniqueName('spec-instances');
    const one = await holdingServer(serverId);
    const two = await holdingServer(serverId);
    expect(one.instanceId).not.toBe(two.instanceId);
    expect(one.instanceId.startsWith(`${serverId}.`)).toBe(true);
    const held = gate();
    gates.push(held);
    const proxy = proxyFor(serverId).withStartNotice();
    const calls = ['a', 'b'].map((tag) => proxy.callback(() => undefined)['hold'](tag) as string);
    await waitUntil(() => calls.every((uid) => proxy.getRemoteState(uid) === 1), { message: 'both started' });
    for (const uid of calls) {
      const by = one.getCallbackState(uid) === 1 ? one : two;
      expect(by.getCallbackState(uid)).toBe(1);
      expect(proxy.startedBy(uid)).toBe(by.instanceId);
    }
  });

  it('works with awaited calls, and a listener that throws loses nothing', async () => {
    const server = await holdingServer();
    const proxy = proxyFor(server.serverId).withStartNotice(() => {
      throw new Error('listener boom');
    });
    await expect(proxy['hold']('x')).resolves.toBe('x');
  });

  it('is asked for only by the proxies that opt in: the request carries x-qam-notify then, and only then', async () => {
    const serverId = uniqueName('spec-raw');
    const queue = `server_${serverId}_queue`;
    const channel = await rawChannel();
    await channel.assertQueue(queue, { durable: false, autoDelete: false });
    try {
      const headers: unknown[] = [];
      await channel.consume(queue, (message) => {
        if (message !== null) headers.push(message.properties.headers?.['x-qam-notify']);
      });
      const proxy = proxyFor(serverId).setTimeout(0.5);
      const plain = proxy['hold']('plain').catch(() => undefined);
      await waitUntil(() => headers.length === 1, { message: 'the plain request' });
      const opted = proxy
        .withStartNotice()
        ['hold']('opted')
        .catch(() => undefined);
      await waitUntil(() => headers.length === 2, { message: 'the opted-in request' });
      expect(headers).toEqual([undefined, 'started']);
      await Promise.all([plain, opted]);
    } finally {
      await channel.deleteQueue(queue);
    }
  });

  it("is refused with a TypeError on QAM's protocol, which has no notices", () => {
    const proxy = new QAMProxy({ serverId: uniqueName('spec-qam'), url, logger: silentLogger, protocol: 'qam' });
    proxies.push(proxy);
    expect(() => proxy.withStartNotice()).toThrow(TypeError);
  });
});
