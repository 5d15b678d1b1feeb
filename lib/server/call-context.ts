import { AsyncLocalStorage } from 'node:async_hooks';
import type { Delivery } from '../amqp/port.js';

/** What a running function can learn about the request it serves (see {@link currentCall}). */
export interface CallContext {
  /** The method path, e.g. `'my_instance.adder_function'`. */
  readonly method: string;
  /** True when the broker delivered this request before (its previous server died mid-call). */
  readonly redelivered: boolean;
  /**
   * When the caller gives up, in epoch milliseconds of this server's clock: arrival plus the
   * request's AMQP `expiration` (the caller's remaining time, so clock skew between hosts does not
   * matter), or else the deadline in the request's body; undefined when it sent neither.
   */
  readonly deadline: number | undefined;
}

/** The request a function runs for, set around each call the server makes. @internal */
export const callContext = new AsyncLocalStorage<CallContext>();

/** Inside a function run by a QAMServer: the request being served; elsewhere undefined. */
export function currentCall(): CallContext | undefined {
  return callContext.getStore();
}

/**
 * The caller's deadline in this server's clock. A qam request carries its caller's remaining time
 * as its AMQP `expiration`, and the broker delivers it only before that runs out, so arrival plus
 * the expiration is never earlier than the real deadline, whatever the two hosts' clocks say (a
 * server whose clock runs ahead must not skip calls their callers still wait for). The deadline in
 * the body, in the caller's clock, serves requests without an expiration.
 * @internal
 */
export function callerDeadline(message: Delivery, bodyDeadline: number | undefined): number | undefined {
  const expiration: unknown = message.properties.expiration;
  const remaining = typeof expiration === 'string' && /^\d{1,10}$/.test(expiration) ? Number(expiration) : undefined;
  return remaining === undefined ? bodyDeadline : Date.now() + remaining;
}
