/**
 * A RabbitMQ cluster of its own for a test or a benchmark: three (or `size`) nodes from
 * {@link startNode}, each on its own free loopback ports with its own name, data directory, config
 * files and HOME, sharing one Erlang cookie (written to each node's HOME, nowhere else), so they can
 * cluster with one another and with nothing else. The shared broker on 127.0.0.1:5672 (node
 * `rabbit@<host>`, another cookie) is never reached: every `rabbitmqctl` runs with `-n <own node>`.
 *
 * The nodes boot in parallel; the second and later join the first (`stop_app`, `join_cluster`,
 * `start_app`). About 13 s and 550 MB for three on a small machine.
 *
 * @example
 * const cluster = await startCluster();
 * try {
 *   const proxy = new QAMProxy({ url: cluster.urls });
 *   await cluster.leaderOf('my-queue'); // the node holding a quorum queue's Raft leader
 * } finally {
 *   await cluster.stop();
 * }
 */
import { randomBytes } from 'node:crypto';
import { startNode, type StartNodeOptions, type TestNode } from './rabbit-node.js';

export interface TestCluster {
  /** The nodes; `nodes[0]` is the one the others joined. */
  readonly nodes: readonly TestNode[];
  /** Each node's AMQP URL, in the order of {@link nodes}. */
  readonly urls: string[];
  /** Milliseconds from the first spawn until all nodes ran as one cluster. */
  readonly startupMs: number;
  /** How many members of the quorum queue `queue` on vhost `/` are online (0 when there is no such queue). */
  onlineMembers(queue: string): Promise<number>;
  /** The node holding the Raft leader of the quorum queue `queue` on vhost `/`, asked of a running node. */
  leaderOf(queue: string): Promise<TestNode>;
  /** Names of the nodes the cluster reports running, asked of a running node. */
  runningNodes(): Promise<string[]>;
  /** Kills every node and deletes their directories. Idempotent. */
  stop(): Promise<void>;
}

export interface StartClusterOptions extends Pick<StartNodeOptions, 'startTimeoutMs'> {
  /** @default 3 */
  size?: number;
}

/** Starts a fresh cluster of `size` nodes; resolves once all of them run clustered. */
export async function startCluster(options: StartClusterOptions = {}): Promise<TestCluster> {
  const size = options.size ?? 3;
  const started = performance.now();
  const cookie = randomBytes(24).toString('hex').toUpperCase();
  const booting = Array.from({ length: size }, () => startNode({ ...options, cookie }));
  const settled = await Promise.allSettled(booting);
  const nodes = settled.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
  const failed = settled.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  const cluster = new Cluster(nodes, 0);
  try {
    if (failed !== undefined) throw failed.reason;
    const [first, ...others] = nodes as [TestNode, ...TestNode[]];
    for (const node of others) {
      await node.ctl('stop_app');
      await node.ctl('join_cluster', first.nodeName);
      await node.ctl('start_app');
      await node.ctl('eval', 'ok = rabbit:await_startup(60000).');
    }
    const members = await cluster.runningNodes();
    if (members.length !== size) throw new Error(`the cluster runs ${members.length} of ${size} nodes: ${members.join(', ')}`);
    return new Cluster(nodes, Math.round(performance.now() - started));
  } catch (error) {
    await cluster.stop();
    throw error;
  }
}

class Cluster implements TestCluster {
  readonly nodes: readonly TestNode[];
  readonly startupMs: number;
  #stopping: Promise<void> | undefined;

  constructor(nodes: readonly TestNode[], startupMs: number) {
    this.nodes = nodes;
    this.startupMs = startupMs;
  }

  get urls(): string[] {
    return this.nodes.map((node) => node.url);
  }

  #anyRunning(): TestNode {
    const node = this.nodes.find((candidate) => candidate.running);
    if (node === undefined) throw new Error('no node of the cluster runs');
    return node;
  }

  async runningNodes(): Promise<string[]> {
    const output = await this.#anyRunning().ctl(
      'eval',
      'io:format("~s~n", [string:join([atom_to_list(N) || N <- rabbit_nodes:all_running()], ",")]).',
    );
    return (output.split('\n')[0] ?? '').split(',').filter((name) => name !== '');
  }

  async leaderOf(queue: string): Promise<TestNode> {
    const output = await this.#anyRunning().ctl('list_queues', '-q', '--no-table-headers', 'name', 'leader');
    for (const line of output.split('\n')) {
      const [name, leader] = line.trim().split(/\s+/);
      if (name !== queue) continue;
      const node = this.nodes.find((candidate) => candidate.nodeName === leader);
      if (node === undefined) throw new Error(`queue ${queue} has its leader on ${String(leader)}, not a node of this cluster`);
      return node;
    }
    throw new Error(`no queue ${queue} on the cluster (or it is not a quorum queue)`);
  }

  async onlineMembers(queue: string): Promise<number> {
    const output = await this.#anyRunning().ctl('list_queues', '-q', '--no-table-headers', 'name', 'online');
    for (const line of output.split('\n')) {
      const match = /^(\S+)\s+\[(.*)\]\s*$/.exec(line.trim());
      if (match?.[1] === queue) return (match[2] ?? '').split(',').filter((member) => member.trim() !== '').length;
    }
    return 0;
  }

  stop(): Promise<void> {
    this.#stopping ??= Promise.all(this.nodes.map((node) => node.stop())).then(() => undefined);
    return this.#stopping;
  }
}
