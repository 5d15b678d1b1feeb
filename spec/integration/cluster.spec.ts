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
}, 240_000);
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
}, 240_000);
