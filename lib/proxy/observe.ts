import type { Span } from '@opentelemetry/api';
import { debugging, type Logger } from '../logger.js';
import type { MethodStats } from '../metrics.js';
import { CallMetrics, errorCodeOf, openTelemetry, tracing } from '../telemetry.js';

/** OpenTelemetry's `SpanStatusCode.ERROR`. */
const spanStatusError = 2;

/**
 * What a proxy keeps of one call for its metrics and span: when it started (`performance.now()`),
 * a plain number for an untraced call (nothing more to allocate per pending call), or its span and
 * the headers that carry its trace context. @internal
 */
export type Observation = number | TracedCall;

/** @internal */
export interface TracedCall {
  readonly start: number;
  readonly span: Span;
  /** The headers the request carries: the proxy's own and the trace context. */
  readonly headers: Readonly<Record<string, string>>;
}

/**
 * The proxy side of metrics and tracing: every call is counted by method and outcome; with
 * OpenTelemetry, each call is a CLIENT span (RPC and messaging semantic conventions) whose context
 * travels in the request's `traceparent` and `tracestate` headers.
 * @internal
 */
export class ClientObserver {
  readonly #serverId: string;
  readonly #metrics: CallMetrics;

  constructor(serverId: string, logger: Logger) {
    this.#serverId = serverId;
    const debug = debugging ? (line: string) => logger.debug(`proxy for server ${serverId}: call ${line}`) : undefined;
    this.#metrics = new CallMetrics('client', serverId, debug);
  }

  start(method: string, headers: Readonly<Record<string, string>> | undefined): Observation {
    const start = performance.now();
    const otel = openTelemetry();
    if (otel === undefined || !tracing(otel)) return start;
    const span = otel.trace.getTracer('qam').startSpan(`${this.#serverId}/${method}`, {
      kind: otel.SpanKind.CLIENT,
      attributes: {
        'rpc.system': 'qam',
        'rpc.service': this.#serverId,
        'rpc.method': method,
        'messaging.system': 'rabbitmq',
        'messaging.operation.type': 'send',
        'messaging.destination.name': this.#serverId,
      },
    });
    const carrier: Record<string, string> = { ...headers };
    otel.propagation.inject(otel.trace.setSpan(otel.context.active(), span), carrier);
    return { start, span, headers: carrier };
  }

  end(id: string, method: string, observation: Observation, outcome: Error | { value: unknown }): void {
    const failed = outcome instanceof Error;
    const code = failed ? errorCodeOf(outcome) : undefined;
    const traced = typeof observation === 'number' ? undefined : observation;
    this.#metrics.record(method, performance.now() - (traced === undefined ? (observation as number) : traced.start), code, id);
    if (traced === undefined) return;
    const span = traced.span;
    span.setAttribute('messaging.message.conversation_id', id);
    if (failed) {
      span.setAttribute('error.type', code ?? 'ERROR');
      span.recordException(outcome);
      span.setStatus({ code: spanStatusError, message: outcome.message });
    }
    span.end();
  }

  stats(): Record<string, MethodStats> {
    return this.#metrics.snapshot();
  }
}
