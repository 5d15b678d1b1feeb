/**
 * `npm run bench:backpressure [-- options]`: how a QAMProxy and a QAMServer behave when requests
 * cannot leave the client as fast as they are made (issue 11, backpressure; issue 10, item 5).
 * Runs against a RabbitMQ node of its own (spec/support/rabbit-node.ts), never the shared broker.
 *
 * Two scenarios, each with a fresh proxy (client: this process) calling a QAMServer in a child
 * process whose function `work(tag, seq, payload)` records when it started and what
 * `currentCall().deadline` said:
 *
 * - `blocked`: the node's memory alarm is raised (the broker blocks the publishing connection),
 *   then `--calls` calls of `--size` bytes with a `--timeout` s timeout. The client's RSS growth,
 *   when the last call settled, whether `proxy.close()` returned within `--close-limit` s; then
 *   the alarm is cleared: whether `--new-calls` new calls (a new proxy) succeed, and whether
 *   requests whose callers had given up ran on the server.
 * - `late`: `--late-calls` calls of `--late-size` bytes with a `--late-timeout` s timeout, no
 *   alarm. How many ran on the server, and how many started after their caller's deadline (call
 *   time + timeout; client and server share the host's clock).
 *
 * Options (defaults in parentheses): `--scenario=blocked,late` (both), `--calls` (2000), `--size`
 * (1048576), `--timeout` (5), `--close-limit` (10), `--new-calls` (20), `--late-calls` (100),
 * `--late-size` (4194304), `--late-timeout` (1), `--workers` (16, the server's), `--pace`
 * (`sync`: every call of a scenario in one synchronous loop, as `Promise.all` over a map does;
 * `spread`: one call per event-loop turn), `--json` (one more line with every figure).
 * `BENCH_TRACE=1` prints when each phase ends. Payloads are strings of `x` in a JSON array, so
 * the request body is the size plus a few dozen bytes.
 */

import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { QAMProxy, QAMServer, currentCall, silentLogger, type Logger } from '../lib/index.js';
import { startNode, type TestNode } from '../spec/support/rabbit-node.js';

// ---------------------------------------------------------------------------------------------
// Options

interface Settings {
  scenarios: Set<'late' | 'blocked'>;
  calls: number;
  size: number;
  timeout: number;
  closeLimit: number;
  newCalls: number;
  lateCalls: number;
  lateSize: number;
  lateTimeout: number;
  workers: number;
  pace: Pace;
  json: boolean;
}

/** `sync`: every call in one synchronous loop; `spread`: one call per event-loop turn (setImmediate between calls). */
type Pace = 'sync' | 'spread';

function settings(): Settings {
  const { values } = parseArgs({
    options: {
      scenario: { type: 'string', default: 'blocked,late' },
      calls: { type: 'string', default: '2000' },
      size: { type: 'string', default: String(1024 * 1024) },
      timeout: { type: 'string', default: '5' },
      'close-limit': { type: 'string', default: '10' },
      'new-calls': { type: 'string', default: '20' },
      'late-calls': { type: 'string', default: '100' },
      'late-size': { type: 'string', default: String(4 * 1024 * 1024) },
      'late-timeout': { type: 'string', default: '1' },
      workers: { type: 'string', default: '16' },
      pace: { type: 'string', default: 'sync' },
      json: { type: 'boolean', default: false },
    },
  });
  const integer = (name: keyof typeof values, min: number): number => {
    const value = Number(values[name]);
    if (!Number.isInteger(value) || value < min) throw new Error(`--${name} must be an integer >= ${min}, got ${String(values[name])}`);
    return value;
  };
  const seconds = (name: keyof typeof values): number => {
    const value = Number(values[name]);
    if (!(value > 0)) throw new Error(`--${name} must be a positive number of seconds, got ${String(values[name])}`);
    return value;
  };
  if (values.pace !== 'sync' && values.pace !== 'spread') throw new Error(`--pace takes sync or spread, got ${String(values.pace)}`);
  const pace: Pace = values.pace;
  const scenarios = new Set<'late' | 'blocked'>();
  for (const name of (values.scenario ?? '').split(',')) {
    if (name !== 'late' && name !== 'blocked') throw new Error(`--scenario takes late and/or blocked, got ${name}`);
    scenarios.add(name);
  }
  return {
    scenarios,
    calls: integer('calls', 1),
    size: integer('size', 1),
    timeout: seconds('timeout'),
    closeLimit: seconds('close-limit'),
    newCalls: integer('new-calls', 0),
    lateCalls: integer('late-calls', 1),
    lateSize: integer('late-size', 1),
    lateTimeout: seconds('late-timeout'),
    workers: integer('workers', 1),
    pace,
    json: values.json === true,
  };
}

