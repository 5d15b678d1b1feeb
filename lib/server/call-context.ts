import { AsyncLocalStorage } from 'node:async_hooks';
import type { Delivery } from '../amqp/port.js';
import { readFingerprint, type Fingerprint } from '../fingerprint.js';
import { fingerprintHeader, reservedHeaderPrefix } from '../protocols/native/wire.js';
import { QAMAbortException, QAMTimeoutException } from '../errors.js';
import { isThenable } from '../util/thenable.js';
import type { Target } from './dispatch.js';

/** What a running function (and middleware) can learn about the request it serves (see {@link currentCall}). */
export interface CallContext {
  /** The method path, e.g. `'my_instance.adder_function'`. */
  readonly method: string;
  /**
   * The params as they arrived, the array the function is called with: middleware may replace its
   * elements. A params schema's output replaces them for the function only.
   */
  readonly params: unknown[];
  /** True when the broker delivered this request before (its previous server died mid-call). */
  readonly redelivered: boolean;
  /**
   * When the caller gives up, in epoch milliseconds of this server's clock: arrival plus the
   * request's AMQP `expiration` (the caller's remaining time, so clock skew between hosts does not
   * matter), earlier by as long as the request took on its way when an earlier request of the
   * same caller tells how far the two clocks differ; or else the deadline in the request's body;
   * undefined when it sent neither.
   */
  readonly deadline: number | undefined;
  /**
   * The broker user that published the request: the AMQP `user_id` property, which RabbitMQ
   * refuses to route when it differs from the user the publisher's connection authenticated as, so
   * it can be trusted for authorization (unless that user has RabbitMQ's `impersonator` tag).
   * Proxies set it to their connection's user; undefined when the request carried none (a Python
   * QAM proxy, a proxy with `userId: false`).
   */
  readonly userId: string | undefined;
  /**
   * The caller's fingerprint (name, type, pid, host, user, vhost, library, version), as the caller
   * claims it: never verified identity (that is `userId`). Undefined when the request carried none
   * (a wire-1 or QAM-format caller). Read from the request's `x-qam-fingerprint` header when first
   * asked for.
   */
  readonly fingerprint: Fingerprint | undefined;
  /**
   * The headers the caller sent (`proxy.withHeaders()`, and `traceparent`/`tracestate` when it
   * traces), string values only, without qam's own (`x-qam-…`). What the caller claims: for
   * authorization, use {@link userId}.
   */
  readonly headers: Readonly<Record<string, string>>;
  /**
   * Aborts when the caller's {@link deadline} passes (its reason a QAMTimeoutException), or when the
   * caller cancels a call that asked for a started notice (`proxy.withStartNotice()`; its reason a
   * QAMAbortException): nobody waits for the result any more, so long work may stop. Without a
   * deadline and a notice, it never aborts.
   * @example await fetch(url, { signal: currentCall()?.signal })
   */
  readonly signal: AbortSignal;
}

/**
 * The call a server runs. Anything that costs is computed when first asked for, so a function
 * that asks nothing costs nothing more.
 * @internal
 */
export class ServedCall implements CallContext {
  readonly method: string;
  readonly params: unknown[];
  readonly redelivered: boolean;
  readonly deadline: number | undefined;
  readonly #message: Delivery;
  #headers: Readonly<Record<string, string>> | undefined;
  #controller: AbortController | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(message: Delivery, method: string, params: unknown[], deadline: number | undefined) {
    this.method = method;
    this.params = params;
    this.redelivered = message.redelivered;
    this.deadline = deadline;
    this.#message = message;
  }

  get userId(): string | undefined {
    const userId: unknown = this.#message.properties.userId;
    return typeof userId === 'string' ? userId : undefined;
  }

  get fingerprint(): Fingerprint | undefined {
    const headers: unknown = this.#message.properties.headers;
    if (typeof headers !== 'object' || headers === null || !Object.prototype.hasOwnProperty.call(headers, fingerprintHeader))
      return undefined;
    return readFingerprint((headers as Record<string, unknown>)[fingerprintHeader]);
  }

  get headers(): Readonly<Record<string, string>> {
    this.#headers ??= userHeaders(this.#message.properties.headers);
    return this.#headers;
  }

  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      const controller = new AbortController();
      this.#controller = controller;
      const deadline = this.deadline;
      if (deadline !== undefined) {
        const expire = (): void => controller.abort(new QAMTimeoutException(`The caller of ${this.method} gave up: its deadline passed`));
        const remaining = deadline - Date.now();
        if (remaining <= 0) expire();
        else {
          this.#timer = setTimeout(expire, Math.min(remaining, maxTimerMs));
          this.#timer.unref();
        }
      }
    }
    return this.#controller.signal;
  }

  /** The caller cancelled the call: its signal aborts, unless it did already. @internal */
  cancel(): void {
    const signal = this.signal;
    if (!signal.aborted) this.#controller?.abort(new QAMAbortException(`The caller of ${this.method} cancelled it`));
    this.finish();
  }

  /** The call ended: its signal no longer aborts. @internal */
  finish(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
  }
}

