/**
 * The AMQP port: the few broker operations qam uses, and the only way the rest of the library
 * reaches a broker. Two adapters implement it: amqplib's (RabbitMQ over TCP or TLS) and the
 * embedded in-process broker. Nothing above this file imports a broker client, so everything above
 * it can be tested over a fake or the embedded broker.
 *
 * Failures are {@link PortError}s, already classified ({@link FailureKind}), so callers never match
 * reply codes or message text themselves.
 * @internal
 */

import type { ConnectFailedReason } from '../errors.js';
import type { Logger } from '../logger.js';

/** Exchange types qam declares. */
export type ExchangeType = 'direct' | 'fanout' | 'topic' | 'headers';

/** Properties qam sets on a message it publishes (a field that is undefined is absent). */
export interface MessageProperties {
  contentType?: string | undefined;
  contentEncoding?: string | undefined;
  headers?: Record<string, unknown> | undefined;
  deliveryMode?: 1 | 2 | undefined;
  correlationId?: string | undefined;
  replyTo?: string | undefined;
  /** Milliseconds, as a decimal string (AMQP's per-message TTL). */
  expiration?: string | undefined;
  messageId?: string | undefined;
  timestamp?: number | undefined;
  type?: string | undefined;
  userId?: string | undefined;
  appId?: string | undefined;
  priority?: number | undefined;
}

/**
 * Properties of a message as it arrived: whatever its sender put there, so every field is
 * `unknown` until checked.
 */
export type IncomingProperties = { readonly [K in keyof MessageProperties]?: unknown };

/** A message delivered to a consumer. */
export interface Delivery {
  readonly content: Buffer;
  readonly properties: IncomingProperties;
  /** True when the broker delivered this message before (to a consumer that did not acknowledge it). */
  readonly redelivered: boolean;
  readonly exchange: string;
  readonly routingKey: string;
  /** The consumer's channel's tag for this delivery (for ack/nack). */
  readonly deliveryTag: number;
}

/** A `mandatory` message the broker could not route, returned to its publisher. */
export interface Returned {
  readonly content: Buffer;
  readonly properties: IncomingProperties;
  readonly replyCode: number;
  readonly replyText: string;
  readonly exchange: string;
  readonly routingKey: string;
}

export interface DeclareExchangeOptions {
  durable: boolean;
  autoDelete: boolean;
  arguments?: Record<string, unknown>;
}

export interface DeclareQueueOptions {
  durable: boolean;
  exclusive: boolean;
  autoDelete: boolean;
  /** Milliseconds unused before the broker deletes the queue (`x-expires`). */
  expires?: number;
  arguments?: Record<string, unknown>;
}

export interface ConsumeOptions {
  /** The broker considers a message acknowledged once sent (direct reply-to requires it). */
  noAck: boolean;
  exclusive?: boolean;
}

/**
 * Told once the broker confirmed a publish on a confirm channel (`undefined`), or of why it will
 * not (the broker nacked it, or the channel or connection closed first).
 */
export type Confirmation = (failure: PortError | undefined) => void;

/** One AMQP channel. Its events fire at most once each per channel, in the order they happened. */
export interface AmqpChannel {
  /** True for a channel opened with publisher confirms. */
  readonly confirms: boolean;
  declareExchange(name: string, type: ExchangeType, options: DeclareExchangeOptions): Promise<void>;
  /** Fails with kind `'not-found'` (and closes the channel) when the exchange does not exist. */
  checkExchange(name: string): Promise<void>;
  declareQueue(name: string, options: DeclareQueueOptions): Promise<void>;
  bindQueue(queue: string, exchange: string, routingKey: string): Promise<void>;
  deleteQueue(name: string): Promise<void>;
  deleteExchange(name: string, options?: { ifUnused?: boolean }): Promise<void>;
  /** At most `count` unacknowledged deliveries to this channel's consumers. */
  prefetch(count: number): Promise<void>;
  /**
   * Consumes `queue`; resolves with the consumer tag. `onCancel` runs when the broker cancels the
   * consumer (its queue was deleted).
   */
  consume(queue: string, onDelivery: (delivery: Delivery) => void, options: ConsumeOptions, onCancel?: () => void): Promise<string>;
  cancel(consumerTag: string): Promise<void>;
  /** Acknowledges a delivery of this channel. A no-op once the channel closed: the broker redelivers the message. */
  ack(delivery: Delivery): void;
  /** Rejects a delivery of this channel, requeued or dropped. A no-op once the channel closed. */
  nack(delivery: Delivery, requeue: boolean): void;
  /**
   * Publishes a message. On a confirm channel, `confirmed` is told how it ended. Throws a
   * PortError of kind `'closed'` on a closed channel. Returns false when the connection's write
   * buffer is full: the message is written later, in order, but the caller should wait for
   * {@link whenWritable} before publishing more.
   */
  publish(
    exchange: string,
    routingKey: string,
    content: Buffer,
    properties: MessageProperties,
    options: { mandatory: boolean },
    confirmed?: Confirmation,
  ): boolean;
  /**
   * Resolves once the connection can take more writes: at once when it can, else when its write
   * buffer drained and the broker does not block it. Rejects when the channel closes first.
   */
  whenWritable(): Promise<void>;
  /** Registers the handler of returned `mandatory` messages. */
  onReturn(handler: (returned: Returned) => void): void;
  /** Registers the handler told when the channel closed: with the broker's error, or undefined when closed by qam or with its connection. */
  onClose(handler: (error: PortError | undefined) => void): void;
  /** Closes the channel; resolves even if it had closed already. */
  close(): Promise<void>;
}