// ---------------------------------------------------------------------------------------------
// The server process

/** One run of `work` on the server. */
interface Run {
  tag: string;
  seq: number;
  /** epoch ms when the function started */
  startedAt: number;
  /** `currentCall().deadline`: what the server believes the caller's deadline is */
  serverDeadline: number | undefined;
}

type ToServer = { type: 'report' } | { type: 'close' };
type FromServer = { type: 'ready' } | { type: 'report'; runs: Run[]; expired: number; lastActivity: number } | { type: 'closed' };

async function serverMain(): Promise<void> {
  const url = process.env['QAM_BP_URL'] ?? '';
  const serverId = process.env['QAM_BP_SERVER_ID'] ?? '';
  const runs: Run[] = [];
  let lastActivity = Date.now();
  const server = new QAMServer({ serverId, url, workers: Number(process.env['QAM_BP_WORKERS']), logger: silentLogger });
  server.registerFunction((tag: string, seq: number) => {
    lastActivity = Date.now();
    runs.push({ tag, seq, startedAt: lastActivity, serverDeadline: currentCall()?.deadline });
    return seq;
  }, 'work');
  let expired = 0;
  const send = (message: FromServer): void => {
    process.send?.(message);
  };
  process.on('message', (message: ToServer) => {
    if (message.type === 'report') {
      const stats = server.stats();
      if (stats.expired !== expired) {
        expired = stats.expired;
        lastActivity = Date.now();
      }
      send({ type: 'report', runs, expired, lastActivity });
    } else {
      server.close({ deleteQueue: true }).finally(() => {
        send({ type: 'closed' });
        process.disconnect();
      });
    }
  });
  await server.serve();
  send({ type: 'ready' });
}

/** The server child as the client process sees it. */
class ServerChild {
  readonly serverId = `qam_bp_${randomBytes(6).toString('hex')}`;
  readonly #child: ChildProcess;
  readonly #waiting = new Map<FromServer['type'], (message: FromServer) => void>();

  constructor(url: string, workers: number) {
    this.#child = fork(fileURLToPath(import.meta.url), ['--role=server'], {
      env: { ...process.env, QAM_BP_URL: url, QAM_BP_SERVER_ID: this.serverId, QAM_BP_WORKERS: String(workers) },
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
      const onExit = (): void => reject(new Error(`the server process exited while waiting for '${type}'`));
      this.#child.once('exit', onExit);
      this.#waiting.set(type, (message) => {
        this.#child.off('exit', onExit);
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
    const closed = this.#next('closed');
    this.#child.send({ type: 'close' } satisfies ToServer);
    await within(closed, 30_000);
    this.kill();
  }

  kill(): void {
    if (this.#child.exitCode === null && this.#child.signalCode === null) this.#child.kill('SIGKILL');
  }
}

// ---------------------------------------------------------------------------------------------
// The client (this process)

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** What `promise` resolves with, or undefined if it has not within `ms` (its timer then cleared). */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** BENCH_TRACE=1 prints when each phase ends. */
const traceStart = Date.now();
function trace(what: string): void {
  if (process.env['BENCH_TRACE'] === '1') console.log(`  [${((Date.now() - traceStart) / 1000).toFixed(1)} s] ${what}`);
}

interface Work {
  work(tag: string, seq: number, payload: string): Promise<number>;
}

/** Outcome of each call: when it was made and settled, and 'ok' or its error code. */
interface CallRecord {
  calledAt: number;
  settledAt: number;
  outcome: string;
}

/**
 * Makes `count` calls at `pace`; resolves once all have settled, or after `capMs`, with each
 * call's record and how long making the calls took.
 */
async function burst(
  proxy: QAMProxy<Work>,
  tag: string,
  count: number,
  payload: string,
  pace: Pace,
  capMs: number,
): Promise<{ records: CallRecord[]; loopMs: number }> {
  const records: CallRecord[] = [];
  const loopStart = Date.now();
  const settled: Promise<void>[] = [];
  for (let seq = 0; seq < count; seq++) {
    const record: CallRecord = { calledAt: Date.now(), settledAt: Number.NaN, outcome: 'pending' };
    records.push(record);
    settled.push(
      proxy.work(tag, seq, payload).then(
        () => {
          record.settledAt = Date.now();
          record.outcome = 'ok';
        },
        (error: unknown) => {
          record.settledAt = Date.now();
          record.outcome = String((error as { code?: unknown }).code ?? 'error');
        },
      ),
    );
    if (pace === 'spread') await new Promise((resolve) => setImmediate(resolve));
  }
  const loopMs = Date.now() - loopStart;
  await within(Promise.all(settled), capMs);
  return { records, loopMs };
}

function countBy(values: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const value of values) counts[value] = (counts[value] ?? 0) + 1;
  return counts;
}

