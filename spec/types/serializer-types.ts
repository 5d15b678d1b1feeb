/**
 * Type tests of what the serializer carries, callback mode and what a server never exposes:
 * compiled by `tsc --noEmit` in `npm test`, never run. Each `@ts-expect-error` line must fail to
 * compile, or the build fails.
 */
import { EventEmitter } from 'node:events';
import { QAMProxy, QAMServer, type ServerApi } from '../../lib/index.js';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function assertType<T extends true>(): T | undefined {
  return undefined;
}

class Store extends Map<string, number> {
  total(): number {
    return [...this.values()].reduce((a, b) => a + b, 0);
  }
}

class Bus extends EventEmitter {
  publish(topic: string): Date {
    return new Date(topic);
  }
}

const api = {
  now: (): Date => new Date(0),
  since: (when: Date): number => Date.now() - when.getTime(),
  tags: (): Set<string> => new Set(['a']),
  record: (): { at: Date; label: string; format: () => string } => ({ at: new Date(0), label: 'x', format: () => 'x' }),
  add: (a: number, b: number): number => a + b,
  big: (): bigint => 1n,
  store: new Store(),
  bus: new Bus(),
};
type Api = typeof api;

export async function jsonCarriesStrings(): Promise<void> {
  const proxy = new QAMProxy<Api>({ serverId: 'types' });
  // A Date result arrives as the string JSON makes of it.
  const now = await proxy.now();
  assertType<Equal<typeof now, string>>();
  // @ts-expect-error it is not a Date: d.getTime is not a function at run time
  void now.getTime();
  assertType<Equal<Awaited<ReturnType<typeof proxy.tags>>, Record<string, never>>>();
  // Objects keep their data; functions in them do not travel.
  assertType<Equal<Awaited<ReturnType<typeof proxy.record>>, { at: string; label: string }>>();
  assertType<Equal<Awaited<ReturnType<typeof proxy.big>>, never>>();
  // @ts-expect-error a Date parameter cannot be sent with JSON: the server would get a string
  void proxy.since(new Date());
  assertType<Equal<Awaited<ReturnType<typeof proxy.add>>, number>>();
  // The same through invoke.
  assertType<Equal<ReturnType<typeof proxy.invoke<'now'>>, Promise<string>>>();
  // @ts-expect-error invoke refuses the Date parameter too
  void proxy.invoke('since', new Date());
}

export async function superjsonKeepsRichTypes(): Promise<void> {
  // The serializer is the second type argument, checked against the option.
  const proxy = new QAMProxy<Api, 'superjson'>({ serverId: 'types', serializer: 'superjson' });
  const now = await proxy.now();
  assertType<Equal<typeof now, Date>>();
  assertType<Equal<Awaited<ReturnType<typeof proxy.tags>>, Set<string>>>();
  void proxy.since(new Date());
  // @ts-expect-error the option and the type argument must agree (TypeScript cannot infer one with the other given)
  new QAMProxy<Api>({ serverId: 'types', serializer: 'superjson' });
  // @ts-expect-error likewise
  new QAMProxy<Api, 'superjson'>({ serverId: 'types', serializer: 'json' });
}

export function callbackModeIsTyped(): void {
  const proxy = new QAMProxy<Api>({ serverId: 'types' });
  proxy.callback((sum: number) => sum.toFixed()).add(1, 2);
  proxy.callback((when: string) => when.toUpperCase()).now();
  // @ts-expect-error ok takes a string, add's result is a number
  proxy.callback((r: string) => r.toUpperCase()).add(1, 2);
  // @ts-expect-error with JSON, now() does not give ok a Date
  proxy.callback((when: Date) => when.getTime()).now();
  // An ok that takes anything takes every result; err gets an Error.
  proxy
    .callback(
      (result: unknown) => result,
      (error) => error.message,
    )
    .now();
  const uid: string = proxy
    .callback((sum: number) => sum)
    .setTimeout(1)
    .add(1, 2);
  void uid;
}

export function serverApiLeavesOutBuiltIns(): void {
  const server = new QAMServer({ serverId: 'types' }).registerClass(new Store(), 'store').registerClass(new Bus(), 'bus');
  const proxy = new QAMProxy<ServerApi<typeof server>>({ serverId: 'types' });
  void proxy.store.total();
  void proxy.bus.publish('x');
  // @ts-expect-error Map's own methods are never served
  void proxy.store.clear();
  // @ts-expect-error nor EventEmitter's
  void proxy.bus.emit('x');
}
