/**
 * Bench client process: opens the variant's client driver for each server it needs, runs its
 * tasks in order and reports the metrics. Run with --expose-gc (the memory task needs it).
 */

import { performance } from 'node:perf_hooks';
import { received, runChild, tell } from './ipc.js';
import type { ClientChildConfig, TaskOutcome } from './ipc.js';
import { latency, memory, throughput } from './measure.js';
import type { Measured } from './measure.js';
import { makePayload } from './payloads.js';
import type { Target, Task } from './plan.js';
import { variantNamed } from './variants/index.js';
import type { ClientDriver, Variant } from './variants/types.js';

/** BENCH_TRACE=1 prints how long each task took. */
const trace = process.env['BENCH_TRACE'] === '1';

runChild<ClientChildConfig>(async (config) => {
  const variant = await variantNamed(config.variant).load();
  // Booted while the servers start; begins once they are ready, or leaves if they never are.
  if ((await received('start', 'stop')) === 'stop') return;
  const drivers = new Map<Target, ClientDriver>();
  const outcome: TaskOutcome = { metrics: {}, caps: [] };
  try {
    for (const task of config.tasks) {
      const started = performance.now();
      const driver = await driverFor(variant, config, drivers, task.target);
      const measured = await run(driver, task);
      if (trace) console.error(`  ${config.variant} ${task.key}: ${((performance.now() - started) / 1000).toFixed(2)} s`);
      Object.assign(outcome.metrics, measured.metrics);
      outcome.caps.push(...measured.caps);
    }
  } finally {
    for (const driver of drivers.values()) await driver.close();
  }
  await tell({ type: 'result', outcome });
});

async function driverFor(
  variant: Variant,
  config: ClientChildConfig,
  drivers: Map<Target, ClientDriver>,
  target: Target,
): Promise<ClientDriver> {
  const existing = drivers.get(target);
  if (existing !== undefined) return existing;
  const name = config.targets[target];
  if (name === undefined) throw new Error(`no ${target} server in this run`);
  const driver = await variant.openClient({ url: config.url, name, timeoutMs: config.callTimeoutMs });
  drivers.set(target, driver);
  return driver;
}

function run(driver: ClientDriver, task: Task): Promise<Measured> {
  const payload = makePayload(task.payloadBytes);
  switch (task.kind) {
    case 'latency':
      return latency(driver, payload, task);
    case 'throughput':
      return throughput(driver, payload, task);
    case 'memory':
      return memory(driver, payload, task);
  }
}
