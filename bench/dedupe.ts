/**
 * `npm run bench:dedupe [-- options]`: duplicate runs across a broker restart, with `retry(3)`,
 * without and with the server's `dedupe` (issue 14, item 4), side by side. On a RabbitMQ node of
 * its own (spec/support/rabbit-node.ts, never the shared broker).
 *
 * Each round: a server (`ack: 'afterReply'`, the default) and a proxy with `retry(3)` on the node;
 * `--calls` calls of `work(i)` (which counts its runs per call and takes `--work-ms`), started at
 * `--rate` a second, at most `--in-flight` at a time, each with a `--timeout` s timeout; once `--restart-after` calls have settled, the node's
 * RabbitMQ application is restarted (`rabbitmqctl stop_app`, `start_app`: every connection is
 * closed with CONNECTION_FORCED). After the last call settles and the queue is empty, each call is
 * classified by what its caller got and how often `work` ran for it. `--servers` competing server
 * objects (dedupe keeps its memory per server object).
 *
 * `--fault=timeout` instead: no restart; every `--slow-every`th call's `work` takes `--slow-ms`, longer
 * than the timeout, so `retry` sends it again while it runs (give a `--timeout` below `--slow-ms`).
 *
 * Options: `--fault` (restart), `--slow-every` (50), `--slow-ms` (2500), `--calls` (1000), `--rate` (40), `--in-flight` (200), `--restart-after` (100), `--work-ms` (200),
 * `--timeout` (10), `--rounds` (3), `--servers` (1), `--json`.
 */
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import { QAMProxy, QAMServer, silentLogger, type QAMException } from '../lib/index.js';
import { startNode, type TestNode } from '../spec/support/rabbit-node.js';

const { values: args } = parseArgs({
  options: {
    fault: { type: 'string', default: 'restart' },
    'slow-every': { type: 'string', default: '50' },
    'slow-ms': { type: 'string', default: '2500' },
    calls: { type: 'string', default: '1000' },
    rate: { type: 'string', default: '40' },
    'in-flight': { type: 'string', default: '200' },
    'restart-after': { type: 'string', default: '100' },
    'work-ms': { type: 'string', default: '200' },
    timeout: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '3' },
    servers: { type: 'string', default: '1' },
    json: { type: 'boolean', default: false },
  },
});

const fault = args.fault === 'timeout' ? 'timeout' : 'restart';
const slowEvery = Number(args['slow-every']);
const slowMs = Number(args['slow-ms']);
const calls = Number(args.calls);
const rate = Number(args.rate);
const inFlight = Number(args['in-flight']);
const restartAfter = Number(args['restart-after']);
const workMs = Number(args['work-ms']);
const timeout = Number(args.timeout);
const rounds = Number(args.rounds);
const serverCount = Number(args.servers);

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const reconnectDelay = { min: 0.1, max: 1 };

interface Round {
  dedupe: boolean;
  ok: number;
  errors: Record<string, number>;
  /** Calls whose function ran more than once. */
  duplicates: number;
  /** Runs beyond the first, over all calls. */
  extraRuns: number;
  /** Calls that never ran. */
  neverRan: number;
  /** Requests answered from the dedupe memory (all servers). */
  deduplicated: number;
  restartS: number;
  /** Seconds from the first call until the server's connection was lost, and until it was back. */
  lostAtS: number;
  backAtS: number;
  seconds: number;
}

