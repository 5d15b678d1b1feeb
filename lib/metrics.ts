/** The counters proxies and servers keep of their calls (`getStats()`, `stats()`). */

/** A latency histogram (milliseconds). */
export interface LatencyHistogram {
  /** Calls measured. */
  count: number;
  /** Their total time. */
  sum: number;
  /** The longest. */
  max: number;
  /** Upper bounds of the buckets, as in {@link counts}. */
  readonly bounds: readonly number[];
  /** Calls per bucket: `counts[i]` took at most `bounds[i]` (and more than the bound before); the last counts the rest. */
  counts: number[];
}

/** The counters of one method. */
export interface MethodStats {
  /** Calls that ended. */
  calls: number;
  /** Calls that ended with an error, by code (`TIMEOUT`, `INVALID_PARAMS`, a function's own `code`, …). */
  errors: Record<string, number>;
  /** How long they took, from the call to its end (proxy) or from its start to its reply (server). */
  latencyMs: LatencyHistogram;
}
