/**
 * Runs at most `size` tasks at once; the rest wait in order. The server sizes the broker prefetch
 * to the same number, so with acknowledgement after the reply the queue here stays empty and the
 * broker holds the backlog, where other servers can take it.
 */
export class WorkerPool {
  readonly size: number;
  readonly #queue: Array<() => Promise<void>> = [];
  #active = 0;
  #idleWaiters: Array<() => void> = [];

  constructor(size: number) {
    if (!Number.isInteger(size) || size < 1) throw new TypeError(`workers must be a positive integer, got ${size}`);
    this.size = size;
  }

  /** Tasks running now. */
  get active(): number {
    return this.#active;
  }

  /** Tasks waiting for a free worker. */
  get queued(): number {
    return this.#queue.length;
  }

  /** Runs `task` when a worker is free. The task must not reject; errors are its own to handle. */
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
    void task().finally(this.#done);
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
