import * as otel from '@opentelemetry/api';
import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base';
import { CallMetrics, errorCodeOf, latencyBoundsMs, tracing } from '../../lib/telemetry.js';

describe('tracing', () => {
  it('is off while no tracer provider is registered, on while one is, and off again after disable', () => {
    expect(tracing(otel)).toBe(false);
    otel.trace.setGlobalTracerProvider(new BasicTracerProvider());
    try {
      expect(tracing(otel)).toBe(true);
    } finally {
      otel.trace.disable();
    }
    expect(tracing(otel)).toBe(false);
  });
});

describe('CallMetrics', () => {
  it('counts calls, errors and latency buckets by method, and writes one debug line per call', () => {
    const lines: string[] = [];
    const metrics = new CallMetrics('client', 'calc', (line) => lines.push(line));
    metrics.record('add', 0.5, undefined, 'u.1');
    metrics.record('add', 3, 'TIMEOUT', 'u.2');
    metrics.record('add', 1e6, undefined, undefined);
    const add = metrics.snapshot()['add'];
    expect(add).toMatchObject({ calls: 3, errors: { TIMEOUT: 1 }, latencyMs: { count: 3, sum: 1e6 + 3.5, max: 1e6 } });
    expect(add?.latencyMs.counts[0]).toBe(1); // <= 1 ms
    expect(add?.latencyMs.counts[latencyBoundsMs.indexOf(5)]).toBe(1); // 2 < 3 <= 5 ms
    expect(add?.latencyMs.counts[latencyBoundsMs.length]).toBe(1); // above the last bound
    expect(lines).toEqual(['add u.1 0.50 ms ok', 'add u.2 3.00 ms error TIMEOUT', 'add - 1000000.00 ms ok']);
  });

  it('gives a snapshot that later calls do not change, and writes no line without debug', () => {
    const metrics = new CallMetrics('server', 'calc', undefined);
    metrics.record('add', 1, undefined, undefined);
    const before = metrics.snapshot();
    metrics.record('add', 1, undefined, undefined);
    expect(before['add']?.calls).toBe(1);
    expect(before['add']?.latencyMs.counts[0]).toBe(1);
  });

  it('counts methods beyond the first thousand together', () => {
    const metrics = new CallMetrics('client', 'calc', undefined);
    for (let index = 0; index < 1005; index++) metrics.record(`m${index}`, 1, undefined, undefined);
    const snapshot = metrics.snapshot();
    expect(Object.keys(snapshot)).toHaveLength(1001);
    expect(snapshot['(other)']?.calls).toBe(5);
  });

  it('records to the histogram of the MeterProvider registered when it was made, and to none without one', async () => {
    const reader = new PeriodicExportingMetricReader({
      exporter: new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE),
      exportIntervalMillis: 3_600_000,
    });
    const provider = new MeterProvider({ readers: [reader] });
    const before = new CallMetrics('client', 'calc', undefined);
    otel.metrics.setGlobalMeterProvider(provider);
    try {
      const after = new CallMetrics('client', 'calc', undefined);
      before.record('before', 1, undefined, undefined);
      after.record('after', 1, undefined, undefined);
      const { resourceMetrics } = await reader.collect();
      const methods = resourceMetrics.scopeMetrics
        .flatMap((scope) => scope.metrics)
        .flatMap((metric) => metric.dataPoints.map((point: { attributes: Record<string, unknown> }) => point.attributes['rpc.method']));
      expect(methods).toEqual(['after']);
    } finally {
      otel.metrics.disable();
      await provider.shutdown();
    }
  });

  it('names errors by their code, else their name', () => {
    expect(errorCodeOf(Object.assign(new Error('x'), { code: 'E1' }))).toBe('E1');
    expect(errorCodeOf(new TypeError('x'))).toBe('TypeError');
    expect(errorCodeOf('a string')).toBe('ERROR');
    expect(
      errorCodeOf(
        new Proxy(
          {},
          {
            get() {
              throw new Error('hostile');
            },
          },
        ),
      ),
    ).toBe('ERROR');
  });
});
