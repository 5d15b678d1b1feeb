/**
 * A broker that blocks connections (a memory alarm): a connection that published during the alarm
 * is read no more, so nothing asked of the broker then (basic.cancel, channel.close included) is
 * answered, and what it had written before it heard of the block waits in the broker's socket
 * until the alarm clears. On a RabbitMQ node of the test's own and on the embedded broker
 * (`setBlocked`), with the same assertions.
 */
import { beforeAll, describe, expect, it } from '@jest/globals';
import { QAMConnection, QAMProxy, QAMServer, silentLogger } from '../../lib/index.js';
import { uniqueName, waitUntil } from '../support/broker.js';
import { brokers, type Blockable } from '../support/brokers.js';

/** 'returned' when `promise` settles within a generous bound, else 'hung'. */
async function soon(promise: Promise<unknown>, ms: number): Promise<'returned' | 'hung'> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<'hung'>((resolve) => (timer = setTimeout(resolve, ms, 'hung')));
  const outcome = await Promise.race([promise.then(() => 'returned' as const), hung]);
  clearTimeout(timer);
  return outcome;
}

describe.each(brokers)('on %s', (_name, useBroker) => {
  const broker = useBroker();
  let node: Blockable;
  beforeAll(async () => {
    node = await broker.blockable();
  }, 120_000);

  it('server.close() returns promptly while the broker blocks the connection it replies on', async () => {
    const serverId = uniqueName('qam_blocked_close');
    let release: (() => void) | undefined;
    const server = new QAMServer({ serverId, url: node.url, logger: silentLogger })
      .registerFunction((x: number) => x, 'echo')
      .registerFunction(() => new Promise((resolve) => (release = () => resolve('done'))), 'gated');
    await server.serve();
    const proxy = new QAMProxy({ serverId, url: node.url, logger: silentLogger, timeout: 60 });
    try {
      // Replies to an address the broker took once go out on the server's own connection.
      await proxy['echo'](1);
      await proxy['echo'](2);
      const gated = proxy['gated']().catch(() => undefined);
      await waitUntil(() => release !== undefined, { message: 'the gated call runs' });
      await node.setBlocked(true);
      release!();
      await waitUntil(() => server.connection.blocked, { message: 'the server connection is blocked' });
      expect(await soon(server.close(), 10_000)).toBe('returned');
      await node.setBlocked(false);
      await gated;
    } finally {
      await node.setBlocked(false);
      await proxy.close();
      await server.close();
    }
  }, 300_000);

  it('runs none of the requests whose callers gave up while the broker blocked them, and proxy.close() returns meanwhile', async () => {
    const serverId = uniqueName('qam_blocked_late');
    const runs: number[] = [];
    const server = new QAMServer({ serverId, url: node.url, logger: silentLogger }).registerFunction(
      (seq: number) => runs.push(seq),
      'work',
    );
    await server.serve();
    const connection = new QAMConnection({ url: node.url, logger: silentLogger });
    const proxy = new QAMProxy({ serverId, connection, timeout: 1 });
    const fresh = new QAMProxy({ serverId, url: node.url, logger: silentLogger, timeout: 30 });
    try {
      // A first call of this proxy tells the server how its clock and the proxy's compare.
      await proxy.setTimeout(30)['work'](-1);
      await node.setBlocked(true);
      // The broker blocks the connection once it reads a request: what followed it before the
      // proxy heard of the block waits in the broker's socket.
      const payload = 'x'.repeat(1024 * 1024);
      const outcomes = await Promise.all(
        Array.from({ length: 10 }, (_, seq) =>
          proxy['work'](seq, payload).then(
            () => 'ok',
            (error: { code?: string }) => error.code,
          ),
        ),
      );
      expect(connection.blocked).toBe(true);
      expect(await soon(proxy.close(), 10_000)).toBe('returned');
      expect(await soon(connection.close(), 10_000)).toBe('returned');
      await node.setBlocked(false);
      // RabbitMQ now reads them, and their expiration counts from now: the server must know better.
      // The embedded broker drops what it had not read of a connection closed under it.
      if (broker.kind === 'rabbitmq') {
        await waitUntil(() => server.stats().expired > 0, {
          timeoutMs: 60_000,
          message: 'the requests written before the block reach the server',
        });
      }
      await fresh['work'](100);
      const ranAfterCallerGaveUp = runs.filter((seq) => seq >= 0 && seq < 100 && outcomes[seq] !== 'ok');
      expect(ranAfterCallerGaveUp).toEqual([]);
    } finally {
      await node.setBlocked(false);
      await proxy.close();
      await connection.close();
      await fresh.close();
      await server.close({ deleteQueue: true });
    }
  }, 300_000);
});
