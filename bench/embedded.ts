/**
 * The embedded broker against RabbitMQ, like with like: a qam server and a qam proxy in this one
 * process, awaited calls with 100 in flight (direct reply-to, the echo function), once over
 * `memory://` and once over RabbitMQ on loopback, rounds interleaved. Reported per broker: calls per
 * second (median of the rounds) and this process's CPU time per call; the ratio is taken within
 * each round, so load from other programs hits both rows alike. Then 100,000 calls over the
 * embedded broker with the heap measured after GC before and after: the broker keeps nothing.
 *
 * Prints a Markdown section. `npm run bench` runs it (in a process of its own, with --expose-gc)
 * and appends the section to its report; alone:
 *
 *   npm run build && node --expose-gc dist/bench/embedded.js [--quick] [--rounds=N]
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { QAMProxy, QAMServer, silentLogger } from '../lib/index.js';
import { memoryBroker } from '../lib/amqp/memory/index.js';

const inFlight = 100;
const payload = 'x'.repeat(100);
type Api = { echo(value: string): string };

interface Pair {
  proxy: QAMProxy<Api>;
  close(): Promise<void>;
}

async function pair(url: string): Promise<Pair> {
  const server = new QAMServer({
    serverId: `qam-bench-embedded-${randomBytes(4).toString('hex')}`,
    url,
    logger: silentLogger,
    workers: inFlight,
  });
  server.registerFunction((value: string) => value, 'echo');
  await server.serve();
  const proxy = new QAMProxy<Api>({ serverId: server.serverId, url, logger: silentLogger, timeout: 60 });
  return {
    proxy,
    async close() {
      await proxy.close();
      await server.close({ deleteQueue: true });
    },
  };
}

interface Sample {
  callsPerSecond: number;
  cpuMicrosPerCall: number;
}

/** `calls` awaited calls, `inFlight` at a time. */
async function run(proxy: QAMProxy<Api>, calls: number): Promise<Sample> {
  let issued = 0;
  const cpu = process.cpuUsage();
  const started = performance.now();
  const lane = async (): Promise<void> => {
    while (issued < calls) {
      issued++;
      await proxy.echo(payload);
    }
  };
  await Promise.all(Array.from({ length: inFlight }, lane));
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  return { callsPerSecond: calls / seconds, cpuMicrosPerCall: (used.user + used.system) / calls };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

function heapMiB(): number {
  const collect = (globalThis as { gc?: () => void }).gc;
  if (collect === undefined) throw new Error('run node with --expose-gc: the heap is measured after GC');
  collect();
  collect();
  return process.memoryUsage().heapUsed / 2 ** 20;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false }, rounds: { type: 'string' } } });
  const quick = values.quick === true;
  const rounds = Number(values.rounds ?? 3);
  const calls = { memory: quick ? 20_000 : 100_000, rabbit: quick ? 4_000 : 20_000 };
  const brokerName = `bench-${randomBytes(4).toString('hex')}`;
  const memoryUrl = `memory://${brokerName}`;
  const rabbitUrl = process.env['BENCH_URL'] ?? 'amqp://guest:guest@127.0.0.1:5672';

  const memory = await pair(memoryUrl);
  const rabbit = await pair(rabbitUrl);
  const samples = { memory: [] as Sample[], rabbit: [] as Sample[], ratio: [] as number[], cpuRatio: [] as number[] };
  try {
    await run(memory.proxy, calls.memory / 4);
    await run(rabbit.proxy, calls.rabbit / 4);
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? (['memory', 'rabbit'] as const) : (['rabbit', 'memory'] as const);
      const got: Partial<Record<'memory' | 'rabbit', Sample>> = {};
      for (const which of order) got[which] = await run((which === 'memory' ? memory : rabbit).proxy, calls[which]);
      samples.memory.push(got.memory!);
      samples.rabbit.push(got.rabbit!);
      samples.ratio.push(got.memory!.callsPerSecond / got.rabbit!.callsPerSecond);
      samples.cpuRatio.push(got.rabbit!.cpuMicrosPerCall / got.memory!.cpuMicrosPerCall);
    }
  } finally {
    await rabbit.close();
  }

  // 100,000 more calls over the embedded broker: the heap after GC must not grow with them.
  await run(memory.proxy, 10_000);
  const before = heapMiB();
  await run(memory.proxy, 100_000);
  const after = heapMiB();
  await memory.close();
  memoryBroker(brokerName).close();
  const grown = after - before;

  const row = (name: string, url: string, list: Sample[], n: number): string =>
    `| ${name} | \`${url.replace(/\/\/[^@]*@/, '//')}\` | ${n} | ${median(list.map((s) => s.callsPerSecond)).toFixed(0)} | ${median(
      list.map((s) => s.cpuMicrosPerCall),
    ).toFixed(1)} |`;
  const lines = [
    '## The embedded broker against RabbitMQ (client and server in one process)',
    '',
    `Awaited calls of \`echo\` (${payload.length} B string), ${inFlight} in flight, direct reply-to; a qam server and a qam proxy in one process over each broker; ${rounds} rounds, interleaved. Command: \`node --expose-gc dist/bench/embedded.js${quick ? ' --quick' : ''}\` (run by \`npm run bench\`).`,
    '',
    '| broker | URL | calls per round | calls/s (median) | CPU µs per call (median) |',
    '| --- | --- | ---: | ---: | ---: |',
    row('embedded (`memory://`)', memoryUrl, samples.memory, calls.memory),
    row('RabbitMQ on loopback', rabbitUrl, samples.rabbit, calls.rabbit),
    '',
    `Embedded ÷ RabbitMQ, calls/s within each round: ${samples.ratio.map((r) => `${r.toFixed(1)}×`).join(', ')} (median ${median(samples.ratio).toFixed(1)}×; target ≥ 5×). CPU per call, RabbitMQ ÷ embedded: median ${median(samples.cpuRatio).toFixed(1)}× (the RabbitMQ row's CPU is this process only, not the broker's).`,
    '',
    `Memory: 100,000 calls over the embedded broker, heap after GC ${before.toFixed(1)} MiB before, ${after.toFixed(1)} MiB after (${grown >= 0 ? '+' : ''}${grown.toFixed(2)} MiB): ${Math.abs(grown) < 2 ? 'flat' : 'NOT flat'}.`,
    '',
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`bench/embedded: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
