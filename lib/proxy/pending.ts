import { Deadlines, now } from './deadlines.js';
import { QAMAbortException, QAMException, QAMRemoteException, QAMTimeoutException, describeError } from '../errors.js';
import type { Logger } from '../logger.js';
import { isThenable } from '../util/thenable.js';

/** QAM's callback states. */
export const CallbackState = { waiting: 0, processing: 1, finished: 2 } as const;
export type CallbackState = (typeof CallbackState)[keyof typeof CallbackState];

/** Receives the result or the error of a callback-mode call; may return a promise. */
export type ResultCallback = (result: any) => unknown;
export type ErrorCallback = (error: Error) => unknown;

/** How a call ends: a promise to settle, or QAM's callbacks to run. */
export type Completion =
  | { kind: 'promise'; resolve: (value: unknown) => void; reject: (error: Error) => void }
  | { kind: 'callback'; ok: ResultCallback; err: ErrorCallback | undefined };

/**
 * Sends a call again with a new deadline (epoch ms), under the same id: any reply to any attempt
 * answers it, which is right for the idempotent functions retries are for.
 */
export type Resend = (deadline: number) => void;

/** Told of every call that ended (not of a retry), after it left the table, with its method, outcome and observation. */
export type Ended = (id: string, method: string, outcome: Error | { value: unknown }, observation: unknown) => void;

/** The failures a retry may recover from: the request or its reply may simply have been lost. */
const retryableCodes: ReadonlySet<string> = new Set(['TIMEOUT', 'CONNECTION_LOST']);

interface Entry {
  readonly method: string;
  readonly timeoutMs: number;
  /** Monotonic ms (see {@link now}). */
  deadline: number;
  /** True for callback-mode calls: `onError` may then be absent (failures are logged). */
  readonly callback: boolean;
  readonly onValue: (value: any) => unknown;
  readonly onError: ((error: Error) => unknown) | undefined;
  detachSignal: (() => void) | undefined;
  retries: number;
  resend: Resend | undefined;
  /** What the owner keeps of the call for its metrics (undefined for none), given back when it ends. */
  readonly observation: unknown;
}

/**
 * The table of calls waiting for a reply. Reply, timeout, abort, returned message, failed publish,
 * connection loss and close all end a call through {@link settle}, which removes the entry and its
 * entry, so every call ends exactly once; a finished call keeps at most a slot in {@link Deadlines}
 * until it is compacted away.
 */
export class PendingCalls {
  readonly #entries = new Map<string, Entry>();
  readonly #running = new Set<string>();
  readonly #logger: Logger;
  readonly #onEnded: Ended | undefined;
  readonly #onBusy: ((busy: boolean) => void) | undefined;
  #callbacks = 0;
  #unknownReplies = 0;

  /**
   * @param onEnded told of every call that ended (not of a retry), after it left the table
   * @param onBusy told when the table gets its first call (true) and when its last call ends (false)
   */
  constructor(logger: Logger, onEnded?: Ended, onBusy?: (busy: boolean) => void) {
    this.#logger = logger;
    this.#onEnded = onEnded;
    this.#onBusy = onBusy;
  }

  /** Calls waiting for their reply. */
  get size(): number {
    return this.#entries.size;
  }

  /** Replies that matched no waiting call (late replies to timed-out or cancelled calls). */
  get unknownReplies(): number {
    return this.#unknownReplies;
  }

  /** Callback-mode calls not finished: waiting for a reply, or running `ok`/`err`. */
  get waitingCallbacks(): number {
    return this.#callbacks + this.#running.size;
  }

