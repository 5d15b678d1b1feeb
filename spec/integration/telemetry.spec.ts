/**
 * Context, tracing and metrics end to end over RabbitMQ: headers from caller to server, the
 * deadline's AbortSignal, OpenTelemetry spans (client and server in one trace) and metrics, and
 * the plain per-method counters.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { SpanKind, SpanStatusCode, context, metrics, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import {
  DataPointType,
  InMemoryMetricExporter,
  AggregationTemporality,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { QAMProxy, QAMServer, QAMTimeoutException, currentCall, silentLogger } from '../../lib/index.js';
import { openTelemetryLookup } from '../../lib/telemetry.js';
import { Servers, url } from './fixtures.js';

const spans = new InMemorySpanExporter();
const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });
const metricReader = new PeriodicExportingMetricReader({
  exporter: new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE),
  exportIntervalMillis: 3_600_000,
});
const meterProvider = new MeterProvider({ readers: [metricReader] });

const servers = new Servers();
let server: QAMServer;
let proxy: QAMProxy;
const aborted: unknown[] = [];

beforeAll(async () => {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(tracerProvider);
  metrics.setGlobalMeterProvider(meterProvider);
  await openTelemetryLookup;
  server = servers
    .create()
    .registerFunction((a: number, b: number) => a + b, 'add')
    .registerFunction(() => ({ ...currentCall()?.headers }), 'headers')
    .registerFunction(() => {
      throw Object.assign(new Error('boom'), { code: 'BOOM' });
    }, 'fails')
    .registerFunction(() => trace.getTracer('app').startActiveSpan('inner work', (span) => span.end()), 'nested')
    .registerFunction(async () => {
      const signal = currentCall()?.signal;
      if (signal === undefined) return 'no signal';
      let timer: NodeJS.Timeout | undefined;
      await new Promise((resolve) => {
        signal.addEventListener('abort', resolve, { once: true });
        timer = setTimeout(resolve, 10_000);
      });
      clearTimeout(timer);
      aborted.push(signal.reason);
      return 'late';
    }, 'waitForAbort');
  await server.serve();
  proxy = new QAMProxy({ serverId: server.serverId, url, timeout: 10, logger: silentLogger });
});

afterAll(async () => {
  await proxy.close();
  await servers.closeAll();
  await tracerProvider.shutdown();
  await meterProvider.shutdown();
  trace.disable();
  metrics.disable();
  propagation.disable();
  context.disable();
});

beforeEach(() => spans.reset());

describe('headers', () => {
  it('travel from caller to server, merged by withHeaders, without qam’s own', async () => {
    const tenant = proxy.withHeaders({ tenant: 'acme' });
    const both = tenant.withHeaders({ 'request-id': 'r1', tenant: 'other' });
    await expect(both.headers()).resolves.toMatchObject({ tenant: 'other', 'request-id': 'r1' });
    const seen = (await tenant.headers()) as Record<string, string>;
    expect(seen['tenant']).toBe('acme');
    expect(Object.keys(seen).filter((name) => name.startsWith('x-qam-'))).toEqual([]);
    // withHeaders returns a new proxy: the first one sends none of its own.
    expect(Object.keys((await proxy.headers()) as object).sort()).toEqual(['traceparent']);
  });

  it('refuses the reserved prefix, in any case, and values that are not strings', () => {
    expect(() => proxy.withHeaders({ 'x-qam-wire': '9' })).toThrow(TypeError);
    expect(() => proxy.withHeaders({ 'X-QAM-Kind': 'x' })).toThrow(/reserves for its own headers/);
    expect(() => proxy.withHeaders({ count: 1 } as never)).toThrow(/must be a string/);
    expect(() => proxy.withHeaders('tenant' as never)).toThrow(TypeError);
  });
});

describe('the deadline signal', () => {
  it("aborts when the caller's deadline passes, with a timeout as its reason", async () => {
    aborted.splice(0);
    // 2 s: long enough for a loaded broker to deliver the request before its deadline.
    await expect(proxy.setTimeout(2).waitForAbort()).rejects.toBeInstanceOf(QAMTimeoutException);
    for (let waited = 0; aborted.length === 0 && waited < 10_000; waited += 50) await delay(50);
    expect(aborted).toEqual([expect.any(QAMTimeoutException)]);
  });
});

describe('OpenTelemetry tracing', () => {
  it('makes a client span and a server span in one trace, with the RPC and messaging conventions', async () => {
    await expect(proxy.add(2, 3)).resolves.toBe(5);
    const finished = spans.getFinishedSpans();
    const client = finished.find((span) => span.kind === SpanKind.CLIENT);
    const served = finished.find((span) => span.kind === SpanKind.SERVER);
    expect(client).toBeDefined();
    expect(served).toBeDefined();
    if (client === undefined || served === undefined) return;
    expect(served.spanContext().traceId).toBe(client.spanContext().traceId);
    expect(served.parentSpanContext?.spanId).toBe(client.spanContext().spanId);
    expect(client.name).toBe(`${server.serverId}/add`);
    expect(client.attributes).toMatchObject({
      'rpc.system': 'qam',
      'rpc.service': server.serverId,
      'rpc.method': 'add',
      'messaging.system': 'rabbitmq',
      'messaging.operation.type': 'send',
      'messaging.message.conversation_id': expect.any(String),
    });
    expect(served.attributes).toMatchObject({
      'rpc.method': 'add',
      'messaging.operation.type': 'process',
      'messaging.message.conversation_id': client.attributes['messaging.message.conversation_id'],
    });
    expect(client.status.code).toBe(SpanStatusCode.UNSET);
  });

  it("continues the caller's active trace, and the function's own spans are children of the server span", async () => {
    await trace.getTracer('app').startActiveSpan('request', async (root) => {
      await proxy.nested();
      root.end();
    });
    const finished = spans.getFinishedSpans();
    const root = finished.find((span) => span.name === 'request');
    const client = finished.find((span) => span.kind === SpanKind.CLIENT);
    const served = finished.find((span) => span.kind === SpanKind.SERVER);
    const inner = finished.find((span) => span.name === 'inner work');
    expect(new Set(finished.map((span) => span.spanContext().traceId)).size).toBe(1);
    expect(client?.parentSpanContext?.spanId).toBe(root?.spanContext().spanId);
    expect(inner?.parentSpanContext?.spanId).toBe(served?.spanContext().spanId);
  });

  it('marks failed calls on both sides with the error', async () => {
    await expect(proxy.fails()).rejects.toMatchObject({ remoteCode: 'BOOM' });
    const finished = spans.getFinishedSpans();
    const client = finished.find((span) => span.kind === SpanKind.CLIENT);
    const served = finished.find((span) => span.kind === SpanKind.SERVER);
    expect(client?.status.code).toBe(SpanStatusCode.ERROR);
    expect(client?.attributes['error.type']).toBe('REMOTE_ERROR');
    expect(served?.status.code).toBe(SpanStatusCode.ERROR);
    expect(served?.attributes['error.type']).toBe('BOOM');
  });
});

describe('metrics', () => {
  it('counts calls, errors by code and latencies by method on both sides', async () => {
    const meter = new QAMProxy({ serverId: server.serverId, url, timeout: 10, logger: silentLogger });
    try {
      await meter.add(1, 1);
      await meter.add(2, 2);
      await expect(meter.fails()).rejects.toBeDefined();
      await expect(meter.nosuch()).rejects.toMatchObject({ code: 'METHOD_NOT_FOUND' });
      const { methods } = meter.getStats();
      expect(methods['add']).toMatchObject({ calls: 2, errors: {}, latencyMs: { count: 2 } });
      expect(methods['add']?.latencyMs.counts.reduce((a, b) => a + b, 0)).toBe(2);
      expect(methods['add']?.latencyMs.bounds.length).toBe((methods['add']?.latencyMs.counts.length ?? 0) - 1);
      expect(methods['fails']).toMatchObject({ calls: 1, errors: { REMOTE_ERROR: 1 } });
      expect(methods['nosuch']).toMatchObject({ calls: 1, errors: { METHOD_NOT_FOUND: 1 } });
      const served = server.stats().methods;
      expect(served['add']?.calls).toBeGreaterThanOrEqual(2);
      expect(served['fails']?.errors['BOOM']).toBeGreaterThanOrEqual(1);
      // Requests refused before anything runs are not methods of the server.
      expect(served['nosuch']).toBeUndefined();
    } finally {
      await meter.close();
    }
  });

  it('records rpc.client.duration and rpc.server.duration through OpenTelemetry', async () => {
    await proxy.add(5, 5);
    const { resourceMetrics } = await metricReader.collect();
    const found = resourceMetrics.scopeMetrics.filter((scope) => scope.scope.name === 'qam').flatMap((scope) => scope.metrics);
    for (const name of ['rpc.client.duration', 'rpc.server.duration']) {
      const metric = found.find((candidate) => candidate.descriptor.name === name);
      expect(metric?.dataPointType).toBe(DataPointType.HISTOGRAM);
      expect(metric?.descriptor.unit).toBe('ms');
      const point = metric?.dataPoints.find(
        (candidate) => candidate.attributes['rpc.method'] === 'add' && candidate.attributes['rpc.service'] === server.serverId,
      );
      expect(point?.attributes['rpc.system']).toBe('qam');
    }
  });
});
