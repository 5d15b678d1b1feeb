/**
 * `qam bench`: calls one method many times with a bounded number in flight, and summarizes.
 * @internal
 */
import { performance } from 'node:perf_hooks';

/** What a bench measured. */
export interface BenchResult {
  calls: number;
  inFlight: number;
  /** Calls that failed, by error code. */
  errors: Record<string, number>;
  seconds: number;
  callsPerSecond: number;
  /** Latencies of every call, failed ones too, in milliseconds. */
  latencyMs: { p50: number; p90: number; p99: number; max: number };
}

/** The `fraction` percentile of ascending `sorted` by nearest rank; 0 when empty. */
export function percentile(sorted: readonly number[], fraction: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.ceil(fraction * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] ?? 0;
}

function codeOf(error: unknown): string {
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  return typeof code === 'string' ? code : 'ERROR';
}

/**
 * Makes `calls` calls of `call`, at most `inFlight` at once, telling `progress` the number done
 * after each one.
 */
export async function bench(
  call: () => Promise<unknown>,
  calls: number,
  inFlight: number,
  progress: (done: number) => void,
): Promise<BenchResult> {
  const latencies = new Float64Array(calls);
  const errors: Record<string, number> = {};
  let started = 0;
  let done = 0;
  const begin = performance.now();
  const lane = async (): Promise<void> => {
    while (started < calls) {
      const index = started++;
      const at = performance.now();
      try {
        await call();
      } catch (error) {
        const code = codeOf(error);
        errors[code] = (errors[code] ?? 0) + 1;
      }
      latencies[index] = performance.now() - at;
      progress(++done);
    }
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, calls) }, lane));
  const seconds = (performance.now() - begin) / 1000;
  const sorted = Array.from(latencies).sort((a, b) => a - b);
  return {
    calls,
    inFlight,
    errors,
    seconds,
    callsPerSecond: calls / seconds,
    latencyMs: {
      p50: percentile(sorted, 0.5),
      p90: percentile(sorted, 0.9),
      p99: percentile(sorted, 0.99),
      max: sorted[sorted.length - 1] ?? 0,
    },
  };
}

/** A progress bar on a terminal: redrawn at most every 100 ms on one line, erased by `end()`. */
export class ProgressBar {
  readonly #out: NodeJS.WriteStream;
  readonly #total: number;
  readonly #begin = performance.now();
  #drawnAt = 0;

  constructor(out: NodeJS.WriteStream, total: number) {
    this.#out = out;
    this.#total = total;
  }

  update(done: number): void {
    const now = performance.now();
    if (now - this.#drawnAt < 100 && done < this.#total) return;
    this.#drawnAt = now;
    const width = 30;
    const filled = Math.round((done / this.#total) * width);
    const rate = done / Math.max((now - this.#begin) / 1000, 1e-3);
    this.#out.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${this.#total} ${Math.round(rate)} calls/s`);
  }

  end(): void {
    this.#out.write('\r\x1b[2K');
  }
}

/** The summary lines of a bench, for people. */
export function formatBench(method: string, result: BenchResult): string {
  const ms = (value: number): string => value.toFixed(2);
  const failed = Object.values(result.errors).reduce((sum, count) => sum + count, 0);
  const errors =
    failed === 0
      ? '0 errors'
      : `${failed} errors (${Object.entries(result.errors)
          .map(([code, count]) => `${code} ${count}`)
          .join(', ')})`;
  const { p50, p90, p99, max } = result.latencyMs;
  return [
    `${method}: ${result.calls} calls, ${result.inFlight} in flight, ${errors}, in ${result.seconds.toFixed(2)} s`,
    `calls/s: ${Math.round(result.callsPerSecond)}`,
    `latency ms: p50 ${ms(p50)}  p90 ${ms(p90)}  p99 ${ms(p99)}  max ${ms(max)}`,
  ].join('\n');
}
