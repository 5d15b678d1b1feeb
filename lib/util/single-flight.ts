/**
 * One run of an asynchronous task at a time: callers that arrive while it runs share its promise,
 * and the next call after it settled starts it again.
 * @internal
 */
export class SingleFlight<T> {
  #running: Promise<T> | undefined;

  /** True while a run is in progress. */
  get running(): boolean {
    return this.#running !== undefined;
  }

  /** The run in progress, if any. */
  get current(): Promise<T> | undefined {
    return this.#running;
  }

  /** Joins the run in progress, or starts `task`. */
  run(task: () => Promise<T>): Promise<T> {
    this.#running ??= task().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }
}