  /**
   * Registers a call; its timer starts now. An already aborted signal settles it at once. With
   * `retry`, a timeout or a lost connection sends the call again (up to `times` more times, each
   * with a fresh timeout) instead of ending it.
   */
  add(
    id: string,
    method: string,
    timeoutMs: number,
    completion: Completion,
    signal?: AbortSignal,
    retry?: { times: number; resend: Resend },
    observation?: unknown,
  ): void {
    const entry: Entry = {
      method,
      timeoutMs,
      deadline: now() + timeoutMs,
      callback: completion.kind === 'callback',
      onValue: completion.kind === 'callback' ? completion.ok : completion.resolve,
      onError: completion.kind === 'callback' ? completion.err : completion.reject,
      detachSignal: undefined,
      retries: retry?.times ?? 0,
      resend: retry?.resend,
      observation,
    };
    this.#entries.set(id, entry);
    if (this.#entries.size === 1) this.#onBusy?.(true);
    this.#deadlines.schedule(id, timeoutMs, entry.deadline);
    if (completion.kind === 'callback') this.#callbacks++;
    if (signal !== undefined) {
      if (signal.aborted) {
        this.settle(id, abortError(method, signal.reason));
        return;
      }
      const onAbort = (): void => {
        this.settle(id, abortError(method, signal.reason));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      entry.detachSignal = () => signal.removeEventListener('abort', onAbort);
    }
  }

  has(id: string): boolean {
    return this.#entries.has(id);
  }

  /** QAM's state of a callback-mode call; unknown and finished ids answer `finished`. */
  state(id: string): CallbackState {
    if (this.#running.has(id)) return CallbackState.processing;
    return this.#entries.has(id) ? CallbackState.waiting : CallbackState.finished;
  }

  /**
   * Ends a call with a result or an error, or, for a retryable failure of a call with retries
   * left, sends it again. Returns false when the id is not waiting (already settled, or never
   * known); such a reply is counted by {@link noteUnknownReply} by the caller.
   */
  settle(id: string, outcome: Error | { value: unknown }): boolean {
    const entry = this.#entries.get(id);
    if (entry === undefined) return false;
    if (entry.resend !== undefined && entry.retries > 0 && isRetryable(outcome)) {
      this.#retry(id, entry, outcome);
      return true;
    }
    this.#entries.delete(id);
    if (this.#entries.size === 0) {
      this.#deadlines.idle();
      this.#onBusy?.(false);
    } else this.#deadlines.finished(entry.timeoutMs);
    entry.detachSignal?.();
    this.#onEnded?.(id, entry.method, outcome, entry.observation);
    if (!entry.callback) {
      if (outcome instanceof Error) entry.onError?.(outcome);
      else entry.onValue(outcome.value);
    } else {
      this.#callbacks--;
      this.#runCallback(id, entry, outcome);
    }
    return true;
  }

  /** Cancels a waiting call (QAMAbortException); false when it already ended. */
  cancel(id: string): boolean {
    const entry = this.#entries.get(id);
    return entry !== undefined && this.settle(id, new QAMAbortException(`Call ${id} to ${entry.method} was cancelled`));
  }

  /** Registers a call that cannot be sent and ends it on a later tick, after its uid is returned. */
  rejectSoon(id: string, method: string, completion: Completion, error: Error): void {
    this.add(id, method, 1000, completion);
    queueMicrotask(() => this.settle(id, error));
  }

  noteUnknownReply(): void {
    this.#unknownReplies++;
  }

  /** Ends every waiting call with `error` and stops the timers (the proxy closes). */
  settleAll(error: Error): void {
    this.settleEach(this.ids(), error);
    this.#deadlines.clear();
  }

  /** The ids of the calls waiting now. */
  ids(): string[] {
    return [...this.#entries.keys()];
  }

  /** Ends those of `ids` still waiting with `error`. */
  settleEach(ids: readonly string[], error: Error): void {
    for (const id of ids) this.settle(id, error);
  }

  #retry(id: string, entry: Entry, reason: QAMException): void {
    entry.retries--;
    entry.deadline = now() + entry.timeoutMs;
    this.#deadlines.schedule(id, entry.timeoutMs, entry.deadline);
    this.#logger.info(`call ${id} to ${entry.method} sent again (${entry.retries} retries left) after: ${reason.message}`);
    entry.resend?.(Date.now() + entry.timeoutMs);
  }

  readonly #deadlines = new Deadlines(
    (id) => this.#entries.get(id)?.deadline,
    (id) => this.#expire(id),
  );

  readonly #expire = (id: string): void => {
    const entry = this.#entries.get(id);
    if (entry === undefined) return;
    this.settle(id, new QAMTimeoutException(`Call to ${entry.method} got no reply within ${entry.timeoutMs / 1000} s`));
  };

  /**
   * Runs `ok` or `err`. Whatever it does (throw any value, return a thenable whose `then` throws or
   * never settles) ends in a log line, never in an exception out of here: settle() runs inside
   * amqplib's consumer and the timeout timer, where one would close the channel of every other
   * call, or stop other calls from timing out and kill the process.
   */
  #runCallback(id: string, entry: Entry, outcome: Error | { value: unknown }): void {
    const method = entry.method;
    const handler: ((value: any) => unknown) | undefined = outcome instanceof Error ? entry.onError : entry.onValue;
    if (handler === undefined) {
      this.#logger.error(`callback call ${id} to ${method} failed and has no error function: ${describeSafely(outcome)}`);
      return;
    }
    this.#running.add(id);
    try {
      const returned = handler(outcome instanceof Error ? outcome : outcome.value);
      if (isThenable(returned)) {
        // Resolving a promise with the thenable calls its `then` on a later tick and turns anything
        // it throws into a rejection, once.
        new Promise((resolve) => resolve(returned)).then(
          () => this.#running.delete(id),
          (error: unknown) => this.#callbackFailed(id, method, error),
        );
        return;
      }
    } catch (error) {
      this.#callbackFailed(id, method, error);
      return;
    }
    this.#running.delete(id);
  }

  #callbackFailed(id: string, method: string, error: unknown): void {
    this.#running.delete(id);
    this.#logger.error(`callback of call ${id} to ${method} threw: ${describeSafely(error)}`);
  }
}

/** {@link describeError}, or a placeholder for a value that throws when looked at (a Proxy whose traps throw). */
function describeSafely(error: unknown): string {
  try {
    return describeError(error);
  } catch {
    return `a ${typeof error} that cannot be described`;
  }
}

/** A timeout or lost connection of this call; not a remote error that happens to carry such a code. */
function isRetryable(outcome: Error | { value: unknown }): outcome is QAMException {
  return outcome instanceof QAMException && !(outcome instanceof QAMRemoteException) && retryableCodes.has(outcome.code);
}

function abortError(method: string, reason: unknown): QAMAbortException {
  return new QAMAbortException(`Call to ${method} was aborted`, reason);
}
