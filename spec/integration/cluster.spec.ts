/**
 * qam on a RabbitMQ cluster of the suite's own (three nodes from spec/support/rabbit-cluster.ts,
 * never the shared broker on 5672): connections that know every node move to another when theirs
 * dies. Counts only, never times.
 */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { QAMConnection, QAMProxy, QAMServer, silentLogger } from '../../lib/index.js';
import { uniqueName, waitUntil } from '../support/broker.js';
import { startCluster, type TestCluster } from '../support/rabbit-cluster.js';
import type { TestNode } from '../support/rabbit-node.js';

let cluster: TestCluster;
beforeAll(async () => {
  cluster = await startCluster();
}, 400_000);
afterAll(async () => {
  await cluster?.stop();
}, 60_000);

it('runs three nodes as one cluster, each on its own port', async () => {
  expect((await cluster.runningNodes()).sort()).toEqual(cluster.nodes.map((node) => node.nodeName).sort());
  expect(new Set(cluster.nodes.map((node) => node.port)).size).toBe(3);
  expect(cluster.nodes.map((node) => node.port)).not.toContain(5672);
});

it('a connection given every node moves to the next one when its node dies, and calls succeed there', async () => {
  const serverId = uniqueName('qam_cluster_failover');
  // The server on the third node, the proxy starting on the first: the first node's death leaves the server alone.
  const [first, second, third] = cluster.nodes as [TestNode, TestNode, TestNode];
  const server = new QAMServer({ serverId, url: [third.url, first.url, second.url], logger: silentLogger }).registerFunction(
    (x: number) => x * 2,
    'double',
  );
  await server.serve();
  const connection = new QAMConnection({ url: cluster.urls, logger: silentLogger, reconnectDelay: { min: 0.1, max: 1 } });
  const nodes: string[] = [];
  connection.on('connect', (label) => nodes.push(label));
  const proxy = new QAMProxy({ serverId, connection, timeout: 30 });
  try {
    expect(await proxy['double'](1)).toBe(2);
    expect(nodes).toHaveLength(1);
    expect(nodes[0]).toContain(`:${first.port}`);
    expect(nodes[0]).not.toContain(':guest@');
    await first.kill();
    await waitUntil(() => connection.connected && nodes.length === 2, { timeoutMs: 60_000, message: 'reconnect to another node' });
    expect(nodes[1]).toContain(`:${second.port}`);
    expect(await proxy['double'](21)).toBe(42);
  } finally {
    await proxy.close();
    await connection.close();
    await server.close();
    if (!first.running) await first.start();
  }
}, 400_000);

it('a quorum server queue loses no call when the node holding its leader dies under load (ack after reply)', async () => {
  const serverId = uniqueName('qam_cluster_quorum');
  const runs = new Map<number, number>();
  const work = (id: number): number => {
    runs.set(id, (runs.get(id) ?? 0) + 1);
    return id;
  };
  const [first, second, third] = cluster.nodes as [TestNode, TestNode, TestNode];
  const options = { serverId, queueType: 'quorum', ack: 'afterReply', logger: silentLogger, reconnectDelay: { min: 0.1, max: 1 } } as const;
  const servers = [
    new QAMServer({ ...options, url: [second.url, third.url, first.url] }).registerFunction(work, 'work'),
    new QAMServer({ ...options, url: [third.url, first.url, second.url] }).registerFunction(work, 'work'),
  ];
  for (const server of servers) await server.serve();
  const proxies = [0, 1, 2].map(
    (index) =>
      new QAMProxy<{ work(id: number): number }>({
        serverId,
        url: [...cluster.urls.slice(index), ...cluster.urls.slice(0, index)],
        timeout: 90,
        logger: silentLogger,
        reconnectDelay: { min: 0.1, max: 1 },
      }),
  );
  // Kill the leader only once all three members run: a follower still starting leaves no majority.
  await waitUntil(async () => (await cluster.onlineMembers(`server_${serverId}_queue`)) === 3, {
    timeoutMs: 60_000,
    message: 'three online members of the quorum queue',
  });
  const leader = await cluster.leaderOf(`server_${serverId}_queue`);
  const outcomes: Array<Promise<string>> = [];
  let next = 0;
  const call = (): Promise<string> =>
    proxies[next % 3]!.work(next++).then(
      () => 'ok',
      (error: unknown) => String((error as { code?: unknown }).code),
    );
  try {
    for (let i = 0; i < 300; i++) outcomes.push(call());
    await leader.kill();
    for (let i = 0; i < 300; i++) outcomes.push(call());
    const settled = await Promise.all(outcomes);
    // Whatever ran late has run once the queue is empty and nothing more arrives.
    let total = -1;
    while (total !== [...runs.values()].reduce((sum, count) => sum + count, 0)) {
      total = [...runs.values()].reduce((sum, count) => sum + count, 0);
      await new Promise((resolve) => setTimeout(resolve, 3000));
    }
    const lost = settled.filter((outcome, id) => outcome === 'TIMEOUT' && !runs.has(id)).length;
    expect(lost).toBe(0);
    // Every call settles with a documented outcome, none by timing out: PUBLISH_FAILED is the
    // broker's nack of a request published while the queue elected its new leader (on an idle
    // machine all 600 can fall there). Replies to the callers that were on the dead node make
    // RabbitMQ close the servers' connections (541); before, they did so until the requests expired,
    // and calls through the other nodes timed out meanwhile.
    expect(settled.filter((outcome) => !['ok', 'CONNECTION_LOST', 'PUBLISH_FAILED'].includes(outcome))).toEqual([]);
    expect(settled).toHaveLength(600);
    // And calls succeed again, on the two nodes left, through the same proxies. RabbitMQ 3.10 nacks
    // for the life of a channel every publish to a quorum queue whose first publish on it came while
    // the queue's leader was on the dead node; a proxy sends on a new channel after such a nack.
    for (const proxy of proxies) {
      await waitUntil(
        () =>
          proxy.work(-1).then(
            (result) => result === -1,
            () => false,
          ),
        { timeoutMs: 60_000, intervalMs: 1000, message: 'a call through a proxy of the election succeeding after it' },
      );
    }
  } finally {
    await Promise.all(proxies.map((proxy) => proxy.close()));
    await Promise.all(servers.map((server) => server.close({ deleteQueue: true }).catch(() => undefined)));
    if (!leader.running) await leader.start();
  }
}, 400_000);
