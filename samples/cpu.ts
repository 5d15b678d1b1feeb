/**
 * CPU-bound work for samples/server.ts, which runs it on worker threads: a module of its own,
 * because each thread imports the module by its file, compiled to dist/samples/cpu.js.
 */

/** The n-th Fibonacci number, computed the slow way on purpose: a stand-in for CPU-bound work. */
export function fib(n: number): number {
  return n < 2 ? n : fib(n - 1) + fib(n - 2);
}
