import { directReplyTo } from '../protocols/naming.js';

/**
 * How late a server may learn a caller's requests to be, from the two deadlines a native request
 * carries: its AMQP `expiration` (the caller's time left when the request was written) and the
 * deadline in its body (in the caller's clock).
 *
 * Arrival plus the expiration alone is never earlier than the caller's real deadline, whatever the
 * clocks say, but it is late by the request's whole way from the caller's socket to this server:
 * the broker counts the expiration from when it takes the request in, so a request that waited in
 * a socket (a broker that blocks the connection for a memory alarm, large bodies the broker reads
 * slowly) or in the queue arrives with its full expiration still to run, and would start long
 * after its caller gave up. The body deadline alone is exact when the clocks agree, and wrong by
 * their difference when they do not (a server whose clock runs ahead would skip calls their
 * callers still wait for).
 *
 * Each request tells how long after it was written it arrived, as the two clocks see it:
 * `lag = arrival + expiration − body deadline` = its time on the way + the clocks' difference.
 * The smallest lag of a caller's recent requests is the clocks' difference plus the quickest way
 * any took, so the body deadline plus that smallest lag is never earlier than the real deadline,
 * and late only by that quickest way (a few milliseconds), not by this request's own. A caller's
 * first request, or one after a long silence, is taken at arrival plus expiration, as before.
 *
 * Callers are told apart by their direct reply-to address, which the broker makes for the channel
 * that publishes and which no other client can claim, so a request with deadlines that do not
 * agree can only hurt its own caller's later calls. Requests with another reply address (a
 * callme exchange anyone may name) are taken at arrival plus expiration.
 * @internal
 */
export class CallerClocks {
  readonly #callers = new Map<string, Lag>();
  readonly #windowMs: number;
  readonly #maxCallers: number;

  /**
   * @param windowMs a caller's smallest lag is taken over its requests of the last one to two windows
   *   (so a caller whose clock is set back is trusted again after at most two windows)
   * @param maxCallers callers remembered at most; the longest known is forgotten first
   */
  constructor(windowMs = 60_000, maxCallers = 10_000) {
    this.#windowMs = windowMs;
    this.#maxCallers = maxCallers;
  }

  /**
   * The caller's deadline in this server's clock, for a request that arrived `now` with `remainingMs`
   * (its expiration) and `bodyDeadline`, from the caller at `replyTo`; undefined when it sent neither.
   */
  deadline(replyTo: unknown, remainingMs: number | undefined, bodyDeadline: number | undefined, now: number): number | undefined {
    if (remainingMs === undefined) return bodyDeadline;
    const byExpiration = now + remainingMs;
    if (bodyDeadline === undefined || typeof replyTo !== 'string' || !replyTo.startsWith(directReplyToPrefix)) return byExpiration;
    return bodyDeadline + this.#smallestLag(replyTo, byExpiration - bodyDeadline, now);
  }

  #smallestLag(caller: string, lag: number, now: number): number {
    const known = this.#callers.get(caller);
    if (known === undefined) {
      if (this.#callers.size >= this.#maxCallers) this.#callers.delete(this.#callers.keys().next().value as string);
      this.#callers.set(caller, { current: lag, previous: lag, since: now });
      return lag;
    }
    if (now - known.since >= this.#windowMs) {
      known.previous = now - known.since >= 2 * this.#windowMs ? lag : known.current;
      known.current = lag;
      known.since = now;
    } else if (lag < known.current) {
      known.current = lag;
    }
    return Math.min(known.current, known.previous, lag);
  }
}

/** How the broker's direct reply-to addresses begin (`amq.rabbitmq.reply-to.<channel>.<key>`). */
const directReplyToPrefix = `${directReplyTo}.`;

/** The smallest lag of a caller in the current window and the one before. */
interface Lag {
  current: number;
  previous: number;
  /** When the current window began. */
  since: number;
}
