/**
 * `node dist/bench/call-cost.js <variant> [calls] [inFlight] [side]`: the cost of one call, on one
 * side, for profiling (`node --cpu-prof`) or counting instructions (`valgrind --tool=callgrind`).
 * The side measured (`client`, the default, or `server`) runs in this process, the other one in a
 * child process. After 1,000 warm-up calls it makes `calls` echo calls (~100 B JSON) with `inFlight`
 * outstanding, and prints this process's CPU time per call. Run it with two call counts and take
 * the difference of the instruction counts over the difference of the calls: start-up, connecting
 * and warm-up cancel out (see bench/low-concurrency.md).
 */

import { randomBytes } from 'node:crypto';
import { handlerFor } from './behaviors.js';
import { deleteNames } from './broker.js';
import { BenchChild } from './child.js';
import type { ClientChildConfig, ServerChildConfig } from './ipc.js';
import { makePayload } from './payloads.js';
import { variantNamed } from './variants/index.js';
import type { ClientDriver } from './variants/types.js';

const url = process.env['BENCH_URL'] ?? 'amqp://guest:guest@127.0.0.1:5672';
const [variantName = 'qam', callsArg = '2000', inFlightArg = '1', side = 'client'] = process.argv.slice(2);
const calls = Number(callsArg);
const inFlight = Number(inFlightArg);
const warmup = 1000;
if (!Number.isInteger(calls) || calls < 1 || !Number.isInteger(inFlight) || inFlight < 1 || (side !== 'client' && side !== 'server')) {
  throw new Error('usage: call-cost.js <variant> [calls] [inFlight] [client|server]');
}

async function runCalls(driver: ClientDriver, count: number): Promise<void> {
  const payload = makePayload(100);
  let issued = 0;
  const lane = async (): Promise<void> => {
    while (issued < count) {
      issued++;
      await driver.call(payload);
    }
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, count) }, lane));
}

async function main(): Promise<void> {
  const entry = variantNamed(variantName);
  const variant = await entry.load();
  const name = `qam-bench-cost-${Date.now().toString(36)}-${randomBytes(2).toString('hex')}`;
  const lifetimeMs = 30 * 60_000;
  let cpuPerCall: number;
  if (side === 'client') {
    const server = new BenchChild('server-main.js', {
      variant: variantName,
      url,
      servers: [{ name, behavior: { kind: 'echo' }, concurrency: 100 }],
      lifetimeMs,
    } satisfies ServerChildConfig);
    try {
      await server.next('ready', 60_000);
      const driver = await variant.openClient({ url, name, timeoutMs: 600_000 });
      await runCalls(driver, warmup);
      const start = process.cpuUsage();
      await runCalls(driver, calls);
      const used = process.cpuUsage(start);
      cpuPerCall = (used.user + used.system) / calls;
      await driver.close();
    } finally {
      server.send({ type: 'stop' });
      await server.next('stopped', 60_000).catch(() => undefined);
      await server.reap(15_000);
    }
  } else {
    const handle = await variant.startServer({ url, name, handler: handlerFor({ kind: 'echo' }), concurrency: 100 });
    try {
      // The client child makes the warm-up calls and then the measured ones, as two tasks.
      const task = { kind: 'throughput', key: 'x', target: 'echo', payloadBytes: 100, inFlight, warmup: 0, maxSeconds: 3600 } as const;
      const client = new BenchChild('client-main.js', {
        variant: variantName,
        url,
        targets: { echo: name },
        tasks: [
          { ...task, key: 'warmup', calls: warmup },
          { ...task, key: 'measured', calls },
        ],
        callTimeoutMs: 600_000,
        lifetimeMs,
      } satisfies ClientChildConfig);
      client.send({ type: 'start' });
      const result = await client.next('result', lifetimeMs);
      await client.reap(15_000);
      cpuPerCall = Number.NaN;
      process.stdout.write(`client: ${JSON.stringify(result.outcome.metrics)}\n`);
    } finally {
      await handle.close();
    }
  }
  await deleteNames(url, variant.brokerNames(name));
  process.stdout.write(`${variantName} ${side}: ${calls} calls, ${inFlight} in flight, ${cpuPerCall.toFixed(1)} µs CPU per call\n`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
