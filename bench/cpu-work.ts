/**
 * The CPU-bound function of the worker-pool scenario: a fixed amount of pure JavaScript work. It
 * lives in its own module so a worker-thread pool can load it by path (dist/bench/cpu-work.js).
 */

/** xorshift rounds per call: about 4-5 ms on one core of the reference machine. */
export const cpuIterations = 2_000_000;

/** Kept, so the work cannot be optimised away. */
export let sink = 0;

/** The CPU server's handler, on the main thread or a worker thread: burn, then echo. */
export function cpuBoundEcho(value: unknown): unknown {
  sink ^= cpuWork(cpuIterations);
  return value;
}

export function cpuWork(iterations: number): number {
  let x = 0x9e3779b9 | 0;
  for (let i = 0; i < iterations; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
  }
  return x;
}
