/**
 * A task of the pool: it runs once a worker is free and calls `done` exactly once, when it has
 * finished (synchronously or later). A callback rather than a promise, so a call whose function
 * returns a plain value goes from delivery to reply without a single promise.
 */
export type Task = (done: () => void) => void;

/**
 * Runs at most `size` tasks at once; the rest wait in order. The server sets the prefetch of each
 * consuming channel to the same number and acknowledges no request before a worker takes it, so
 * this queue holds at most what a second protocol's channel delivered, and the broker holds the
 * backlog, where other servers can take it.
 */
export class WorkerPool {
  readonly size: number;
  /** Waiting tasks from {@link #head} on; the array is compacted as it empties. */
  #queue: Array<Task | undefined> = [];
  #head = 0;
  #active = 0;
  /** True while {@link #done} starts waiting tasks: one that ends at once does not recurse. */
  #starting = false;
  #idleWaiters: Array<() => void> = [];
  readonly #onError: (error: unknown) => void;

  /** @param onError told of a task that threw anyway; its worker is freed and the pool goes on */
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
  run(task: Task): void {
    if (this.#active < this.size) this.#start(task);
    else this.#queue.push(task);
  }

  /** Resolves once nothing runs and nothing waits. */
  idle(): Promise<void> {
    if (this.#active === 0 && this.#waiting() === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  #start(task: Task): void {
    this.#active++;
    let finished = false;
    const done = (): void => {
      if (finished) return;
      finished = true;
      this.#done();
    };
    try {
      task(done);
    } catch (error) {
      this.#onError(error);
      done();
    }
  }

  #waiting(): number {
    return this.#queue.length - this.#head;
  }

  #next(): Task {
    const task = this.#queue[this.#head] as Task;
    this.#queue[this.#head++] = undefined;
    if (this.#head === this.#queue.length) {
      this.#queue = [];
      this.#head = 0;
    } else if (this.#head >= 1024 && this.#head * 2 >= this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
    return task;
  }

  #done(): void {
    this.#active--;
    if (this.#starting) return;
    this.#starting = true;
    try {
      while (this.#active < this.size && this.#waiting() > 0) this.#start(this.#next());
    } finally {
      this.#starting = false;
    }
    if (this.#active === 0 && this.#waiting() === 0) {
      const waiters = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const wake of waiters) wake();
    }
  }
}
