/**
 * server.close() while the broker blocks the server's connection (a memory alarm): a connection
 * that published during the alarm is read no more, so nothing the server asks of the broker then
 * (basic.cancel included) is answered. On a RabbitMQ node of the test's own and on the embedded
 * broker (`setBlocked`), with the same assertions.
 */
import { beforeAll, describe, expect, it } from '@jest/globals';
import { QAMProxy, QAMServer, silentLogger } from '../../lib/index.js';
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
  }, 60_000);
});
