import type { Delivery } from '../amqp/port.js';
import type { CallOutcome, IncomingCall } from '../protocols/native/server.js';

/**
 * A server's at-most-once window (see `QAMServerOptions.dedupe`): how long, and how many, finished
 * calls' outcomes are kept to answer a request that comes again under the same uid.
 */
export interface DedupeOptions {
  /** Seconds a finished call's outcome is kept, counted from the moment it finished. @default 300 */
  window?: number;
  /** Finished calls kept at most; past it, the one that finished first is forgotten first. @default 10000 */
  maxEntries?: number;
}

/** @internal */
export const dedupeDefaults = { window: 300, maxEntries: 10_000 } as const;

/** What a server knows of a call it is handed again: nothing, that it runs, or how it ended. @internal */
export type Seen = { state: 'new' } | { state: 'running' } | { state: 'finished'; outcome: CallOutcome };

/** Told how the call it waits for ended: its outcome, or undefined when it ended without running (it is then run anew). */
type Waiter = (outcome: CallOutcome | undefined) => void;

/**
 * The calls a server ran, by key (see {@link dedupeKey}): those running, with the duplicates that
 * wait for them, and the outcomes of those that finished within the window. Running calls are
 * bounded by the prefetch (a duplicate stays unacknowledged until answered); finished ones by
 * `maxEntries` and the window, pruned as calls come and go, without a timer.
 * @internal
 */
export class CallMemory {
  readonly #windowMs: number;
  readonly #maxEntries: number;
  readonly #running = new Map<string, Waiter[]>();
  /** In the order they finished, which is the order they expire in. */
  readonly #finished = new Map<string, { outcome: CallOutcome; until: number }>();

  constructor(options: DedupeOptions) {
    this.#windowMs = (options.window ?? dedupeDefaults.window) * 1000;
    this.#maxEntries = options.maxEntries ?? dedupeDefaults.maxEntries;
  }

  /** Finished calls remembered now. */
  get size(): number {
    return this.#finished.size;
  }

  /** What is known of the call `key`; a new one is recorded as running until {@link end}. */
  admit(key: string, now: number): Seen {
    this.#prune(now);
    const finished = this.#finished.get(key);
    if (finished !== undefined) return { state: 'finished', outcome: finished.outcome };
    if (this.#running.has(key)) return { state: 'running' };
    this.#running.set(key, []);
    return { state: 'new' };
  }

  /** Has `waiter` told how the running call `key` ends. */
  attach(key: string, waiter: Waiter): void {
    const waiters = this.#running.get(key);
    if (waiters === undefined) waiter(undefined);
    else waiters.push(waiter);
  }

  /** The call `key` ended: with the outcome its function gave, or undefined when it was not run (its caller's deadline had passed). */
  end(key: string, outcome: CallOutcome | undefined, now: number): void {
    const waiters = this.#running.get(key) ?? [];
    this.#running.delete(key);
    if (outcome !== undefined) {
      this.#finished.set(key, { outcome, until: now + this.#windowMs });
      if (this.#finished.size > this.#maxEntries) {
        const oldest = this.#finished.keys().next();
        if (oldest.done !== true) this.#finished.delete(oldest.value);
      }
    }
    for (const waiter of waiters) waiter(outcome);
  }

  #prune(now: number): void {
    for (const [key, { until }] of this.#finished) {
      if (until > now) return;
      this.#finished.delete(key);
    }
  }
}

/**
 * What makes two requests one call: the uid, under the protocol, the verified publishing user
 * (AMQP `user_id`), the method and, for QAM's format (whose ids are unique per proxy only), the
 * proxy's reply routing key. Never the reply address: a proxy that reconnected retries from a new one.
 * @internal
 */
export function dedupeKey(protocol: string, message: Delivery, call: IncomingCall & { id: string }): string {
  const { userId } = message.properties;
  return JSON.stringify([protocol, typeof userId === 'string' ? userId : null, call.caller ?? null, call.method, call.id]);
}
