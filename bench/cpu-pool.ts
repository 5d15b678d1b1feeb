/**
 * How a CPU-bound function scales with the server's worker threads: calls per second of `fib(n)`
 * registered with registerWorkerFunction on 1 thread, then on 2, through one proxy.
 *
 *   npm run build && node dist/bench/cpu-pool.js [rounds, default 5] [seconds a run, default 3] [n, default 30]
 *
 * Broker from QAM_URL (default amqp://guest:guest@localhost:5672/). Each run keeps twice as many
 * calls in flight as there are threads, so a thread never waits for the network. The runs
 * alternate, 1 thread then 2, `rounds` times; it reports the best of each (other processes on the
 * machine only ever slow a run down) and the median of the rounds' ratios.
 */
import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { QAMProxy, QAMServer, silentLogger, type ServerApi } from '../lib/index.js';

type Work = typeof import('./cpu-pool-work.js');
const workModule = new URL('./cpu-pool-work.js', import.meta.url);

function buildServer(serverId: string, threads: number) {
  return new QAMServer({ serverId, threads, workers: 2 * threads, logger: silentLogger }).registerWorkerFunction<Work, 'fib'>(
    workModule,
    'fib',
  );
}

interface Run {
  threads: number;
  calls: number;
  seconds: number;
  perSecond: number;
}

async function measure(threads: number, seconds: number, n: number): Promise<Run> {
  const serverId = `bench_cpu_pool_${randomBytes(4).toString('hex')}`;
  const server = buildServer(serverId, threads);
  await server.serve();
  const proxy = new QAMProxy<ServerApi<typeof server>>({ serverId, timeout: 60, logger: silentLogger });
  try {
    const inFlight = 2 * threads;
    // Warm-up: starts the threads and lets V8 optimize fib on each.
    await Promise.all(Array.from({ length: 4 * threads }, () => proxy.fib(n)));
    let calls = 0;
    const started = process.hrtime.bigint();
    const endAt = Date.now() + seconds * 1000;
    const loop = async (): Promise<void> => {
      while (Date.now() < endAt) {
        await proxy.fib(n);
        calls++;
      }
    };
    await Promise.all(Array.from({ length: inFlight }, loop));
    const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
    return { threads, calls, seconds: elapsed, perSecond: calls / elapsed };
  } finally {
    await proxy.close();
    await server.close({ deleteQueue: true });
  }
}

async function main(): Promise<void> {
  const rounds = Number(process.argv[2] ?? 5);
  const seconds = Number(process.argv[3] ?? 3);
  const n = Number(process.argv[4] ?? 30);
  console.log(`fib(${n}) on worker threads, ${rounds} rounds of ${seconds} s a run, ${availableParallelism()} CPUs available`);
  const best = new Map<number, Run>();
  const ratios: number[] = [];
  for (let round = 1; round <= rounds; round++) {
    const perSecond: number[] = [];
    for (const threads of [1, 2]) {
      const run = await measure(threads, seconds, n);
      perSecond.push(run.perSecond);
      if (run.perSecond > (best.get(threads)?.perSecond ?? 0)) best.set(threads, run);
      console.log(
        `round ${round}, threads ${run.threads}: ${run.calls} calls in ${run.seconds.toFixed(2)} s = ${run.perSecond.toFixed(1)} calls/s (${(1000 / run.perSecond).toFixed(2)} ms a call)`,
      );
    }
    const [one = 0, two = 0] = perSecond;
    ratios.push(two / one);
  }
  const one = best.get(1)?.perSecond ?? 0;
  const two = best.get(2)?.perSecond ?? 0;
  console.log(`best: 1 thread ${one.toFixed(1)} calls/s, 2 threads ${two.toFixed(1)} calls/s: ${(two / one).toFixed(2)}×`);
  console.log(
    `2 threads / 1 thread by round: ${ratios.map((ratio) => `${ratio.toFixed(2)}×`).join(', ')}; median ${median(ratios).toFixed(2)}×`,
  );
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] ?? 0) : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
