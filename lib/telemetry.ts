import type * as OpenTelemetryApi from '@opentelemetry/api';
import type { MethodStats } from './metrics.js';

/**
 * OpenTelemetry, when the application has `@opentelemetry/api` (an optional peer dependency): qam
 * looks for it once, when it is loaded, without waiting; calls made before the lookup finished
 * (in the same turn as qam's import) are not traced. Without it, nothing of it is ever loaded.
 * @internal
 */
export type OpenTelemetry = typeof OpenTelemetryApi;

let api: OpenTelemetry | undefined;
const apiName = '@opentelemetry/api';
/** Settles once the lookup of OpenTelemetry finished, found or not. @internal */
export const openTelemetryLookup: Promise<void> = import(apiName).then(
  (loaded: OpenTelemetry) => {
    api = loaded;
  },
  () => undefined,
);

/** The OpenTelemetry API, when it is installed (see {@link OpenTelemetry}). @internal */
export function openTelemetry(): OpenTelemetry | undefined {
  return api;
}

let noopTracerProvider: OpenTelemetryApi.TracerProvider | undefined;

/**
 * True when the application registered a tracer provider (an OpenTelemetry SDK). Without one,
 * every span would be a no-op and no propagator is registered, so calls skip span work entirely.
 * @internal
 */
export function tracing(otel: OpenTelemetry): boolean {
  // A ProxyTracerProvider with no delegate hands out the API's own no-op provider.
  noopTracerProvider ??= new otel.ProxyTracerProvider().getDelegate();
  const provider = otel.trace.getTracerProvider();
  const delegate = provider instanceof otel.ProxyTracerProvider ? provider.getDelegate() : provider;
  return delegate !== noopTracerProvider;
}

/** Upper bounds, in milliseconds, of the buckets of qam's latency histograms; the last bucket has none. */
export const latencyBoundsMs: readonly number[] = Object.freeze([1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000]);

/** Methods beyond this many are counted together under {@link otherMethods}. */
const maxMethods = 1000;
/** The name under which methods beyond the first {@link maxMethods} are counted. */
export const otherMethods = '(other)';

/**
 * Per-method counts, errors and latencies of one proxy or server, and their OpenTelemetry
 * histogram and debug line. @internal
 */
export class CallMetrics {
  readonly #methods = new Map<string, MethodStats>();
  readonly #histogram: OpenTelemetryApi.Histogram | undefined;
  readonly #service: string;
  readonly #debug: ((line: string) => void) | undefined;

  /**
   * @param side `'client'` or `'server'`: the OpenTelemetry histogram is `rpc.<side>.duration`
   * @param debug where the per-call line goes with QAM_DEBUG=1
   */
  constructor(side: 'client' | 'server', service: string, debug: ((line: string) => void) | undefined) {
    const otel = openTelemetry();
    const histogram = otel?.metrics.getMeter('qam').createHistogram(`rpc.${side}.duration`, {
      description: `Duration of qam RPC calls, ${side} side`,
      unit: 'ms',
      advice: { explicitBucketBoundaries: [...latencyBoundsMs] },
    });
    // Without a registered MeterProvider the API hands out its no-op histogram, for good (a meter
    // is not a proxy that a later provider takes over): recording to it would only cost time.
    this.#histogram = histogram === undefined || histogram === otel?.createNoopMeter().createHistogram('') ? undefined : histogram;
    this.#service = service;
    this.#debug = debug;
  }

  /** Counts a call that ended after `ms`, with an error code when it failed. */
  record(method: string, ms: number, errorCode: string | undefined, id: string | undefined): void {
    const stats = this.#stats(method);
    stats.calls++;
    if (errorCode !== undefined) stats.errors[errorCode] = (stats.errors[errorCode] ?? 0) + 1;
    const latency = stats.latencyMs;
    latency.count++;
    latency.sum += ms;
    if (ms > latency.max) latency.max = ms;
    let bucket = 0;
    while (bucket < latencyBoundsMs.length && ms > (latencyBoundsMs[bucket] as number)) bucket++;
    latency.counts[bucket] = (latency.counts[bucket] ?? 0) + 1;
    if (this.#histogram !== undefined) {
      const attributes: Record<string, string> = { 'rpc.system': 'qam', 'rpc.service': this.#service, 'rpc.method': method };
      if (errorCode !== undefined) attributes['error.type'] = errorCode;
      this.#histogram.record(ms, attributes);
    }
    this.#debug?.(`${method} ${id ?? '-'} ${ms.toFixed(2)} ms ${errorCode === undefined ? 'ok' : `error ${errorCode}`}`);
  }

  /** A copy of the counters, by method. */
  snapshot(): Record<string, MethodStats> {
    const copy: Record<string, MethodStats> = {};
    for (const [method, stats] of this.#methods) {
      copy[method] = {
        calls: stats.calls,
        errors: { ...stats.errors },
        latencyMs: { ...stats.latencyMs, counts: [...stats.latencyMs.counts] },
      };
    }
    return copy;
  }

  #stats(method: string): MethodStats {
    let stats = this.#methods.get(method);
    if (stats === undefined) {
      if (this.#methods.size >= maxMethods && method !== otherMethods) return this.#stats(otherMethods);
      stats = {
        calls: 0,
        errors: {},
        latencyMs: { count: 0, sum: 0, max: 0, bounds: latencyBoundsMs, counts: new Array<number>(latencyBoundsMs.length + 1).fill(0) },
      };
      this.#methods.set(method, stats);
    }
    return stats;
  }
}

/** The code an error is counted under: its string `code`, else its name, else `ERROR`. @internal */
export function errorCodeOf(error: unknown): string {
  if (typeof error === 'object' && error !== null) {
    try {
      const { code, name } = error as { code?: unknown; name?: unknown };
      if (typeof code === 'string' && code !== '') return code.slice(0, 64);
      if (typeof name === 'string' && name !== '') return name.slice(0, 64);
    } catch {
      // A hostile getter: counted as a plain error.
    }
  }
  return 'ERROR';
}

/** Reads a header of an incoming message for the propagator: strings as they are, Buffers decoded. @internal */
export const headerGetter: OpenTelemetryApi.TextMapGetter<Record<string, unknown>> = {
  keys: (carrier) => Object.keys(carrier),
  get(carrier, key) {
    const value = Object.prototype.hasOwnProperty.call(carrier, key) ? carrier[key] : undefined;
    if (typeof value === 'string') return value;
    return Buffer.isBuffer(value) ? value.toString('utf8') : undefined;
  },
};
