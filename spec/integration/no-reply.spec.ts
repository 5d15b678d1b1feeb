/**
 * Fire-and-forget calls (`proxy.noReply()`), on RabbitMQ and on the embedded broker: a call ends
 * once the broker confirmed its request, the server runs it and publishes nothing back, and a
 * failure is logged and counted on the server.
 */
import { QAMInvalidCallException, QAMNoRouteException, QAMProxy, QAMServer, silentLogger } from '../../lib/index.js';
import { startTestBroker, type TestBroker } from '../../lib/testing.js';
import { brokerUrl, uniqueName, waitUntil } from '../support/broker.js';
import { rawChannel, recordingLogger } from './fixtures.js';

const embedded: { current: TestBroker | undefined } = { current: undefined };

describe.each([
  ['RabbitMQ', (): string => brokerUrl()],
  ['the embedded broker', (): string => (embedded.current ??= startTestBroker()).url],
])('noReply() on %s', (_name, urlOf) => {
  let url: string;
  const logger = recordingLogger();
  const seen: unknown[] = [];
  let server: QAMServer;

  beforeAll(async () => {
    url = urlOf();
    server = new QAMServer({ serverId: uniqueName('noreply'), url, logger })
      .registerFunction((value: unknown) => {
        seen.push(value);
      }, 'note')
      .registerFunction(async () => {
        await Promise.resolve();
        throw Object.assign(new Error('disk full'), { code: 'ENOSPC' });
      }, 'fail')
      .registerFunction((a: number, b: number) => a + b, 'add');
    await server.serve();
  });

  afterAll(async () => {
    await server.close({ deleteQueue: true });
    embedded.current?.close();
    embedded.current = undefined;
  });

  const proxyFor = (options: { replies?: 'direct' | 'callme' } = {}): QAMProxy =>
    new QAMProxy({ serverId: server.serverId, url, logger: silentLogger, timeout: 10, ...options });

  it.each([['direct'], ['callme']] as const)(
    'resolves with nothing once the broker took the request, and the server runs it (replies %s)',
    async (replies) => {
      const proxy = proxyFor({ replies });
      const before = server.stats();
      try {
        const value = `one-way ${replies}`;
        await expect(proxy.noReply().note(value)).resolves.toBeUndefined();
        await waitUntil(() => seen.includes(value), { message: 'the server ran the one-way call' });
        await waitUntil(() => server.stats().oneWay === before.oneWay + 1);
        expect(server.stats()).toMatchObject({ served: before.served + 1, failed: before.failed });
        // Ordinary calls on the same proxy are unaffected, and nothing came back for the one-way call.
        expect(await proxy.add(2, 3)).toBe(5);
        expect(proxy.getStats()).toMatchObject({ pending: 0, droppedReplies: 0 });
      } finally {
        await proxy.close();
      }
    },
  );

  it('logs and counts a one-way call that fails, and its caller is not told', async () => {
    const proxy = proxyFor();
    const before = server.stats();
    try {
      await expect(proxy.noReply().fail()).resolves.toBeUndefined();
      await waitUntil(() => server.stats().failed === before.failed + 1, { message: 'the failure was counted' });
      expect(server.stats().oneWay).toBe(before.oneWay + 1);
      expect(logger.lines.some((line) => line.includes('one-way call fail failed') && line.includes('disk full'))).toBe(true);
      expect(await proxy.add(1, 1)).toBe(2);
    } finally {
      await proxy.close();
    }
  });

  it('fails with NO_ROUTE when nothing serves the id', async () => {
    const proxy = new QAMProxy({ serverId: uniqueName('nobody'), url, logger: silentLogger, timeout: 10 });
    try {
      await expect(proxy.noReply().note('lost')).rejects.toBeInstanceOf(QAMNoRouteException);
    } finally {
      await proxy.close();
    }
  });
});

describe('noReply() and the other controls', () => {
  it('is refused with protocol qam, whose servers answer every request', async () => {
    const proxy = new QAMProxy({ serverId: uniqueName('qamproto'), url: brokerUrl(), protocol: 'qam', logger: silentLogger });
    try {
      expect(() => proxy.noReply()).toThrow(QAMInvalidCallException);
    } finally {
      await proxy.close();
    }
  });

  it('sends a request with no reply address, expiration or deadline, and keeps withSignal', async () => {
    const standIn = uniqueName('standin');
    const channel = await rawChannel();
    await channel.assertQueue(`server_${standIn}_queue`, { durable: false, autoDelete: false });
    const proxy = new QAMProxy({ serverId: standIn, url: brokerUrl(), logger: silentLogger, timeout: 10 });
    try {
      await proxy.noReply().setTimeout(5).note(1);
      const message = await waitUntil(() => channel.get(`server_${standIn}_queue`, { noAck: true }));
      expect(message.properties.headers).toMatchObject({ 'x-qam-wire': 2 });
      expect(message.properties.replyTo).toBeUndefined();
      expect(message.properties.expiration).toBeUndefined();
      expect(JSON.parse(message.content.toString())).toEqual({ method: 'note', params: [1] });
      await expect(proxy.noReply().withSignal(AbortSignal.abort()).note(2)).rejects.toMatchObject({ code: 'ABORTED' });
    } finally {
      await proxy.close();
      await channel.deleteQueue(`server_${standIn}_queue`);
    }
  });
});