/** One AMQP connection. */
export interface AmqpConnection {
  /** The broker user this connection is logged in as. */
  readonly username: string;
  openChannel(options: { confirms: boolean }): Promise<AmqpChannel>;
  /** True while the broker blocks publishing on this connection (a resource alarm). */
  readonly blocked: boolean;
  /** Registers the handler of `connection.blocked` (true, with the broker's reason) and `connection.unblocked` (false). */
  onBlocked(handler: (blocked: boolean, reason: string | undefined) => void): void;
  /** Registers the handler told once when the connection closed: with the cause, or undefined when closed by qam. */
  onClose(handler: (error: PortError | undefined) => void): void;
  /**
   * Whether the open connection keeps the Node process alive (its socket and timers ref'ed, as
   * when it opened) or lets it exit when nothing else is left to do (unref'ed).
   */
  keepAlive(alive: boolean): void;
  /** Closes the connection; resolves even if it had closed already, and promptly while the broker blocks it. */
  close(): Promise<void>;
}

/** What {@link AmqpPort.connect} is given, resolved from the options once. */
export interface ConnectTarget {
  /** The broker URL, with credentials (`amqp:`, `amqps:` or `memory:`). */
  readonly url: string;
  /** The URL with the password masked, for messages. */
  readonly label: string;
  readonly username: string;
  readonly heartbeatSeconds: number;
  readonly connectTimeoutMs: number;
  readonly connectionName: string | undefined;
  /** TLS material for `amqps:`. */
  readonly tls: Readonly<Record<string, unknown>> | undefined;
  /** Where the adapter logs what the user should know of (at debug level: nothing goes wrong). */
  readonly logger: Logger;
}

/** A way to reach brokers: amqplib over the network, or the embedded broker. */
export interface AmqpPort {
  connect(target: ConnectTarget): Promise<AmqpConnection>;
}

/**
 * What went wrong, by AMQP reply code where the broker gave one:
 * - `'access-refused'` 403, and a refused login or vhost permission;
 * - `'not-found'` 404 (an exchange or queue that does not exist);
 * - `'precondition-failed'` 406 (declared with other flags, an unknown delivery tag, …);
 * - `'resource-locked'` 405 (an exclusive queue of another connection);
 * - `'closed'`: the channel or connection had closed (or closed before the operation finished);
 * - `'connect-failed'`: no connection could be made (see {@link PortError.reason});
 * - `'tls'`: the TLS handshake failed;
 * - `'internal'`: 541 and other hard errors;
 * - `'nacked'`: the broker nacked a publish on a confirm channel (a queue it was routed to did not
 *   take it), the channel staying open;
 * - `'other'`.
 */
export type FailureKind =
  | 'access-refused'
  | 'not-found'
  | 'precondition-failed'
  | 'resource-locked'
  | 'closed'
  | 'connect-failed'
  | 'tls'
  | 'internal'
  | 'nacked'
  | 'other';

/** A failure of the port, classified. `cause` is the adapter's own error. */
export class PortError extends Error {
  override name = 'PortError';
  readonly kind: FailureKind;
  /** The AMQP reply code, when the broker gave one. */
  readonly replyCode: number | undefined;
  /** Why no connection could be made, for kind `'connect-failed'`. */
  readonly reason: ConnectFailedReason | undefined;
  /** True when the broker closed the whole connection, not just a channel. */
  readonly connection: boolean;

  constructor(
    kind: FailureKind,
    message: string,
    options: { replyCode?: number | undefined; reason?: ConnectFailedReason; connection?: boolean; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.kind = kind;
    this.replyCode = options.replyCode;
    this.reason = options.reason;
    this.connection = options.connection ?? false;
  }
}

/** The kind of a port failure; `'other'` for anything that is not a PortError. */
export function failureKind(error: unknown): FailureKind {
  return error instanceof PortError ? error.kind : 'other';
}
