/**
 * Timeouts for many calls with one timer per distinct timeout length instead of one per call (a
 * Node timer costs about 200 bytes; a slot here about 20). Calls with the same timeout expire in
 * the order they started, so each length keeps a FIFO of (id, deadline) and one timer armed for
 * its head. Finished calls are not removed at once: they are skipped when reached, and the FIFO is
 * compacted when most of it is finished, so memory stays proportional to the calls still waiting.
 * @internal
 */
export class Deadlines {
  readonly #queues = new Map<number, Fifo>();
  readonly #deadlineOf: (id: string) => number | undefined;
  readonly #expire: (id: string) => void;

  /**
   * @param deadlineOf the current deadline of a waiting call (monotonic ms), undefined once it ended
   * @param expire called for a waiting call whose deadline has come
   */
  constructor(deadlineOf: (id: string) => number | undefined, expire: (id: string) => void) {
    this.#deadlineOf = deadlineOf;
    this.#expire = expire;
  }

  /** Schedules `id` to expire at `deadline` (from {@link now}), `timeoutMs` after now. */
  schedule(id: string, timeoutMs: number, deadline: number): void {
    let fifo = this.#queues.get(timeoutMs);
    if (fifo === undefined) {
      fifo = new Fifo(timeoutMs);
      this.#queues.set(timeoutMs, fifo);
    }
    fifo.push(id, deadline);
    if (fifo.timer === undefined) {
      if (!fifo.firing) this.#arm(fifo, timeoutMs);
    } else if (!fifo.referenced) {
      fifo.referenced = true;
      fifo.timer.ref();
    }
  }

  /** Pairs held, finished ones not yet dropped included. */
  get queued(): number {
    let total = 0;
    for (const fifo of this.#queues.values()) total += fifo.length;
    return total;
  }

  /** Notes that a scheduled call ended, so its FIFO can be compacted in time. */
  finished(timeoutMs: number): void {
    const fifo = this.#queues.get(timeoutMs);
    if (fifo !== undefined && ++fifo.finished > 1024 && fifo.finished * 2 > fifo.length) {
      fifo.compact((id, deadline) => this.#deadlineOf(id) === deadline);
    }
  }

  /**
   * Every scheduled call ended: forgets them, but leaves each timer armed, unreferenced (it keeps
   * no process alive), for the calls to come. With one call at a time, clearing the timer and
   * arming a new one for every call would cost far more than the timer that goes off for nothing
   * once per timeout length (it finds nothing to expire, or re-arms for the calls started since).
   */
  idle(): void {
    for (const fifo of this.#queues.values()) {
      fifo.reset();
      if (fifo.referenced) {
        fifo.referenced = false;
        fifo.timer?.unref();
      }
    }
  }

  /** Stops every timer (the calls are ended by their owner). */
  clear(): void {
    for (const fifo of this.#queues.values()) clearTimeout(fifo.timer);
    this.#queues.clear();
  }

  #arm(fifo: Fifo, delayMs: number): void {
    fifo.timer = setTimeout(this.#fire, Math.max(0, delayMs), fifo);
    fifo.referenced = true;
  }

  readonly #fire = (fifo: Fifo): void => {
    fifo.timer = undefined;
    fifo.firing = true;
    const current = now();
    try {
      while (fifo.length > 0) {
        const id = fifo.headId();
        const deadline = fifo.headDeadline();
        const live = this.#deadlineOf(id) === deadline;
        if (live && deadline > current) {
          this.#arm(fifo, deadline - current);
          return;
        }
        fifo.shift();
        if (live) this.#expire(id);
        else fifo.finished = Math.max(0, fifo.finished - 1);
      }
      if (this.#queues.get(fifo.timeoutMs) === fifo) this.#queues.delete(fifo.timeoutMs);
    } finally {
      fifo.firing = false;
    }
  };
}

/** The clock deadlines are kept in: monotonic, unlike Date.now(). */
export function now(): number {
  return performance.now();
}

/** A queue of (id, deadline) pairs in two arrays, consumed from `#head`. */
class Fifo {
  readonly timeoutMs: number;
  timer: NodeJS.Timeout | undefined;
  /** False while the timer is unreferenced: armed while no call waits (see {@link Deadlines.idle}). */
  referenced = false;
  /** True while its expired calls are being ended (their callbacks may start new calls). */
  firing = false;
  finished = 0;
  #ids: string[] = [];
  #deadlines: number[] = [];
  #head = 0;

  constructor(timeoutMs: number) {
    this.timeoutMs = timeoutMs;
  }

  get length(): number {
    return this.#ids.length - this.#head;
  }

  push(id: string, deadline: number): void {
    this.#ids.push(id);
    this.#deadlines.push(deadline);
  }

  headId(): string {
    return this.#ids[this.#head] as string;
  }

  headDeadline(): number {
    return this.#deadlines[this.#head] as number;
  }

  shift(): void {
    this.#head++;
    if (this.#head > 1024 && this.#head * 2 > this.#ids.length) this.#rebase();
  }

  /** Drops every pair. */
  reset(): void {
    this.#ids.length = 0;
    this.#deadlines.length = 0;
    this.#head = 0;
    this.finished = 0;
  }

  /** Keeps only the pairs `keep` accepts, in order. */
  compact(keep: (id: string, deadline: number) => boolean): void {
    const ids: string[] = [];
    const deadlines: number[] = [];
    for (let i = this.#head; i < this.#ids.length; i++) {
      const id = this.#ids[i] as string;
      const deadline = this.#deadlines[i] as number;
      if (keep(id, deadline)) {
        ids.push(id);
        deadlines.push(deadline);
      }
    }
    this.#ids = ids;
    this.#deadlines = deadlines;
    this.#head = 0;
    this.finished = 0;
  }

  #rebase(): void {
    this.#ids = this.#ids.slice(this.#head);
    this.#deadlines = this.#deadlines.slice(this.#head);
    this.#head = 0;
  }
}