function percentile(sorted: number[], p: number): number | undefined {
  if (sorted.length === 0) return undefined;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** Samples this process's RSS every 50 ms; `peak` is the highest seen. */
class RssSampler {
  readonly base = process.memoryUsage.rss();
  peak = this.base;
  readonly #timer = setInterval(() => this.sample(), 50);

  sample(): void {
    this.peak = Math.max(this.peak, process.memoryUsage.rss());
  }

  stop(): void {
    this.sample();
    clearInterval(this.#timer);
  }
}

/** Messages in `queue` on the node (ready + unacknowledged). */
async function queueDepth(node: TestNode, queue: string): Promise<number> {
  const out = await node.ctl('list_queues', 'name', 'messages', '--silent');
  for (const line of out.split('\n')) {
    const [name, messages] = line.trim().split(/\s+/);
    if (name === queue) return Number(messages);
  }
  return 0;
}

/**
 * Waits until the server has been idle for `quietMs` (no call started, none skipped as expired)
 * and its queue is empty, or `capMs` passed; returns the last report.
 */
async function quiesce(
  server: ServerChild,
  node: TestNode,
  quietMs: number,
  capMs: number,
): Promise<Extract<FromServer, { type: 'report' }> & { quiet: boolean }> {
  const cap = Date.now() + capMs;
  for (;;) {
    const report = await server.report();
    const idle = Date.now() - report.lastActivity >= quietMs;
    if (idle && (await queueDepth(node, `server_${server.serverId}_queue`)) === 0) return { ...report, quiet: true };
    if (Date.now() > cap) return { ...report, quiet: false };
    await sleep(500);
  }
}

/** Server runs of `tag` compared with the callers' deadlines (call time + timeout). */
function lateness(runs: Run[], tag: string, records: CallRecord[], timeoutMs: number) {
  const mine = runs.filter((run) => run.tag === tag);
  const late = mine
    .map((run) => {
      const record = records[run.seq];
      return record === undefined ? Number.NaN : run.startedAt - (record.calledAt + timeoutMs);
    })
    .filter((ms) => ms > 0)
    .sort((a, b) => a - b);
  const givenUp = mine.filter((run) => records[run.seq]?.outcome !== 'ok').length;
  return {
    ran: mine.length,
    ranAfterCallerGaveUp: givenUp,
    startedAfterDeadline: late.length,
    startedOver100msAfterDeadline: late.filter((ms) => ms > 100).length,
    lateMsMedian: percentile(late, 50),
    lateMsMax: late.at(-1),
    startedAfterServerDeadline: mine.filter((run) => run.serverDeadline !== undefined && run.startedAt > run.serverDeadline).length,
  };
}

function settleFigures(records: CallRecord[], start: number, timeoutMs: number) {
  const settled = records.filter((record) => !Number.isNaN(record.settledAt));
  const lastSettleMs = settled.length === 0 ? undefined : Math.max(...settled.map((record) => record.settledAt)) - start;
  const overshoot = settled.map((record) => record.settledAt - (record.calledAt + timeoutMs)).sort((a, b) => a - b);
  return {
    outcomes: countBy(records.map((record) => record.outcome)),
    unsettled: records.length - settled.length,
    lastSettleMs,
    settleOvershootMsMax: overshoot.at(-1),
  };
}

/** Keeps the warnings and errors the client logs (connection losses and their reasons), with when. */
function clientLog(): Logger & { lines: string[] } {
  const start = Date.now();
  const lines: string[] = [];
  const keep = (message: string): void => {
    lines.push(`+${Date.now() - start} ms ${message}`);
  };
  return { lines, debug: () => undefined, info: () => undefined, warn: keep, error: keep };
}

async function lateScenario(node: TestNode, server: ServerChild, s: Settings) {
  const timeoutMs = s.lateTimeout * 1000;
  const log = clientLog();
  const proxy = new QAMProxy<Work>({ serverId: server.serverId, url: node.url, timeout: s.lateTimeout, logger: log });
  await proxy.setTimeout(30).work('warmup', 0, '');
  const payload = 'x'.repeat(s.lateSize);
  const start = Date.now();
  trace('late: calling');
  const { records, loopMs } = await burst(proxy, 'late', s.lateCalls, payload, s.pace, timeoutMs * 20 + 60_000);
  trace('late: all settled');
  const settle = settleFigures(records, start, timeoutMs);
  const closeStart = Date.now();
  const closed =
    (await within(
      proxy.close().then(() => true),
      s.closeLimit * 1000,
    )) ?? false;
  const closeMs = Date.now() - closeStart;
  trace('late: closed');
  const report = await quiesce(server, node, 3000, 120_000);
  trace('late: server quiet');
  return {
    calls: s.lateCalls,
    size: s.lateSize,
    timeoutS: s.lateTimeout,
    loopMs,
    ...settle,
    connectionEvents: log.lines,
    closeReturned: closed,
    closeMs,
    serverQuiet: report.quiet,
    ...lateness(report.runs, 'late', records, timeoutMs),
  };
}

async function blockedScenario(node: TestNode, server: ServerChild, s: Settings) {
  const timeoutMs = s.timeout * 1000;
  const closeLimitMs = s.closeLimit * 1000;
  const log = clientLog();
  const proxy = new QAMProxy<Work>({ serverId: server.serverId, url: node.url, timeout: s.timeout, logger: log });
  await proxy.setTimeout(30).work('warmup', 0, '');
  const payload = 'x'.repeat(s.size);
  const expiredBefore = (await server.report()).expired;
  global.gc?.();
  const rss = new RssSampler();
  await node.setMemoryAlarm(true);
  const start = Date.now();
  trace('blocked: alarm on, calling');
  const { records, loopMs } = await burst(proxy, 'blocked', s.calls, payload, s.pace, timeoutMs * 20 + 120_000);
  trace('blocked: all settled');
  const settle = settleFigures(records, start, timeoutMs);
  const closeStart = Date.now();
  const closing = proxy.close().then(() => Date.now());
  const closedAt = await within(closing, closeLimitMs);
  rss.stop();
  trace(`blocked: close ${closedAt === undefined ? 'still waiting' : 'returned'}`);
  const clearAt = Date.now();
  await node.setMemoryAlarm(false);
  trace('blocked: alarm cleared');
  const closedAfterClearAt = closedAt ?? (await within(closing, 120_000));
  const fresh = new QAMProxy<Work>({ serverId: server.serverId, url: node.url, timeout: s.timeout, logger: silentLogger });
  const freshStart = Date.now();
  const after = (await burst(fresh, 'after', s.newCalls, '', s.pace, timeoutMs + 60_000)).records;
  const freshMs = Date.now() - freshStart;
  await fresh.close();
  trace('blocked: new calls done');
  const report = await quiesce(server, node, 3000, 180_000);
  trace('blocked: server quiet');
  return {
    calls: s.calls,
    size: s.size,
    timeoutS: s.timeout,
    loopMs,
    connectionEvents: log.lines,
    rssBaseMB: Math.round(rss.base / 2 ** 20),
    rssGrowthMB: Math.round((rss.peak - rss.base) / 2 ** 20),
    ...settle,
    closeReturned: closedAt !== undefined,
    closeMs: closedAt === undefined ? undefined : closedAt - closeStart,
    closeMsAfterAlarmCleared: closedAt === undefined && closedAfterClearAt !== undefined ? closedAfterClearAt - clearAt : undefined,
    newCalls: countBy(after.map((record) => record.outcome)),
    newCallsMs: freshMs,
    serverQuiet: report.quiet,
    serverSkippedExpired: report.expired - expiredBefore,
    ...lateness(report.runs, 'blocked', records, timeoutMs),
  };
}

/** The 1-minute load average, one decimal. */
function loadAverage(): number {
  return Math.round((loadavg()[0] ?? 0) * 10) / 10;
}

/** How many lines the client logged, and the first one. */
function logSummary(lines: string[]): string {
  return lines.length === 0 ? 'nothing' : `${lines.length} line(s), first: ${lines[0]}`;
}

function format(value: unknown): string {
  if (value === undefined) return '-';
  if (typeof value === 'object' && value !== null) {
    return Object.entries(value)
      .map(([key, count]) => `${key} ${String(count)}`)
      .join(', ');
  }
  return String(value);
}

async function clientMain(): Promise<void> {
  const s = settings();
  let node: TestNode | undefined;
  let server: ServerChild | undefined;
  const abort = (): void => {
    server?.kill();
    void node?.stop().finally(() => process.exit(130));
  };
  process.once('SIGINT', abort);
  process.once('SIGTERM', abort);
  try {
    node = await startNode();
    console.log(`test node ${node.nodeName} on 127.0.0.1:${node.port}, booted in ${node.startupMs} ms`);
    server = new ServerChild(node.url, s.workers);
    await server.ready();
    trace('server ready');
    const results: Record<string, unknown> = { pace: s.pace, workers: s.workers, startupMs: node.startupMs, loadBefore: loadAverage() };
    const lines: string[] = [];
    // The blocked scenario first, so that its RSS figure starts from a process that has not yet held large buffers.
    if (s.scenarios.has('blocked')) {
      const r = await blockedScenario(node, server, s);
      results['blocked'] = r;
      lines.push(
        `blocked: ${r.calls} calls of ${r.size} B, timeout ${r.timeoutS} s, memory alarm on; made in ${r.loopMs} ms; client RSS +${r.rssGrowthMB} MB (from ${r.rssBaseMB} MB)`,
        `         ${format(r.outcomes)}${r.unsettled > 0 ? ` (${r.unsettled} unsettled at the cap)` : ''}; last settled ${format(r.lastSettleMs)} ms after the first call, at most ${format(r.settleOvershootMsMax)} ms past its own deadline`,
        `         close(): ${r.closeReturned ? `returned in ${r.closeMs} ms` : `did not return within ${s.closeLimit} s; ${r.closeMsAfterAlarmCleared === undefined ? 'nor after the alarm cleared' : `returned ${r.closeMsAfterAlarmCleared} ms after the alarm cleared`}`}`,
        `         alarm cleared: ${s.newCalls} new calls: ${format(r.newCalls)} (in ${r.newCallsMs} ms); server ran ${r.ran} of the blocked calls, ${r.ranAfterCallerGaveUp} after their caller gave up` +
          ` (${r.startedAfterDeadline} started after the caller's deadline, up to ${format(r.lateMsMax)} ms); skipped ${r.serverSkippedExpired} as expired${r.serverQuiet ? '' : '; server still busy at the cap'}`,
        `         client log: ${logSummary(r.connectionEvents)}`,
      );
    }
    if (s.scenarios.has('late')) {
      const r = await lateScenario(node, server, s);
      results['late'] = r;
      lines.push(
        `late:    ${r.calls} calls of ${r.size} B, timeout ${r.timeoutS} s; made in ${r.loopMs} ms; ${format(r.outcomes)}; last settled ${format(r.lastSettleMs)} ms after the first call,` +
          ` at most ${format(r.settleOvershootMsMax)} ms past its own deadline; close() ${r.closeReturned ? `returned in ${r.closeMs} ms` : `did not return within ${s.closeLimit} s`}`,
        `         server ran ${r.ran}, ${r.ranAfterCallerGaveUp} after their caller gave up; started after the caller's deadline: ${r.startedAfterDeadline}` +
          ` (over 100 ms after: ${r.startedOver100msAfterDeadline}; median ${format(r.lateMsMedian)} ms, max ${format(r.lateMsMax)} ms after);` +
          ` after currentCall().deadline: ${r.startedAfterServerDeadline}${r.serverQuiet ? '' : '; server still busy at the cap'}`,
        `         client log: ${logSummary(r.connectionEvents)}`,
      );
    }
    results['loadAfter'] = loadAverage();
    console.log(
      `backpressure (pace ${s.pace}, ${s.workers} server workers; test node booted in ${node.startupMs} ms;` +
        ` load average ${String(results['loadBefore'])} before, ${String(results['loadAfter'])} after)`,
    );
    for (const line of lines) console.log(line);
    if (s.json) console.log(JSON.stringify(results));
  } finally {
    process.off('SIGINT', abort);
    process.off('SIGTERM', abort);
    await server?.close();
    trace('server closed');
    await node?.stop();
    trace('node stopped');
  }
}

const role = process.argv.includes('--role=server') ? serverMain : clientMain;
role().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