async function round(node: TestNode, dedupe: boolean): Promise<Round> {
  const serverId = `dedupe_${randomBytes(4).toString('hex')}`;
  const runs = new Map<number, number>();
  const servers = Array.from({ length: serverCount }, () =>
    new QAMServer({
      serverId,
      url: node.url,
      workers: 32,
      logger: silentLogger,
      reconnectDelay,
      ...(dedupe ? { dedupe: true } : {}),
    }).registerFunction(async (i: number) => {
      runs.set(i, (runs.get(i) ?? 0) + 1);
      await sleep(fault === 'timeout' && i % slowEvery === 0 ? slowMs : workMs);
      return i;
    }, 'work'),
  );
  await Promise.all(servers.map((server) => server.serve()));
  const proxy = new QAMProxy<{ work(i: number): number }>({ serverId, url: node.url, logger: silentLogger, timeout, reconnectDelay });
  const retried = proxy.retry(3);
  const errors: Record<string, number> = {};
  let ok = 0;
  let settled = 0;
  let next = 0;
  let restart: Promise<number> | undefined;
  const started = Date.now();
  let lostAtS = Number.NaN;
  let backAtS = Number.NaN;
  servers[0]?.connection.on('disconnect', () => {
    if (Number.isNaN(lostAtS)) lostAtS = (Date.now() - started) / 1000;
  });
  servers[0]?.connection.on('connect', () => {
    if (!Number.isNaN(lostAtS) && Number.isNaN(backAtS)) backAtS = (Date.now() - started) / 1000;
  });
  const worker = async (): Promise<void> => {
    while (next < calls) {
      const i = next++;
      const wait = started + (i * 1000) / rate - Date.now();
      if (wait > 0) await sleep(wait);
      try {
        await retried.work(i);
        ok++;
      } catch (error) {
        const code = (error as QAMException).code ?? 'other';
        errors[code] = (errors[code] ?? 0) + 1;
      }
      settled++;
      if (fault === 'restart' && settled === restartAfter && restart === undefined) {
        const at = Date.now();
        restart = node.restart().then(() => (Date.now() - at) / 1000);
      }
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  const seconds = (Date.now() - started) / 1000;
  const restartS = restart === undefined ? Number.NaN : await restart;
  // Requests the broker delivers again after the calls settled still run: let them, until quiet.
  for (let quiet = 0, last = -1; quiet < 3;) {
    await sleep(1000);
    const total = [...runs.values()].reduce((sum, count) => sum + count, 0);
    quiet = total === last ? quiet + 1 : 0;
    last = total;
  }
  const deduplicated = servers.reduce((sum, server) => sum + server.stats().deduplicated, 0);
  await proxy.close();
  await Promise.all(servers.map((server, index) => server.close({ deleteQueue: index === 0 })));
  const counts = Array.from({ length: calls }, (_, i) => runs.get(i) ?? 0);
  return {
    dedupe,
    ok,
    errors,
    duplicates: counts.filter((count) => count > 1).length,
    extraRuns: counts.reduce((sum, count) => sum + Math.max(0, count - 1), 0),
    neverRan: counts.filter((count) => count === 0).length,
    deduplicated,
    restartS,
    lostAtS,
    backAtS,
    seconds,
  };
}

/** Seconds with one decimal, or a dash for what did not happen. */
function seconds(value: number): string {
  return Number.isNaN(value) ? '–' : value.toFixed(1);
}

async function main(): Promise<void> {
  const node = await startNode();
  const results: Round[] = [];
  try {
    for (let r = 0; r < rounds; r++) {
      for (const dedupe of [false, true]) {
        const result = await round(node, dedupe);
        results.push(result);
        if (!args.json) process.stderr.write(`round ${r + 1} dedupe ${String(dedupe)}: ${JSON.stringify(result)}\n`);
      }
    }
  } finally {
    await node.stop();
  }
  if (args.json) {
    process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
    return;
  }
  const [one, five] = loadavg();
  const what =
    fault === 'restart'
      ? `RabbitMQ restarted (stop_app, start_app) after ${restartAfter} settled`
      : `no restart; every ${slowEvery}th call takes ${slowMs} ms`;
  console.log(
    `${calls} calls at ${rate}/s, at most ${inFlight} in flight, retry(3), timeout ${timeout} s, work ${workMs} ms, ${serverCount} server object(s), ` +
      `${what}; ${cpus().length} cores, load ${one?.toFixed(1)} / ${five?.toFixed(1)}`,
  );
  console.log('');
  console.log(
    '| dedupe | ok | errors | calls run twice or more | extra runs | never ran | answered from dedupe | restart (s) | connection lost / back at (s) | round (s) |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|---|');
  for (const r of results) {
    const errors = Object.entries(r.errors)
      .map(([code, count]) => `${code} ${count}`)
      .join(', ');
    console.log(
      `| ${r.dedupe ? 'on' : 'off'} | ${r.ok} | ${errors === '' ? '0' : errors} | ${r.duplicates} | ${r.extraRuns} | ${r.neverRan} | ${r.deduplicated} | ${seconds(r.restartS)} | ${seconds(r.lostAtS)} / ${seconds(r.backAtS)} | ${r.seconds.toFixed(1)} |`,
    );
  }
}

await main();
