/**
 * Type tests: compiled by `tsc --noEmit` in `npm test`, never run. Each `@ts-expect-error` line
 * must fail to compile, or the build fails.
 */
import { QAMProxy, QAMServer, type ServerApi } from '../../lib/index.js';

class Calculator {
  adder_function(a: number, b: number): number {
    return a + b;
  }
  async describe(name: string): Promise<{ name: string; size: number }> {
    return { name, size: name.length };
  }
  _hidden(): void {}
}

const api = {
  add: (x: number, y: number): number => x + y,
  greet: async (name: string): Promise<string> => `hello ${name}`,
  close: (): string => 'remote close',
  my_instance: new Calculator(),
};

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function assertType<T extends true>(): T | undefined {
  return undefined;
}

export async function typedFromAnObject(): Promise<void> {
  const proxy = new QAMProxy<typeof api>({ serverId: 'types' });
  const sum = proxy.add(1, 2);
  assertType<Equal<typeof sum, Promise<number>>>();
  assertType<Equal<ReturnType<typeof proxy.greet>, Promise<string>>>();
  const adder = proxy.my_instance.adder_function(2, 4);
  assertType<Equal<typeof adder, Promise<number>>>();
  assertType<Equal<Awaited<ReturnType<typeof proxy.my_instance.describe>>, { name: string; size: number }>>();

  // @ts-expect-error wrong argument type
  void proxy.add(1, 'x');
  // @ts-expect-error missing argument
  void proxy.add(1);
  // @ts-expect-error not registered
  void proxy.subtract(1, 2);
  // @ts-expect-error underscore names are never exposed
  void proxy.my_instance._hidden();
  // @ts-expect-error not a method of the instance
  void proxy.my_instance.nosuch();

  const uid = proxy
    .callback((result: number) => result)
    .setTimeout(10)
    .add(1, 2);
  assertType<Equal<typeof uid, string>>();
  const oneWay = proxy.noReply().setTimeout(5).my_instance.describe('x');
  assertType<Equal<typeof oneWay, Promise<void>>>();
  const oneWayProxy = proxy.noReply();
  assertType<Equal<ReturnType<typeof oneWayProxy.add>, Promise<void>>>();
  // @ts-expect-error noReply() checks arguments too
  void proxy.noReply().add(1, 'x');
  const viaInvoke = proxy.invoke('close');
  assertType<Equal<typeof viaInvoke, Promise<string>>>();
  const nested = proxy.invoke('my_instance.adder_function', 1, 2);
  assertType<Equal<typeof nested, Promise<number>>>();
  // @ts-expect-error invoke checks arguments too
  void proxy.invoke('my_instance.adder_function', 1, 'x');
  // @ts-expect-error invoke checks names too
  void proxy.invoke('nosuch');
  const closing: Promise<void> = proxy.close();
  await closing;
}

export async function typedFromChainedRegistration(): Promise<void> {
  const server = new QAMServer({ serverId: 'types' })
    .registerFunction((a: number, b: number) => a * b, 'multiply')
    .registerClass(new Calculator(), 'calc');
  type Api = ServerApi<typeof server>;
  const proxy = new QAMProxy<Api>({ serverId: 'types' });
  const product = proxy.multiply(2, 3);
  assertType<Equal<typeof product, Promise<number>>>();
  const sum = proxy.calc.adder_function(1, 2);
  assertType<Equal<typeof sum, Promise<number>>>();
  // @ts-expect-error wrong argument type
  void proxy.multiply('2', 3);
}

export async function untyped(): Promise<void> {
  const proxy = new QAMProxy({ serverId: 'types' });
  const anything: Promise<unknown> = proxy['whatever'](1, 'x', { deep: true });
  const nested: Promise<unknown> = proxy['my_instance']['adder_function'](2, 4);
  const uid: string = proxy
    .callback(() => undefined)
    .setTimeout(1)
    ['add'](1);
  const state: 0 | 1 | 2 = proxy.getCallbackState(uid);
  void [anything, nested, state];
}
