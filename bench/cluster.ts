/**
 * `npm run bench:cluster [-- options]`: qam on a 3-node RabbitMQ cluster of its own
 * (spec/support/rabbit-cluster.ts, never the shared broker): what a node's death under load costs,
 * and how throughput grows with server processes (issue 16, items 4 and 5).
 *
 * Server processes are children of this one (each a QAMServer with every node's URL, listed from
 * "its" node); the proxies (one connection per node, the same way) run here. The function
 * `work(id)` counts its runs per call id, so after a run every call is classified by what its
 * caller got and how often it ran.
 *
 * Failure scenarios (quorum queue, `ack: 'afterReply'`, `--in-flight` calls kept in flight, each
 * with a `--timeout` s timeout; servers on nodes 2 and 3, proxies on all three):
 * - `leader`: SIGKILL the node holding the queue's Raft leader;
 * - `server-node`: SIGKILL a node a server is connected to (not the leader's);
 * - each without and with `retry(2)`;
 * - `rolling`: graceful restart of the three nodes one after the other, traffic running.
 * Scale-out: `--seconds` s of `--in-flight` calls against one server id with 1, 2 and 4 server
 * processes, all connections on one node vs spread over the three.
 *
 * Options: `--part=failure,scale` (both), `--faults=leader,server-node,rolling` (all), `--in-flight` (1000), `--timeout` (20), `--after` (15:
 * seconds of traffic after the fault), `--seconds` (8), `--json`.
 */

import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { QAMConnection, QAMProxy, QAMServer, silentLogger } from '../lib/index.js';
import { startCluster, type TestCluster } from '../spec/support/rabbit-cluster.js';
import type { TestNode } from '../spec/support/rabbit-node.js';

const { values: args } = parseArgs({
  options: {
    role: { type: 'string', default: 'client' },
    part: { type: 'string', default: 'failure,scale' },
    faults: { type: 'string', default: 'leader,server-node,rolling' },
    'in-flight': { type: 'string', default: '1000' },
    timeout: { type: 'string', default: '20' },
    after: { type: 'string', default: '15' },
    seconds: { type: 'string', default: '8' },
    json: { type: 'boolean', default: false },
  },
});

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The node URLs starting at `first`, then the others in order. */
function from(urls: readonly string[], first: number): string[] {
  return urls.map((_, index) => urls[(first + index) % urls.length] as string);
}

// ---------------------------------------------------------------------------------------------
// Server process

type ToServer = { type: 'report' } | { type: 'close' };
type FromServer = { type: 'ready' } | { type: 'report'; runs: Array<[number, number]>; total: number } | { type: 'closed' };

async function serverMain(): Promise<void> {
  const urls = JSON.parse(process.env['QAM_CL_URLS'] ?? '[]') as string[];
  const runs = new Map<number, number>();
  let total = 0;
  const server = new QAMServer({
    serverId: process.env['QAM_CL_SERVER_ID'] ?? '',
    url: urls,
    queueType: 'quorum',
    ack: 'afterReply',
    workers: 32,
    reconnectDelay: { min: 0.1, max: 2 },
    logger: silentLogger,
  }).registerFunction((id: number) => {
    total++;
    runs.set(id, (runs.get(id) ?? 0) + 1);
    return id;
  }, 'work');
  const send = (message: FromServer): void => {
    process.send?.(message);
  };
  process.on('message', (message: ToServer) => {
    if (message.type === 'report') send({ type: 'report', runs: [...runs], total });
    else
      void server.close().finally(() => {
        send({ type: 'closed' });
        process.disconnect();
      });
  });
  await server.serve();
  send({ type: 'ready' });
}

class ServerChild {
  readonly #child: ChildProcess;
  readonly #waiting = new Map<FromServer['type'], (message: FromServer) => void>();

  constructor(serverId: string, urls: string[]) {
    this.#child = fork(fileURLToPath(import.meta.url), ['--role=server'], {
      env: { ...process.env, QAM_CL_URLS: JSON.stringify(urls), QAM_CL_SERVER_ID: serverId },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.#child.on('message', (message: FromServer) => {
      const waiter = this.#waiting.get(message.type);
      this.#waiting.delete(message.type);
      waiter?.(message);
    });
  }

  #next<T extends FromServer['type']>(type: T): Promise<Extract<FromServer, { type: T }>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`server process: no '${type}' within 120 s`)), 120_000);
      this.#waiting.set(type, (message) => {
        clearTimeout(timer);
        resolve(message as Extract<FromServer, { type: T }>);
      });
    });
  }

  ready(): Promise<unknown> {
    return this.#next('ready');
  }

  report(): Promise<Extract<FromServer, { type: 'report' }>> {
    const reply = this.#next('report');
    this.#child.send({ type: 'report' } satisfies ToServer);
    return reply;
  }

  async close(): Promise<void> {
    const closed = this.#next('closed').catch(() => undefined);
    this.#child.send({ type: 'close' } satisfies ToServer);
    await closed;
    this.#child.kill('SIGKILL');
  }
}