/** Node timers take whole milliseconds below 2^31. */
const maxTimerMs = 2 ** 31 - 1;

const noHeaders: Readonly<Record<string, string>> = Object.freeze({});

/** The caller's own headers: string values (Buffers decoded), not under qam's reserved prefix. */
function userHeaders(headers: unknown): Readonly<Record<string, string>> {
  if (typeof headers !== 'object' || headers === null) return noHeaders;
  const found: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (name.toLowerCase().startsWith(reservedHeaderPrefix)) continue;
    if (typeof value === 'string') found[name] = value;
    else if (Buffer.isBuffer(value)) found[name] = value.toString('utf8');
  }
  return Object.freeze(found);
}

/** The request a function runs for, set around each call the server makes. @internal */
export const callContext = new AsyncLocalStorage<CallContext>();

/** Inside a function run by a QAMServer, or its middleware: the request being served; elsewhere undefined. */
export function currentCall(): CallContext | undefined {
  return callContext.getStore();
}

/**
 * Server middleware: runs around every call of a registered function, in the order added with
 * `server.use()`, the first outermost. `next()` runs the rest of the chain and the function and
 * resolves with the result (or rejects with what it threw); what the middleware returns (or
 * resolves with) is the call's result, and what it throws the call's error, so a middleware may
 * refuse a call by throwing before calling `next()`. `currentCall()` works inside it too.
 *
 * @example
 * server.use(async (call, next) => {
 *   if (call.userId !== 'billing') throw Object.assign(new Error('not allowed'), { code: 'FORBIDDEN' });
 *   return next();
 * });
 */
export type Middleware = (call: CallContext, next: () => Promise<unknown>) => unknown;

/** Runs the function of a call with its validated params. @internal */
export function invoke(target: Target, call: CallContext): unknown {
  if (target.validate === undefined) return target.fn.apply(target.thisArg, call.params);
  const params = target.validate(call.method, call.params);
  return isThenable(params) ? params.then((valid) => target.fn.apply(target.thisArg, valid)) : target.fn.apply(target.thisArg, params);
}

/** Runs a call in its context: its function alone, or through the middleware. @internal */
export function runCall(call: CallContext, target: Target, middleware: readonly Middleware[]): unknown {
  return middleware.length === 0 ? callContext.run(call, invoke, target, call) : callContext.run(call, chain, middleware, target, call);
}

function chain(middleware: readonly Middleware[], target: Target, call: CallContext): Promise<unknown> {
  const step = (index: number): Promise<unknown> => {
    const layer = middleware[index];
    if (layer === undefined) return new Promise((resolve) => resolve(invoke(target, call)));
    let called = false;
    const next = (): Promise<unknown> => {
      if (called) return Promise.reject(new Error(`next() called twice by middleware ${index + 1} of ${call.method}`));
      called = true;
      return step(index + 1);
    };
    return new Promise((resolve) => resolve(layer(call, next)));
  };
  return step(0);
}

/** A request's AMQP `expiration` in milliseconds, when it has a valid one. @internal */
export function expirationMs(message: Delivery): number | undefined {
  const expiration: unknown = message.properties.expiration;
  return typeof expiration === 'string' && /^\d{1,10}$/.test(expiration) ? Number(expiration) : undefined;
}
