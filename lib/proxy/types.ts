import type { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import type { SerializerName } from '../serializers.js';
import type { CallbackState, ErrorCallback } from './pending.js';
import type { MethodStats } from '../metrics.js';
import type { ServerDescription } from '../server/dispatch.js';

/**
 * The types a proxy derives from the server's registrations: `import type` the API (an object of
 * functions and instances, or `ServerApi<typeof server>`) and `new QAMProxy<Api>(…)` checks every
 * call at compile time.
 */

type AnyFunction = (...args: any[]) => any;

/** Names a server never exposes and a proxy never sends. */
type HiddenName = `_${string}` | 'constructor';

/**
 * How calls of a proxy complete: awaited promises, QAM's callbacks returning a uid, or promises
 * of nothing that resolve once the broker took the request (`noReply()`).
 */
export type CallMode = 'promise' | 'callback' | 'noReply';

/** The names a proxy keeps for itself at its top level; reach remote functions so named with `invoke`. */
export type ControlName =
  | 'callback'
  | 'setTimeout'
  | 'withSignal'
  | 'retry'
  | 'noReply'
  | 'withHeaders'
  | 'invoke'
  | 'cancel'
  | 'getCallbackState'
  | 'getNumWaitingCallbacks'
  | 'withStartNotice'
  | 'getRemoteState'
  | 'startedBy'
  | 'useServer'
  | 'use_server'
  | 'set_timeout'
  | 'get_callback_state'
  | 'get_num_waiting_callbacks'
  | 'getStats'
  | 'getRemoteMethods'
  | 'close';

/**
 * What a value of type `T` becomes through the `'json'` serializer (`JSON.stringify`, then
 * `JSON.parse`): a `Date` (anything with `toJSON`) the string it gives, a `Map` or `Set` an empty
 * object, functions and symbols in objects dropped, `undefined` in arrays `null`; a `bigint` cannot
 * be sent (`never`).
 */
export type JsonCarried<T> = 0 extends 1 & T
  ? any
  : T extends { toJSON(...args: any[]): infer J }
    ? JsonCarried<J>
    : T extends string | number | boolean | null | undefined
      ? T
      : T extends bigint | symbol | AnyFunction
        ? never
        : T extends ReadonlyMap<any, any> | ReadonlySet<any> | WeakMap<any, any> | WeakSet<any>
          ? Record<string, never>
          : T extends readonly unknown[]
            ? { [I in keyof T]: T[I] extends undefined | AnyFunction | symbol ? null : JsonCarried<T[I]> }
            : T extends object
              ? { [K in keyof T as K extends string ? (T[K] extends AnyFunction | symbol ? never : K) : never]: JsonCarried<T[K]> }
              : T;

/** What a result of type `R` arrives as through serializer `S`: rich types stay with `'superjson'`. */
export type Carried<R, S extends SerializerName> = S extends 'superjson' ? R : JsonCarried<R>;

/**
 * The type a parameter takes when JSON cannot carry the server's parameter type (a `Date`, a `Map`,
 * a `bigint`): no value has it, so such a call does not compile. Use the `'superjson'` serializer.
 */
export interface NotCarriedByJson<T> {
  readonly 'needs the superjson serializer: JSON cannot carry this parameter': T;
}

/** The parameters a call sends through serializer `S`: with `'json'`, only those JSON carries as they are. */
export type Sent<A extends unknown[], S extends SerializerName> = S extends 'superjson'
  ? A
  : { [I in keyof A]: JsonCarried<A[I]> extends A[I] ? A[I] : NotCarriedByJson<A[I]> };

/**
 * The type of a method in callback mode whose result `ok` cannot take: not callable, so the call
 * does not compile.
 */
export interface ResultNotAccepted<R> {
  readonly 'the ok callback does not take this result': R;
}

type Completed<F, Mode extends CallMode, S extends SerializerName = 'json', Expected = any> = F extends (...args: infer A) => infer R
  ? Mode extends 'callback'
    ? [Carried<Awaited<R>, S>] extends [Expected]
      ? (...args: Sent<A, S>) => string
      : ResultNotAccepted<Carried<Awaited<R>, S>>
    : (...args: Sent<A, S>) => Mode extends 'noReply' ? Promise<void> : Promise<Carried<Awaited<R>, S>>
  : never;

/**
 * Members a server never exposes on an instance: those of the built-in classes it extends (a
 * `class Store extends Map` does not serve `clear`), and `Object`'s.
 */
type BuiltInKeys<T> =
  | keyof object
  | 'toString'
  | 'toLocaleString'
  | 'valueOf'
  | 'hasOwnProperty'
  | 'isPrototypeOf'
  | 'propertyIsEnumerable'
  | (T extends ReadonlyMap<any, any> ? keyof Map<any, any> : never)
  | (T extends ReadonlySet<any> ? keyof Set<any> : never)
  | (T extends readonly unknown[] ? keyof unknown[] : never)
  | (T extends PromiseLike<any> ? keyof Promise<any> : never)
  | (T extends Error ? keyof Error : never)
  | (T extends Duplex ? keyof Duplex : T extends EventEmitter ? keyof EventEmitter : never);

type MethodNames<T> = {
  [K in keyof T]: K extends HiddenName | BuiltInKeys<T> ? never : K extends string ? (T[K] extends AnyFunction ? K : never) : never;
}[keyof T];

type RemoteInstance<T, Mode extends CallMode, S extends SerializerName, Expected> = {
  readonly [K in MethodNames<T>]: Completed<T[K], Mode, S, Expected>;
};

/**
 * The remote side of an API: every function returns a promise (or a uid in callback mode) of its
 * result as serializer `S` carries it.
 */
export type RemoteApi<Api, Mode extends CallMode = 'promise', S extends SerializerName = 'json', Expected = any> = {
  readonly [K in keyof Api as K extends HiddenName | ControlName ? never : K extends string ? K : never]: Api[K] extends AnyFunction
    ? Completed<Api[K], Mode, S, Expected>
    : RemoteInstance<Api[K], Mode, S, Expected>;
};

/** Every callable path of an API: `function` or `instance.method`. */
export type MethodPath<Api> = {
  [K in keyof Api & string]: K extends HiddenName ? never : Api[K] extends AnyFunction ? K : `${K}.${MethodNames<Api[K]> & string}`;
}[keyof Api & string];

type FunctionAt<Api, P> = P extends `${infer I}.${infer M}`
  ? I extends keyof Api
    ? M extends keyof Api[I]
      ? Api[I][M]
      : never
    : never
  : P extends keyof Api
    ? Api[P]
    : never;

/** Counters of a proxy. */
export interface QAMProxyStats {
  /** Calls waiting for their reply. */
  pending: number;
  /** Replies that matched no waiting call (they came after a timeout or cancel) and were dropped. */
  droppedReplies: number;
  /** Calls that ended, by method: count, errors by code, latency histogram (from the call to its end). */
  methods: Record<string, MethodStats>;
}

/** The proxy's own methods, at its top level. */
export interface ProxyControls<Api, Mode extends CallMode, S extends SerializerName = 'json', Expected = any> {
  /**
   * A proxy whose calls return a uid at once and end by calling `ok(result)` or `err(error)`,
   * exactly once (QAM's asynchronous mode). Without `err`, failures are logged. Only methods
   * whose result `ok` takes can be called through it.
   */
  callback<R = any>(ok: (result: R) => unknown, err?: ErrorCallback): QAMProxy<Api, 'callback', S, R>;
  /** A proxy whose calls time out after `seconds` (fractions allowed) with QAMTimeoutException. */
  setTimeout(seconds: number): QAMProxy<Api, Mode, S, Expected>;
  /** QAM's name of {@link setTimeout}. */
  set_timeout(seconds: number): QAMProxy<Api, Mode, S, Expected>;
  /**
   * A proxy for the server `serverId` on the same connection and reply consumer (callme's
   * `use_server`), keeping this proxy's timeout, retries, signal, callbacks and notices. Give the
   * other server's API as the type argument. Native protocol only (a TypeError with `protocol: 'qam'`).
   * @example const billing = proxy.useServer<BillingApi>('billing');
   */
  useServer<OtherApi = UntypedApi>(serverId: string): QAMProxy<OtherApi, Mode, S>;
  /** callme's name of {@link useServer}. */
  use_server<OtherApi = UntypedApi>(serverId: string): QAMProxy<OtherApi, Mode, S>;
  /** A proxy whose calls are cancelled when `signal` aborts (rejecting with QAMAbortException). */
  withSignal(signal: AbortSignal): QAMProxy<Api, Mode, S, Expected>;
  /**
   * A proxy whose calls are sent again, up to `times` more times, after a timeout or a lost
   * connection (Postage's `_max_retry`). Only for idempotent functions: the server may run such a
   * call more than once, and the first reply to any attempt answers it.
   */
  retry(times: number): QAMProxy<Api, Mode, S, Expected>;
  /**
   * A proxy whose calls expect no reply (fire and forget): each resolves, with nothing, once the
   * broker confirmed its request (NO_ROUTE and PUBLISH_FAILED as for any call), and the server
   * runs the function and publishes nothing back. The request has no expiration: it waits in the
   * server's queue until a server takes it. `retry()` does not apply. Native protocol only.
   */
  noReply(): QAMProxy<Api, 'noReply', S>;
  /**
   * A proxy whose calls carry these AMQP headers (added to those set before), which the server
   * reads in `currentCall().headers`: string values; names starting with `x-qam-` (qam's own) are
   * a TypeError. Headers are what the caller claims: authorize by `currentCall().userId`.
   * @example proxy.withHeaders({ tenant: 'acme', 'request-id': id }).add(1, 2)
   */
  withHeaders(headers: Readonly<Record<string, string>>): QAMProxy<Api, Mode, S>;
  /** Calls `method` (`'name'` or `'instance.method'`) explicitly: for names that collide with a control. */
  invoke<P extends MethodPath<Api>>(
    method: P,
    ...params: Sent<Parameters<Extract<FunctionAt<Api, P>, AnyFunction>>, S> & unknown[]
  ): ReturnType<Extract<Completed<FunctionAt<Api, P>, Mode, S, Expected>, AnyFunction>>;
  /** Cancels the call with this uid; its `err` (or rejection) gets QAMAbortException. False if it already ended. */
  cancel(uid: string): boolean;
  /** QAM's state of a callback call: 0 waiting, 1 running `ok`/`err`, 2 finished (also for unknown uids). */
  getCallbackState(uid: string): CallbackState;
  /** QAM's name of {@link getCallbackState}. */
  get_callback_state(uid: string): CallbackState;
  /** Callback calls not finished yet. */
  getNumWaitingCallbacks(): number;
  /** QAM's name of {@link getNumWaitingCallbacks}. */
  get_num_waiting_callbacks(): number;
  /**
   * A proxy whose calls ask the server for a "started" notice: when a worker of a server instance
   * takes the request, that instance tells the caller (on the reply path, before the reply), and
   * `onStarted(uid, instanceId)` runs; {@link getRemoteState} and {@link startedBy} then say so.
   * Calls of other proxies ask for nothing and cost nothing more. Native protocol only (a TypeError
   * with `protocol: 'qam'`); a server older than this library sends no notice.
   */
  withStartNotice(onStarted?: (uid: string, instanceId: string) => unknown): QAMProxy<Api, Mode, S, Expected>;
  /**
   * Where a call that asked for a started notice is, as the server's own
   * `server.getCallbackState(uid)` would say: 0 sent and not started yet (in the broker's queue, or
   * waiting for a worker), 1 started by a server instance (its function runs), 2 finished, or an
   * unknown uid. A call that did not ask stays 0 until it ends.
   */
  getRemoteState(uid: string): CallbackState;
  /** The id of the server instance whose started notice named this waiting call (`server.instanceId`); undefined before. */
  startedBy(uid: string): string | undefined;
  getStats(): QAMProxyStats;
  /**
   * Asks the server which methods it serves (introspection): its id, the instance that answered,
   * and each method's path, parameter count (the function's declared parameters; absent when
   * unknown) and description (given at registration). Rejects with QAMMethodNotFoundException when
   * the server does not answer introspection (it predates it, or its option `introspection` is
   * false; a server of wire 2 before it answers BAD_MESSAGE). Uses the proxy's timeout and signal.
   * Native protocol only (QAMInvalidCallException with `protocol: 'qam'`).
   * @example const { methods } = await proxy.getRemoteMethods();
   */
  getRemoteMethods(): Promise<ServerDescription>;
  /** Rejects every waiting call with QAMClosedException and closes the proxy's channel (and connection, if it owns it). */
  close(): Promise<void>;
}

/** An API nobody described: any name is callable and returns `Promise<any>`. */
export interface UntypedApi {
  [name: string]: any;
}

/**
 * A proxy of `Api` (untyped by default: any name is callable) whose requests use serializer `S`;
 * in callback mode, `Expected` is what its `ok` takes.
 */
export type QAMProxy<
  Api = UntypedApi,
  Mode extends CallMode = 'promise',
  S extends SerializerName = 'json',
  Expected = any,
> = ProxyControls<Api, Mode, S, Expected> &
  (string extends keyof Api ? { readonly [name: string]: any } : RemoteApi<Api, Mode, S, Expected>);
