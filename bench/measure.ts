/**
 * The measurements, written once against {@link ClientDriver} so every variant is measured by the
 * same code. Every loop is bounded by a call count and a deadline.
 */

import { performance } from 'node:perf_hooks';
import { isDeepStrictEqual } from 'node:util';
import { releaseRequest } from './behaviors.js';
import { percentile } from './stats.js';
import type { ClientDriver } from './variants/types.js';

/** A measurement that hit its time cap: its numbers come from fewer calls than planned. */
export interface Cap {
  metrics: string[];
  done: number;
  planned: number;
  seconds: number;
}

export interface Measured {
  metrics: Record<string, number>;
  caps: Cap[];
}

/** Throws unless the reply is the echo of the payload (checked on the first call of each measurement). */
async function checkedCall(driver: ClientDriver, payload: unknown): Promise<void> {
  const reply = await driver.call(payload);
  if (!isDeepStrictEqual(reply, payload))
    throw new Error(`echo mismatch: sent ${JSON.stringify(payload).slice(0, 80)}…, got ${JSON.stringify(reply)?.slice(0, 80)}…`);
}

/** Runs up to `calls` calls with `inFlight` of them outstanding, until the deadline; returns calls done. */
async function runCalls(driver: ClientDriver, payload: unknown, calls: number, inFlight: number, deadline: number): Promise<number> {
  let issued = 0;
  const lane = async (): Promise<void> => {
    while (issued < calls && performance.now() < deadline) {
      issued++;
      await driver.call(payload);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(inFlight, calls)) }, lane));
  return issued;
}

/** Warm-up gets a quarter of the measurement's time cap (with Nagle on, a call can take 40 ms). */
function warmupDeadline(maxSeconds: number): number {
  return performance.now() + maxSeconds * 250;
}

function measured(metrics: Record<string, number>, done: number, planned: number, seconds: number): Measured {
  return { metrics, caps: done < planned ? [{ metrics: Object.keys(metrics), done, planned, seconds }] : [] };
}

export async function latency(
  driver: ClientDriver,
  payload: unknown,
  { key, calls, warmup, maxSeconds }: { key: string; calls: number; warmup: number; maxSeconds: number },
): Promise<Measured> {
  await checkedCall(driver, payload);
  await runCalls(driver, payload, warmup, 1, warmupDeadline(maxSeconds));
  const deadline = performance.now() + maxSeconds * 1000;
  const samples = new Float64Array(calls);
  let done = 0;
  const cpu = process.cpuUsage();
  while (done < calls && performance.now() < deadline) {
    const start = performance.now();
    await driver.call(payload);
    samples[done++] = performance.now() - start;
  }
  const cpuPerCall = cpuMicros(cpu) / done;
  if (done === 0) throw new Error(`no latency sample within ${maxSeconds} s`);
  const sorted = samples.subarray(0, done).sort();
  return measured(
    { [`${key}.p50`]: percentile(sorted, 50), [`${key}.p99`]: percentile(sorted, 99), [`${key}.cpu`]: cpuPerCall },
    done,
    calls,
    maxSeconds,
  );
}

/** CPU time (user + system, µs) this process used since `start`: unlike wall time, barely moved by other processes' load. */
function cpuMicros(start: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(start);
  return used.user + used.system;
}

export async function throughput(
  driver: ClientDriver,
  payload: unknown,
  { key, calls, inFlight, warmup, maxSeconds }: { key: string; calls: number; inFlight: number; warmup: number; maxSeconds: number },
): Promise<Measured> {
  await checkedCall(driver, payload);
  if (warmup > 0) await runCalls(driver, payload, warmup, Math.min(inFlight, 100), warmupDeadline(maxSeconds));
  const cpu = process.cpuUsage();
  const start = performance.now();
  const done = await runCalls(driver, payload, calls, inFlight, start + maxSeconds * 1000);
  const seconds = (performance.now() - start) / 1000;
  return measured({ [key]: done / seconds, [`${key}.cpu`]: cpuMicros(cpu) / done }, done, calls, maxSeconds);
}

/**
 * Heap held per call in flight: gc, heapUsed, start `calls` calls to a server that holds every
 * request until released, wait until the client's event loop is quiet (every request written out)
 * and then {@link settleMs} more (the socket drains, the broker confirms what it was sent),
 * gc, heapUsed again, then release the server and check every call completes. Includes the
 * harness's own array slot per call, the same for every variant.
 */
export async function memory(
  driver: ClientDriver,
  payload: unknown,
  { key, calls, holdMs }: { key: string; calls: number; holdMs: number },
): Promise<Measured> {
  const gc = globalThis.gc;
  if (gc === undefined) throw new Error('the memory task needs node --expose-gc');
  const heap = (): number => {
    gc();
    gc();
    return process.memoryUsage().heapUsed;
  };
  // One held call first, so lazily created channels and consumers are not counted per call.
  const primer = driver.call(payload);
  await quiet();
  const before = heap();
  const pending: Array<Promise<unknown>> = new Array<Promise<unknown>>(calls);
  for (let i = 0; i < calls; i++) pending[i] = driver.call(payload);
  let released = false;
  void primer.then(
    () => (released = true),
    () => (released = true),
  );
  await quiet();
  await sleep(settleMs);
  const during = heap();
  if (released) throw new Error(`the server released its calls (after its ${holdMs} ms cap) before the memory sample`);
  await driver.call(releaseRequest);
  const replies = await Promise.allSettled([primer, ...pending]);
  const failed = replies.filter((reply) => reply.status === 'rejected').length;
  if (failed > 0) throw new Error(`${failed} of ${calls} held calls failed`);
  return { metrics: { [`${key}.perCall`]: (during - before) / calls }, caps: [] };
}

/**
 * A quiet event loop does not mean nothing is in transit: a burst of 10,000 requests may still sit
 * in the socket's buffer, and a library that asks for publisher confirms holds each request's
 * callback until the broker confirms it. Neither is memory a pending call keeps.
 */
const settleMs = 1000;

/** Resolves once three 20 ms sleeps in a row wake on time (nothing left to send), or after 10 s. */
async function quiet(): Promise<void> {
  const end = performance.now() + 10_000;
  for (let calm = 0; calm < 3 && performance.now() < end;) {
    const start = performance.now();
    await sleep(20);
    calm = performance.now() - start < 30 ? calm + 1 : 0;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
