/**
 * Type tests of registerWorkerFunction: compiled by `tsc --noEmit` in `npm test`, never run. Each
 * `@ts-expect-error` line must fail to compile, or the build fails.
 */
import { QAMProxy, QAMServer, type ServerApi } from '../../lib/index.js';

type CpuWork = typeof import('../fixtures/cpu-work.mjs');
const cpuWork = new URL('../fixtures/cpu-work.mjs', import.meta.url);

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function assertType<T extends true>(): T | undefined {
  return undefined;
}

export async function typedFromTheModule(): Promise<void> {
  const server = new QAMServer({ serverId: 'types' })
    .registerWorkerFunction<CpuWork, 'fib'>(cpuWork, 'fib')
    .registerWorkerFunction<CpuWork, 'add', 'sum'>(cpuWork, 'add', 'sum')
    .registerWorkerFunction(cpuWork.href, 'untyped');
  const proxy = new QAMProxy<ServerApi<typeof server>>({ serverId: 'types' });
  assertType<Equal<ReturnType<typeof proxy.fib>, Promise<number>>>();
  assertType<Equal<Parameters<typeof proxy.sum>, [x: number, y: number]>>();
  assertType<Equal<ReturnType<typeof proxy.untyped>, Promise<unknown>>>();

  // @ts-expect-error wrong argument type
  void proxy.fib('x');
  // @ts-expect-error registered as sum, not add
  void proxy.add(1, 2);
  // @ts-expect-error an export that is not a function
  server.registerWorkerFunction<CpuWork, 'notAFunction'>(cpuWork, 'notAFunction');
  // @ts-expect-error no such export
  server.registerWorkerFunction<CpuWork, 'nosuch'>(cpuWork, 'nosuch');
  // @ts-expect-error the export name must be the one in the type arguments
  server.registerWorkerFunction<CpuWork, 'fib'>(cpuWork, 'add');
  await proxy.close();
}
