/** Small statistics: percentiles of one run, medians and spreads over rounds, paired ratios. */

/** Nearest-rank percentile of an ascending array, p in [0, 100]. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] ?? Number.NaN;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  const upper = sorted[middle] ?? Number.NaN;
  return sorted.length % 2 === 1 ? upper : ((sorted[middle - 1] ?? Number.NaN) + upper) / 2;
}

/** Median and range of a set of per-round values. */
export interface Spread {
  median: number;
  min: number;
  max: number;
  n: number;
}

export function spread(values: readonly number[]): Spread | undefined {
  const finite = values.filter(Number.isFinite);
  if (finite.length === 0) return undefined;
  return { median: median(finite), min: Math.min(...finite), max: Math.max(...finite), n: finite.length };
}

/**
 * Per-round paired ratios: round r's value over round r's reference value, for every round where
 * both exist. Pairing cancels what a round shares (machine load, broker state) before summarizing.
 */
export function pairedRatios(values: readonly (number | undefined)[], reference: readonly (number | undefined)[]): number[] {
  const ratios: number[] = [];
  values.forEach((value, round) => {
    const base = reference[round];
    if (value !== undefined && base !== undefined && base !== 0) ratios.push(value / base);
  });
  return ratios;
}
