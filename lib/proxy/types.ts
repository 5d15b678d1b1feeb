import type { CallbackState, ErrorCallback, ResultCallback } from './pending.js';

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
  | 'invoke'
  | 'cancel'
  | 'getCallbackState'
  | 'getNumWaitingCallbacks'
  | 'withStartNotice'
  | 'getRemoteState'
  | 'startedBy'
  | 'getStats'
  | 'close';

type Completed<F, Mode extends CallMode> = F extends (...args: infer A) => infer R
  ? (...args: A) => Mode extends 'callback' ? string : Mode extends 'noReply' ? Promise<void> : Promise<Awaited<R>>
  : never;

type MethodNames<T> = {
  [K in keyof T]: K extends HiddenName ? never : K extends string ? (T[K] extends AnyFunction ? K : never) : never;
}[keyof T];

type RemoteInstance<T, Mode extends CallMode> = { readonly [K in MethodNames<T>]: Completed<T[K], Mode> };

/** The remote side of an API: every function returns a promise (or a uid in callback mode). */
export type RemoteApi<Api, Mode extends CallMode = 'promise'> = {
  readonly [K in keyof Api as K extends HiddenName | ControlName ? never : K extends string ? K : never]: Api[K] extends AnyFunction
    ? Completed<Api[K], Mode>
    : RemoteInstance<Api[K], Mode>;
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
}

/** The proxy's own methods, at its top level. */
export interface ProxyControls<Api, Mode extends CallMode> {
  /**
   * A proxy whose calls return a uid at once and end by calling `ok(result)` or `err(error)`,
   * exactly once (QAM's asynchronous mode). Without `err`, failures are logged.
   */
  callback(ok: ResultCallback, err?: ErrorCallback): QAMProxy<Api, 'callback'>;
  /** A proxy whose calls time out after `seconds` (fractions allowed) with QAMTimeoutException. */
  setTimeout(seconds: number): QAMProxy<Api, Mode>;
  /** A proxy whose calls are cancelled when `signal` aborts (rejecting with QAMAbortException). */
  withSignal(signal: AbortSignal): QAMProxy<Api, Mode>;
  /**
   * A proxy whose calls are sent again, up to `times` more times, after a timeout or a lost
   * connection (Postage's `_max_retry`). Only for idempotent functions: the server may run such a
   * call more than once, and the first reply to any attempt answers it.
   */
  retry(times: number): QAMProxy<Api, Mode>;
  /**
   * A proxy whose calls expect no reply (fire and forget): each resolves, with nothing, once the
   * broker confirmed its request (NO_ROUTE and PUBLISH_FAILED as for any call), and the server
   * runs the function and publishes nothing back. The request has no expiration: it waits in the
   * server's queue until a server takes it. `retry()` does not apply. Native protocol only.
   */
  noReply(): QAMProxy<Api, 'noReply'>;
  /** Calls `method` (`'name'` or `'instance.method'`) explicitly: for names that collide with a control. */
  invoke<P extends MethodPath<Api>>(
    method: P,
    ...params: Parameters<Extract<FunctionAt<Api, P>, AnyFunction>>
  ): ReturnType<Completed<FunctionAt<Api, P>, Mode>>;
  /** Cancels the call with this uid; its `err` (or rejection) gets QAMAbortException. False if it already ended. */
  cancel(uid: string): boolean;
  /** QAM's state of a callback call: 0 waiting, 1 running `ok`/`err`, 2 finished (also for unknown uids). */
  getCallbackState(uid: string): CallbackState;
  /** Callback calls not finished yet. */
  getNumWaitingCallbacks(): number;
  /**
   * A proxy whose calls ask the server for a "started" notice: when a worker of a server instance
   * takes the request, that instance tells the caller (on the reply path, before the reply), and
   * `onStarted(uid, instanceId)` runs; {@link getRemoteState} and {@link startedBy} then say so.
   * Calls of other proxies ask for nothing and cost nothing more. Native protocol only (a TypeError
   * with `protocol: 'qam'`); a server older than this library sends no notice.
   */
  withStartNotice(onStarted?: (uid: string, instanceId: string) => unknown): QAMProxy<Api, Mode>;
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
  /** Rejects every waiting call with QAMClosedException and closes the proxy's channel (and connection, if it owns it). */
  close(): Promise<void>;
}

/** An API nobody described: any name is callable and returns `Promise<any>`. */
export interface UntypedApi {
  [name: string]: any;
}

/** A proxy of `Api` (untyped by default: any name is callable). */
export type QAMProxy<Api = UntypedApi, Mode extends CallMode = 'promise'> = ProxyControls<Api, Mode> &
  (string extends keyof Api ? { readonly [name: string]: any } : RemoteApi<Api, Mode>);
