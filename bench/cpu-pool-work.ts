/**
 * The CPU-bound function of bench/cpu-pool.ts, in a module of its own because each worker thread
 * imports it by file (dist/bench/cpu-pool-work.js).
 */

/** The n-th Fibonacci number, computed the slow way on purpose: n = 30 takes about 15 ms on one core. */
export function fib(n: number): number {
  return n < 2 ? n : fib(n - 1) + fib(n - 2);
}
