import type { Context, Span } from '@opentelemetry/api';
import type { Delivery } from '../amqp/port.js';
import { debugging, type Logger } from '../logger.js';
import type { CallOutcome } from '../protocols/native/server.js';
import type { MethodStats } from '../metrics.js';
import { isError, textOf } from '../errors.js';
import { CallMetrics, errorCodeOf, headerGetter, openTelemetry, tracing } from '../telemetry.js';

/** OpenTelemetry's `SpanStatusCode.ERROR`. */
const spanStatusError = 2;

/** What a server keeps of one call for its metrics and span. @internal */
export interface ServerObservation {
  readonly start: number;
  readonly span: Span | undefined;
  /** The context the function runs in: the caller's trace, with the server span. */
  readonly context: Context | undefined;
}

/**
 * The server side of metrics and tracing: every call run is counted by method and outcome; with
 * OpenTelemetry, each is a SERVER span, child of the caller's span (its `traceparent`), and the
 * function runs in its context, so the spans it makes are children of it.
 * @internal
 */
export class ServerObserver {
  readonly #serverId: string;
  readonly #metrics: CallMetrics;

  constructor(serverId: string, logger: Logger) {
    this.#serverId = serverId;
    const debug = debugging ? (line: string) => logger.debug(`server ${serverId}: served ${line}`) : undefined;
    this.#metrics = new CallMetrics('server', serverId, debug);
  }

  start(method: string, message: Delivery): ServerObservation {
    const start = performance.now();
    const otel = openTelemetry();
    if (otel === undefined || !tracing(otel)) return { start, span: undefined, context: undefined };
    const headers = message.properties.headers;
    const active = otel.context.active();
    const parent = typeof headers === 'object' && headers !== null ? otel.propagation.extract(active, headers, headerGetter) : active;
    const { correlationId } = message.properties;
    const span = otel.trace.getTracer('qam').startSpan(
      `${this.#serverId}/${method}`,
      {
        kind: otel.SpanKind.SERVER,
        attributes: {
          'rpc.system': 'qam',
          'rpc.service': this.#serverId,
          'rpc.method': method,
          'messaging.system': 'rabbitmq',
          'messaging.operation.type': 'process',
          'messaging.destination.name': message.routingKey,
          ...(typeof correlationId === 'string' ? { 'messaging.message.conversation_id': correlationId } : {}),
        },
      },
      parent,
    );
    return { start, span, context: otel.trace.setSpan(parent, span) };
  }

  /** Runs `fn` in the call's trace context, when it has one. */
  within<T>(observation: ServerObservation, fn: () => T): T {
    const otel = openTelemetry();
    return observation.context === undefined || otel === undefined ? fn() : otel.context.with(observation.context, fn);
  }

  end(observation: ServerObservation, method: string, message: Delivery, outcome: CallOutcome): void {
    const code = 'error' in outcome ? errorCodeOf(outcome.error) : undefined;
    const { correlationId } = message.properties;
    this.#metrics.record(
      method,
      performance.now() - observation.start,
      code,
      typeof correlationId === 'string' ? correlationId : undefined,
    );
    const span = observation.span;
    if (span === undefined) return;
    if ('error' in outcome) {
      span.setAttribute('error.type', code ?? 'ERROR');
      // What a function threw may be hostile (a Proxy whose traps throw): read only through the guards.
      const error = isError(outcome.error) ? outcome.error : undefined;
      if (error !== undefined) span.recordException({ name: textOf(error, 'name') ?? 'Error', message: textOf(error, 'message') ?? '' });
      span.setStatus({ code: spanStatusError, message: (error === undefined ? undefined : textOf(error, 'message')) ?? String(code) });
    }
    span.end();
  }

  stats(): Record<string, MethodStats> {
    return this.#metrics.snapshot();
  }
}
