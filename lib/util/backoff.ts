/** Bounds of an exponential backoff, in seconds. */
export interface BackoffBounds {
  min: number;
  max: number;
}

/**
 * The delay before attempt `attempt` (1-based) of something that keeps failing: doubling from
 * `min` up to `max`, with half of it random, so many clients that lost one broker at once do not
 * come back in step. The one backoff policy of the library (connection and server alike).
 * @internal
 */
export function backoffDelayMs(attempt: number, bounds: BackoffBounds, random: () => number = Math.random): number {
  const ceiling = Math.min(bounds.max, bounds.min * 2 ** Math.max(0, attempt - 1)) * 1000;
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}
