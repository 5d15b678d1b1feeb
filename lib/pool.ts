/**
 * Runs at most `size` tasks at once; the rest wait in order. The server sets the prefetch of each
 * consuming channel to the same number and acknowledges no request before a worker takes it, so
 * this queue holds at most what a second protocol's channel delivered, and the broker holds the
 * backlog, where other servers can take it.
 */
export class WorkerPool {
  readonly size: number;
  readonly #queue: Array<() => Promise<void>> = [];
  #active = 0;
  #idleWaiters: Array<() => void> = [];
  readonly #onError: (error: unknown) => void;

  /** @param onError told of a task that failed anyway; the pool goes on */
  constructor(size: number, onError: (error: unknown) => void) {
    if (!Number.isInteger(size) || size < 1) throw new TypeError(`workers must be a positive integer, got ${size}`);
    this.size = size;
    this.#onError = onError;
  }

  /** Tasks running now. */
  get active(): number {
    return this.#active;
  }

  /** Runs `task` when a worker is free. */
  run(task: () => Promise<void>): void {
    if (this.#active < this.size) this.#start(task);
    else this.#queue.push(task);
  }

  /** Resolves once nothing runs and nothing waits. */
  idle(): Promise<void> {
    if (this.#active === 0 && this.#queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  #start(task: () => Promise<void>): void {
    this.#active++;
    let running: Promise<void>;
    try {
      running = task();
    } catch (error) {
      running = Promise.reject(error);
    }
    running.catch((error: unknown) => this.#onError(error)).finally(this.#done);
  }

  readonly #done = (): void => {
    this.#active--;
    const next = this.#queue.shift();
    if (next !== undefined) this.#start(next);
    else if (this.#active === 0) {
      const waiters = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const wake of waiters) wake();
    }
  };
}
