/**
 * `npm run bench [-- --quick] [-- --rounds=N] [-- --only=a,b]`: runs every variant's echo server and
 * client in their own processes, rounds × variants interleaved, then prints the Markdown report and
 * writes it to bench/results.md. See bench/README.md.
 */

import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { parseArgs, promisify } from 'node:util';
import { brokerVersion, deleteNames, leftovers } from './broker.js';
import { BenchChild } from './child.js';
import { describeEnvironment, projectRoot } from './environment.js';
import { describe } from './ipc.js';
import type { ClientChildConfig, ServerChildConfig, TaskOutcome } from './ipc.js';
import { clientBudgetMs, planScope, plans, sectionsFor, serversFor, tasksFor } from './plan.js';
import type { Plan, Target } from './plan.js';
import { renderReport } from './report.js';
import type { VariantResult } from './report.js';
import { referenceName, scopeOf, variantNamed, variants } from './variants/index.js';
import type { VariantEntry } from './variants/index.js';
import type { BrokerNames } from './variants/types.js';

const url = process.env['BENCH_URL'] ?? 'amqp://guest:guest@127.0.0.1:5672';
/** BENCH_TRACE=1 prints how long each phase and task took. */
const trace = process.env['BENCH_TRACE'] === '1';

function options(): { plan: Plan; entries: VariantEntry[]; out: string } {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      low: { type: 'boolean', default: false },
      rounds: { type: 'string' },
      only: { type: 'string' },
      out: { type: 'string' },
    },
  });
  const plan = { ...plans[values.low === true ? 'low' : values.quick === true ? 'quick' : 'full'] };
  if (values.rounds !== undefined) {
    plan.rounds = Number(values.rounds);
    if (!Number.isInteger(plan.rounds) || plan.rounds < 1) throw new Error(`--rounds must be a positive integer, got ${values.rounds}`);
  }
  // The reference always runs: every ratio needs its same-round value.
  const names = values.only
    ?.split(',')
    .map((name) => name.trim())
    .filter((name) => name !== '');
  const planned = (entry: VariantEntry): boolean =>
    (plan.variants?.includes(entry.name) ?? entry.onRequest !== true) && (entry.available?.() ?? true);
  const entries = names === undefined ? variants.filter(planned) : [...new Set([referenceName, ...names])].map(variantNamed);
  return { plan, entries, out: values.out ?? `${projectRoot}bench/results.md` };
}

/** bench/embedded.ts in a process of its own (it needs --expose-gc): its Markdown section. */
async function embeddedSection(plan: Plan): Promise<string> {
  const script = `${projectRoot}dist/bench/embedded.js`;
  const args = ['--expose-gc', script, ...(plan.mode === 'quick' ? ['--quick'] : []), `--rounds=${plan.rounds}`];
  try {
    const { stdout } = await promisify(execFile)(process.execPath, args, { env: { ...process.env, BENCH_URL: url }, timeout: 900_000 });
    return stdout;
  } catch (error) {
    return `## The embedded broker against RabbitMQ\n\nFAILED: ${describe(error)}\n`;
  }
}

function log(text: string): void {
  process.stderr.write(`${text}\n`);
}

/** Round r runs the variants rotated by r, so no variant always runs first or right after another. */
function rotate<T>(items: readonly T[], by: number): T[] {
  const shift = by % items.length;
  return [...items.slice(shift), ...items.slice(0, shift)];
}

async function measureOnce(plan: Plan, entry: VariantEntry, prefix: string, used: Map<string, string[]>): Promise<TaskOutcome> {
  const scope = planScope(plan, scopeOf(entry));
  const servers = serversFor(plan, scope).map((server) => ({ ...server, name: `${prefix}-${server.target}` }));
  used.set(entry.name, [...(used.get(entry.name) ?? []), ...servers.map((server) => server.name)]);
  const tasks = tasksFor(plan, scope);
  const budget = clientBudgetMs(tasks);
  const targets: Partial<Record<Target, string>> = Object.fromEntries(servers.map((server) => [server.target, server.name]));

  const serverConfig: ServerChildConfig = { variant: entry.name, url, servers, lifetimeMs: budget + 180_000 };
  const clientConfig: ClientChildConfig = {
    variant: entry.name,
    url,
    targets,
    tasks,
    callTimeoutMs: plan.callTimeoutMs,
    lifetimeMs: budget + 90_000,
  };
  const started = Date.now();
  const elapsed = (): string => `${((Date.now() - started) / 1000).toFixed(2)} s`;
  // The client boots while the servers start, and waits for 'start' before it connects.
  const server = new BenchChild('server-main.js', serverConfig);
  const client = new BenchChild('client-main.js', clientConfig, ['--expose-gc']);
  try {
    await server.next('ready', 60_000);
    if (trace) log(`  ${entry.name}: servers ready after ${elapsed()}`);
    client.send({ type: 'start' });
    return (await client.next('result', budget)).outcome;
  } finally {
    client.send({ type: 'stop' }); // only matters if it never got 'start'
    server.send({ type: 'stop' });
    const stopped = server.next('stopped', 90_000).catch((error: unknown) => log(`  server of ${entry.name}: ${describe(error)}`));
    await Promise.all([client.reap(15_000), stopped.then(() => server.reap(15_000))]);
    if (trace) log(`  ${entry.name}: processes gone after ${elapsed()}`);
  }
}