// ---------------------------------------------------------------------------------------------
// Traffic

interface Call {
  id: number;
  startedAt: number;
  endedAt: number;
  outcome: string;
}

/** Keeps `inFlight` calls of `work` in flight over `proxies` (round robin) until `stop()`. */
class Traffic {
  readonly calls: Call[] = [];
  #next = 0;
  #running = true;
  #open = 0;
  #drained: (() => void) | undefined;

  constructor(
    readonly proxies: Array<QAMProxy<{ work(id: number): Promise<number> }>>,
    inFlight: number,
  ) {
    for (let i = 0; i < inFlight; i++) this.#launch();
  }

  #launch(): void {
    const id = this.#next++;
    const proxy = this.proxies[id % this.proxies.length] as QAMProxy<{ work(id: number): Promise<number> }>;
    const call: Call = { id, startedAt: performance.now(), endedAt: 0, outcome: 'pending' };
    this.calls.push(call);
    this.#open++;
    proxy.work(id).then(
      () => this.#end(call, 'ok'),
      (error: unknown) => this.#end(call, String((error as { code?: unknown }).code ?? 'other')),
    );
  }

  #end(call: Call, outcome: string): void {
    call.endedAt = performance.now();
    call.outcome = outcome;
    this.#open--;
    if (this.#running) this.#launch();
    else if (this.#open === 0) this.#drained?.();
  }

  /** Stops launching; resolves once every call has ended. */
  stop(): Promise<void> {
    this.#running = false;
    if (this.#open === 0) return Promise.resolve();
    return new Promise((resolve) => (this.#drained = resolve));
  }
}

async function proxiesOn(urlsPerProxy: string[][], serverId: string, timeout: number, retry: number) {
  const connections = urlsPerProxy.map(
    (urls) => new QAMConnection({ url: urls, logger: silentLogger, reconnectDelay: { min: 0.1, max: 2 } }),
  );
  const proxies = connections.map((connection) => {
    const proxy = new QAMProxy<{ work(id: number): Promise<number> }>({ serverId, connection, timeout });
    return retry > 0 ? proxy.retry(retry) : proxy;
  });
  return {
    proxies,
    close: async () => {
      await Promise.all(proxies.map((proxy) => proxy.close()));
      await Promise.all(connections.map((connection) => connection.close()));
    },
  };
}

/** Runs per call id over all servers, once their counts stop changing for 3 s (the queue drained). */
async function settledRuns(servers: ServerChild[]): Promise<Map<number, number>> {
  let last = -1;
  for (;;) {
    const reports = await Promise.all(servers.map((server) => server.report()));
    const total = reports.reduce((sum, report) => sum + report.total, 0);
    if (total === last) {
      const runs = new Map<number, number>();
      for (const report of reports) for (const [id, count] of report.runs) runs.set(id, (runs.get(id) ?? 0) + count);
      return runs;
    }
    last = total;
    await sleep(3000);
  }
}

// ---------------------------------------------------------------------------------------------
// Failure under load

interface FailureFigures {
  scenario: string;
  retry: number;
  calls: number;
  ok: number;
  connectionLost: number;
  timeouts: number;
  otherErrors: number;
  /** Failed calls (any error) whose function never ran: the caller knows, nothing ran. */
  failedNotRun: number;
  /** Calls whose caller got no answer (TIMEOUT) and whose function never ran. */
  lost: number;
  /** Calls whose function ran more than once. */
  duplicates: number;
  /** Failed calls whose function ran anyway (after its caller gave up). */
  ranAfterFailure: number;
  /** Seconds from the fault to each CONNECTION_LOST failure: median and max. */
  failFastMedianS: number | undefined;
  failFastMaxS: number | undefined;
  /** Seconds from the fault until the first 1-s interval with at least half the calls answered per second before it. */
  recoveryS: number | undefined;
  /** Answered calls per second, from 3 s before the fault (one entry per second). */
  timeline: number[];
  /** Counts of the errors other than CONNECTION_LOST and TIMEOUT, by code. */
  other: Record<string, number>;
  /** Seconds from the fault until the last failure of a call (any cause). */
  lastFailureS: number | undefined;
}

const lastEnd = (calls: Call[]): number => calls.reduce((latest, call) => Math.max(latest, call.endedAt), 0);
const median = (values: number[]): number | undefined => {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
};
const round = (value: number | undefined): number | undefined => (value === undefined ? undefined : Math.round(value * 100) / 100);

async function failureRun(
  cluster: TestCluster,
  scenario: 'leader' | 'server-node' | 'rolling',
  retry: number,
  settings: { inFlight: number; timeout: number; after: number },
): Promise<FailureFigures> {
  const serverId = `qam_cl_${randomBytes(6).toString('hex')}`;
  const urls = cluster.urls;
  // Servers on nodes 2 and 3 (indexes 1 and 2), proxies on all three.
  const servers = [new ServerChild(serverId, from(urls, 1)), new ServerChild(serverId, from(urls, 2))];
  await Promise.all(servers.map((server) => server.ready()));
  const { proxies, close } = await proxiesOn([from(urls, 0), from(urls, 1), from(urls, 2)], serverId, settings.timeout, retry);
  const traffic = new Traffic(proxies, settings.inFlight);
  await sleep(3000);
  const queue = `server_${serverId}_queue`;
  let faultAt = performance.now();
  const restart: TestNode[] = [];
  if (scenario === 'rolling') {
    faultAt = performance.now();
    for (const node of cluster.nodes) {
      await node.shutdown();
      await node.start();
    }
    await sleep(settings.after * 1000);
  } else {
    const leader = await cluster.leaderOf(queue);
    const victim = scenario === 'leader' ? leader : (cluster.nodes.slice(1).find((node) => node !== leader) as TestNode);
    faultAt = performance.now();
    await victim.kill();
    restart.push(victim);
    await sleep(settings.after * 1000);
  }
  await traffic.stop();
  const runs = await settledRuns(servers);
  await close();
  await Promise.all(servers.map((server) => server.close()));
  for (const node of restart) await node.start();
  const calls = traffic.calls;
  const failed = calls.filter((call) => call.outcome !== 'ok');
  const lostFailures = calls.filter((call) => call.outcome === 'CONNECTION_LOST').map((call) => (call.endedAt - faultAt) / 1000);
  const buckets = new Map<number, number>();
  for (const call of calls) {
    if (call.outcome !== 'ok') continue;
    const second = Math.floor((call.endedAt - faultAt) / 1000);
    buckets.set(second, (buckets.get(second) ?? 0) + 1);
  }
  const before = ((buckets.get(-1) ?? 0) + (buckets.get(-2) ?? 0) + (buckets.get(-3) ?? 0)) / 3;
  const horizon = Math.ceil((lastEnd(calls) - faultAt) / 1000);
  let recoveryS: number | undefined;
  for (let second = 0; second <= horizon && recoveryS === undefined; second++) {
    if ((buckets.get(second) ?? 0) >= before / 2 && second > 0) recoveryS = second;
  }
  const other: Record<string, number> = {};
  for (const call of failed)
    if (call.outcome !== 'TIMEOUT' && call.outcome !== 'CONNECTION_LOST') other[call.outcome] = (other[call.outcome] ?? 0) + 1;
  const lastFailure = failed.reduce((latest, call) => Math.max(latest, call.endedAt), faultAt);
  return {
    scenario,
    retry,
    calls: calls.length,
    ok: calls.length - failed.length,
    connectionLost: lostFailures.length,
    timeouts: failed.filter((call) => call.outcome === 'TIMEOUT').length,
    otherErrors: failed.filter((call) => call.outcome !== 'TIMEOUT' && call.outcome !== 'CONNECTION_LOST').length,
    failedNotRun: failed.filter((call) => !runs.has(call.id)).length,
    lost: failed.filter((call) => call.outcome === 'TIMEOUT' && !runs.has(call.id)).length,
    duplicates: [...runs.values()].filter((count) => count > 1).length,
    ranAfterFailure: failed.filter((call) => runs.has(call.id)).length,
    failFastMedianS: round(median(lostFailures)),
    failFastMaxS: round(lostFailures.length === 0 ? undefined : Math.max(...lostFailures)),
    recoveryS,
    timeline: Array.from({ length: horizon + 4 }, (_, index) => buckets.get(index - 3) ?? 0),
    other,
    lastFailureS: round(failed.length === 0 ? undefined : (lastFailure - faultAt) / 1000),
  };
}

// ---------------------------------------------------------------------------------------------
// Scale-out

interface ScaleFigures {
  servers: number;
  placement: 'one node' | 'spread';
  callsPerSecond: number;
}

async function scaleRun(cluster: TestCluster, servers: number, placement: ScaleFigures['placement'], inFlight: number, seconds: number) {
  const serverId = `qam_cl_${randomBytes(6).toString('hex')}`;
  const urls = cluster.urls;
  const first = (index: number): number => (placement === 'one node' ? 0 : index % urls.length);
  const children = Array.from({ length: servers }, (_, index) => new ServerChild(serverId, from(urls, first(index + 1))));
  await Promise.all(children.map((child) => child.ready()));
  const { proxies, close } = await proxiesOn(
    [0, 1, 2].map((index) => from(urls, first(index))),
    serverId,
    60,
    0,
  );
  const traffic = new Traffic(proxies, inFlight);
  await sleep(2000);
  const okBefore = traffic.calls.filter((call) => call.outcome === 'ok').length;
  const startedAt = performance.now();
  await sleep(seconds * 1000);
  const okAfter = traffic.calls.filter((call) => call.outcome === 'ok').length;
  const elapsed = (performance.now() - startedAt) / 1000;
  await traffic.stop();
  await close();
  await Promise.all(children.map((child) => child.close()));
  // The queue outlives its servers (close() keeps it): delete it through a node.
  await cluster.nodes[0]?.ctl('delete_queue', `server_${serverId}_queue`).catch(() => undefined);
  return { servers, placement, callsPerSecond: Math.round((okAfter - okBefore) / elapsed) };
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const parts = new Set(args.part.split(','));
  const inFlight = Number(args['in-flight']);
  const settings = { inFlight, timeout: Number(args.timeout), after: Number(args.after) };
  const started = performance.now();
  const cluster = await startCluster();
  const log = (line: string): void => console.log(line);
  log(`# bench:cluster — 3-node RabbitMQ cluster of its own, up in ${(cluster.startupMs / 1000).toFixed(1)} s`);
  log(
    `# host: ${cpus().length} × ${cpus()[0]?.model.trim() ?? '?'}, load ${loadavg()
      .map((load) => load.toFixed(1))
      .join(' ')}`,
  );
  const failures: FailureFigures[] = [];
  const scale: ScaleFigures[] = [];
  try {
    if (parts.has('failure')) {
      log(`\n## Failure under load: quorum queue, ack afterReply, ${inFlight} calls in flight, timeout ${settings.timeout} s`);
      log(
        '| fault | retry | calls | ok | CONNECTION_LOST | TIMEOUT | other errors | lost | failed, never ran | ran after its caller failed | duplicates | fail-fast median / max (s) | answering again after (s) | last failure (s) |',
      );
      log('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
      const plan: Array<['leader' | 'server-node' | 'rolling', number]> = [
        ['leader', 0],
        ['leader', 2],
        ['server-node', 0],
        ['server-node', 2],
        ['rolling', 0],
      ];
      const timelines: string[] = [];
      const faults = new Set(args.faults.split(','));
      for (const [scenario, retry] of plan.filter(([scenario]) => faults.has(scenario))) {
        const f = await failureRun(cluster, scenario, retry, settings);
        failures.push(f);
        const name = { leader: 'kill queue leader node', 'server-node': "kill a server's node", rolling: 'rolling restart (3 nodes)' }[
          scenario
        ];
        log(
          `| ${name} | ${retry} | ${f.calls} | ${f.ok} | ${f.connectionLost} | ${f.timeouts} | ${
            Object.entries(f.other)
              .map(([code, count]) => `${code} ${count}`)
              .join(', ') || 0
          } | ${f.lost} | ${f.failedNotRun} | ${f.ranAfterFailure} | ${f.duplicates} | ${f.failFastMedianS ?? '–'} / ${f.failFastMaxS ?? '–'} | ${f.recoveryS ?? '–'} | ${f.lastFailureS ?? '–'} |`,
        );
        timelines.push(`${name}, retry ${retry}: ${f.timeline.join(' ')}`);
      }
      log('\nAnswered calls per second, from 3 s before the fault:');
      for (const line of timelines) log(`- ${line}`);
    }
    if (parts.has('scale')) {
      log(`\n## Scale-out: one server id, quorum queue, ${inFlight} calls in flight, ${args.seconds} s per row`);
      log('| server processes | connections | calls/s | × 1 process on one node |');
      log('|---|---|---|---|');
      let base: number | undefined;
      for (const servers of [1, 2, 4]) {
        for (const placement of ['one node', 'spread'] as const) {
          const figures = await scaleRun(cluster, servers, placement, inFlight, Number(args.seconds));
          scale.push(figures);
          base ??= figures.callsPerSecond;
          log(`| ${servers} | ${placement} | ${figures.callsPerSecond} | ${(figures.callsPerSecond / base).toFixed(2)} |`);
        }
      }
    }
  } finally {
    await cluster.stop();
  }
  log(
    `\n# total ${((performance.now() - started) / 1000).toFixed(0)} s, load after ${loadavg()
      .map((load) => load.toFixed(1))
      .join(' ')}`,
  );
  if (args.json) log(JSON.stringify({ failures, scale }));
}

if (args.role === 'server') {
  void serverMain();
} else {
  main().then(
    () => process.exit(0),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}
