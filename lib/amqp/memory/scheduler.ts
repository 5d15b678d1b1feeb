/**
 * The embedded broker's event loop. Nothing the broker tells a client (a delivery, a confirm, a
 * returned message, a cancel, a close) happens inside the call that caused it: it waits for the
 * next pass, as a frame waits for the socket. A pass first flushes what channels and connections
 * have to tell, then dispatches queues that have messages and consumers.
 *
 * Passes run on `setImmediate` from `node:timers`, which test fake timers do not replace: the
 * broker keeps delivering while a test fakes time (its clocks, message TTL and `x-expires`, use the
 * global `Date` and `setTimeout`, so fake timers do drive those).
 * @internal
 */
import { setImmediate } from 'node:timers';

/** Something with events to tell its client (a channel, a connection). */
export interface Flushable {
  flush(): void;
}

/** A queue with messages to hand to consumers. */
export interface Dispatchable {
  dispatch(): void;
}

export class Scheduler {
  #flushables: Flushable[] = [];
  #dispatchables: Dispatchable[] = [];
  #scheduled = false;

  /** Flushes `flushable` in the next pass; the caller makes sure it is queued once. */
  flush(flushable: Flushable): void {
    this.#flushables.push(flushable);
    this.#wake();
  }

  /** Dispatches `dispatchable` in the next pass; the caller makes sure it is queued once. */
  dispatch(dispatchable: Dispatchable): void {
    this.#dispatchables.push(dispatchable);
    this.#wake();
  }

  #wake(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(this.#pass);
  }

  readonly #pass = (): void => {
    this.#scheduled = false;
    const flushables = this.#flushables;
    this.#flushables = [];
    for (const flushable of flushables) flushable.flush();
    const dispatchables = this.#dispatchables;
    this.#dispatchables = [];
    for (const dispatchable of dispatchables) dispatchable.dispatch();
  };
}

/**
 * Runs a client's handler. A handler that throws must not leave the broker half-way through a
 * pass, so its error is rethrown on its own turn of the event loop, as an uncaught exception, as
 * one thrown from an amqplib handler would be.
 */
export function invoke<A extends unknown[]>(handler: (...args: A) => void, ...args: A): void {
  try {
    handler(...args);
  } catch (error) {
    setImmediate(() => {
      throw error;
    });
  }
}