/** Deletes every name the run may have left (normally none), then asks rabbitmqctl what remains. */
async function cleanBroker(runId: string, used: Map<string, string[]>): Promise<string> {
  const names: BrokerNames = { queues: [], exchanges: [] };
  for (const [variant, servers] of used) {
    const declared = await variantNamed(variant)
      .load()
      .then((loaded) => loaded.brokerNames.bind(loaded))
      .catch(() => (server: string): BrokerNames => ({ queues: [server], exchanges: [] }));
    for (const server of servers) {
      const own = declared(server);
      names.queues.push(...own.queues);
      names.exchanges.push(...own.exchanges);
    }
  }
  const failures = await deleteNames(url, names);
  const left = await leftovers(runId);
  if (left === undefined)
    return `deleted every name the run may have declared (${failures.length} errors); rabbitmqctl unavailable, not verified.`;
  if (left.queues.length + left.exchanges.length > 0) {
    const again = await deleteNames(url, left);
    return `rabbitmqctl found ${left.queues.length} queue(s) and ${left.exchanges.length} exchange(s) named '${runId}…' left over; deleted (${again.length} errors).`;
  }
  const errors = failures.length === 0 ? '' : ` (${failures.length} delete errors, first: ${failures[0]})`;
  return `rabbitmqctl shows no queue or exchange named '${runId}…' after the run${errors}.`;
}

async function main(): Promise<void> {
  const { plan, entries, out } = options();
  const runId = `qam-bench-${Date.now().toString(36)}-${randomBytes(2).toString('hex')}`;
  const environment = describeEnvironment(await brokerVersion(url));
  const results = new Map<string, VariantResult>(
    entries.map((entry) => [
      entry.name,
      { name: entry.name, title: entry.title, scope: planScope(plan, scopeOf(entry)), rounds: [], caps: [] },
    ]),
  );
  const used = new Map<string, string[]>();
  let embedded = '';
  const started = Date.now();
  log(`bench ${runId}: ${plan.mode} mode, ${plan.rounds} rounds × ${entries.length} variants, load ${os.loadavg()[0]?.toFixed(2)}`);

  try {
    for (let round = 0; round < plan.rounds; round++) {
      for (const entry of rotate(entries, round)) {
        const result = results.get(entry.name);
        if (result === undefined || result.error !== undefined) continue; // a variant that failed once is not retried
        const t0 = Date.now();
        try {
          const outcome = await measureOnce(plan, entry, `${runId}-${entry.name}-r${round + 1}`, used);
          result.rounds[round] = outcome.metrics;
          result.caps.push(...outcome.caps.map((cap) => ({ ...cap, round })));
          log(`[round ${round + 1}/${plan.rounds}] ${entry.name}: ok in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
        } catch (error) {
          result.error = describe(error);
          log(`[round ${round + 1}/${plan.rounds}] ${entry.name}: FAILED: ${result.error}`);
        }
      }
    }
    log('embedded broker against RabbitMQ, client and server in one process…');
    embedded = await embeddedSection(plan);
  } finally {
    const cleanup = await cleanBroker(runId, used).catch((error: unknown) => `cleanup failed: ${describe(error)}`);
    environment.loadAfter = os.loadavg();
    const report = renderReport({
      plan,
      environment,
      sections: sectionsFor(plan),
      results: [...results.values()],
      referenceName,
      cleanup,
      command: ['npm run bench', ...(process.argv.length > 2 ? ['--', ...process.argv.slice(2)] : [])].join(' '),
    });
    const full = embedded === '' ? report : `${report.trimEnd()}\n\n${embedded}`;
    writeFileSync(out, full);
    process.stdout.write(`${full}\n`);
    log(`bench ${runId}: done in ${((Date.now() - started) / 1000).toFixed(0)} s; report written to ${out}`);
  }
}

main().catch((error: unknown) => {
  log(`bench: ${describe(error)}`);
  process.exitCode = 1;
});
