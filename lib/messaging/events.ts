import { randomBytes } from 'node:crypto';
import { QAMConnection, connectionFor, connectionRules, connectionUserRules, type ConnectionOptions } from '../amqp/connection.js';
import type { AmqpChannel, Delivery, IncomingProperties, MessageProperties } from '../amqp/port.js';
import { QAMClosedException, describeError } from '../errors.js';
import { readFingerprint, type Fingerprint } from '../fingerprint.js';
import type { Logger } from '../logger.js';
import { boolean, checkOptions, integerBetween, nonEmptyString, positiveInteger, rule, type Rules } from '../options.js';
import { sizeError } from '../size-limit.js';
import { fingerprintHeader, reservedHeaderPrefix } from '../protocols/native/wire.js';
import { QueueConsumer } from './consumer.js';
import { encodeMessage, postageContentType, postageMessage } from './postage.js';

export interface QAMEventsOptions extends ConnectionOptions {
  /** A shared connection (else the events open their own from the connection options). */
  connection?: QAMConnection;
  /** The topic exchange events go through, declared durable. @default 'qam.events' */
  exchange?: string;
}

export interface PublishEventOptions {
  /** AMQP headers; names starting with `x-qam-` are reserved. */
  headers?: Record<string, unknown>;
  /** Kept on disk by the broker (delivery mode 2). @default true */
  persistent?: boolean;
  /** Reject with NO_ROUTE when no subscriber's pattern matches. @default false: an event nobody listens to is dropped */
  mandatory?: boolean;
}

export interface SubscribeOptions {
  /**
   * Join the named group: its members share one durable queue (`<exchange>.group.<group>`) and
   * each event goes to one of them (competing consumers); the queue keeps events while no member
   * runs. Without a group the subscriber is a broadcast subscriber with an exclusive queue of its
   * own that lives as long as its connection, and gets every matching event.
   */
  group?: string;
  /** Events handled at a time. @default 10 */
  prefetch?: number;
  /**
   * An exchange to dead-letter events whose handler failed twice (declared as the queue's
   * `x-dead-letter-exchange`); without one they are dropped. Part of the queue's declaration, so
   * every member of a group must give the same.
   */
  deadLetterExchange?: string;
  /**
   * The largest event body read, in bytes: a larger one is not parsed, but logged, counted as a
   * bad event and dropped (or dead-lettered). @default 16 MiB
   */
  maxMessageBytes?: number;
}

/** What a handler is told about an event besides its payload. */
export interface EventContext {
  readonly routingKey: string;
  readonly exchange: string;
  /** True when this is the event's second delivery (its handler failed once, or a subscriber went away with it). */
  readonly redelivered: boolean;
  /** The fingerprint the publisher claims (header `x-qam-fingerprint`), never verified identity. */
  readonly fingerprint: Fingerprint | undefined;
  readonly properties: IncomingProperties;
}

/** Handles one event; a throw or rejection goes to the failure policy (requeued once, then dead-lettered or dropped). */
export type EventHandler = (payload: unknown, context: EventContext) => unknown;

/** A snapshot of what a subscription did. */
export interface EventSubscriptionStats {
  received: number;
  /** Handled without error, and acknowledged. */
  handled: number;
  /** Failed once, put back in the queue. */
  requeued: number;
  /** Failed on their second delivery and handed to the dead-letter exchange. */
  deadLettered: number;
  /** Failed on their second delivery, no dead-letter exchange: dropped. */
  dropped: number;
  /** Bodies that are not JSON or are above `maxMessageBytes`: dropped (or dead-lettered) at once. */
  badEvents: number;
}

/** One subscription of a {@link QAMEvents}. */
export interface EventSubscription {
  /** The queue it consumes. */
  readonly queue: string;
  readonly group: string | undefined;
  stats(): EventSubscriptionStats;
  /** Stops consuming once running handlers finished; `deleteQueue` also deletes a group's queue. */
  close(options?: { deleteQueue?: boolean }): Promise<void>;
}

const eventsRules: Rules<QAMEventsOptions> = {
  ...connectionRules,
  connection: connectionUserRules.connection,
  exchange: nonEmptyString,
};

const headersRule = rule('an object of headers without the reserved prefix x-qam-', (value) => {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  return Object.keys(value).every((key) => !key.toLowerCase().startsWith(reservedHeaderPrefix));
});

const publishRules: Rules<PublishEventOptions> = { headers: headersRule, persistent: boolean, mandatory: boolean };

const subscribeRules: Rules<SubscribeOptions> = {
  group: nonEmptyString,
  prefetch: integerBetween(1, 65535),
  deadLetterExchange: nonEmptyString,
  maxMessageBytes: positiveInteger,
};

/** Topic patterns: words separated by dots, `*` one word, `#` any number. */
function checkPatterns(patterns: unknown): asserts patterns is string | readonly string[] {
  const list: unknown[] = Array.isArray(patterns) ? patterns : [patterns];
  if (list.length === 0 || !list.every((pattern) => typeof pattern === 'string')) {
    throw new TypeError('QAMEvents.subscribe: the pattern must be a string or a non-empty array of strings, such as "order.*" or "#"');
  }
}

/**
 * Events on a topic exchange: `publish(routingKey, payload)` sends a JSON payload with the
 * publisher's fingerprint; `subscribe(pattern, handler)` receives every matching event (a
 * broadcast subscriber) or, with `{ group }`, shares the events with the group's other members
 * (a work queue). Events are acknowledged after their handler; a handler that fails has its event
 * requeued once, and on its second failure dead-lettered (with `deadLetterExchange`) or dropped.
 *
 * @example
 * const events = new QAMEvents({ exchange: 'shop.events' });
 * await events.subscribe('order.*', (order, { routingKey }) => console.log(routingKey, order));
 * await events.subscribe('order.created', (order) => bill(order), { group: 'billing' });
 * await events.publish('order.created', { id: 7 });
 */
export class QAMEvents {
  readonly connection: QAMConnection;
  /** The topic exchange. */
  readonly exchange: string;
  readonly #logger: Logger;
  readonly #owned: boolean;
  readonly #subscriptions = new Set<Subscription>();
  #declared = false;
  readonly #detach: () => void;
  #closed = false;

  constructor(options: QAMEventsOptions = {}) {
    checkOptions('QAMEvents', options, eventsRules);
    const { exchange, ...where } = options;
    this.connection = connectionFor('QAMEvents', where);
    this.#logger = options.logger ?? this.connection.logger;
    this.#owned = options.connection === undefined;
    this.exchange = exchange ?? 'qam.events';
    this.#detach = this.connection.attach({ onConnect: () => undefined, onDisconnect: () => (this.#declared = false) });
  }

  /** Publishes `payload` (anything JSON can carry) with `routingKey`; resolves once the broker confirmed it. */
  async publish(routingKey: string, payload: unknown, options: PublishEventOptions = {}): Promise<void> {
    if (typeof routingKey !== 'string') throw new TypeError('QAMEvents.publish: the routing key must be a string');
    checkOptions('QAMEvents.publish', options, publishRules);
    const body = JSON.stringify(payload) as string | undefined;
    if (body === undefined) throw new TypeError('QAMEvents.publish: the payload must be something JSON can carry');
    await this.#send(routingKey, Buffer.from(body), options);
  }

  /**
   * Broadcasts this component's status as an event: Postage's status message (type `status`,
   * named by the status), so a `QAMProcessor` bound to the exchange dispatches it to
   * `on('status', status, …)` and a subscriber gets the message dictionary as payload.
   * @param routingKey @default `status.<the fingerprint's name>`
   */
  async status(status: string, routingKey?: string): Promise<void> {
    if (typeof status !== 'string' || status === '') throw new TypeError('QAMEvents.status: the status must be a non-empty string');
    const { fingerprint } = this.connection;
    const key = routingKey ?? `status.${fingerprint.name ?? 'unnamed'}`;
    await this.#send(key, encodeMessage(postageMessage('status', status, 'message', fingerprint, {})), {});
  }

  /** Receives the events whose routing key matches `pattern` (or any of several). Resolves once consuming. */
  async subscribe(pattern: string | readonly string[], handler: EventHandler, options: SubscribeOptions = {}): Promise<EventSubscription> {
    checkPatterns(pattern);
    if (typeof handler !== 'function') throw new TypeError('QAMEvents.subscribe: the handler must be a function');
    checkOptions('QAMEvents.subscribe', options, subscribeRules);
    this.#checkOpen();
    const subscription = new Subscription(this, this.#logger, typeof pattern === 'string' ? [pattern] : pattern, handler, options, () =>
      this.#subscriptions.delete(subscription),
    );
    this.#subscriptions.add(subscription);
    try {
      await subscription.start();
    } catch (error) {
      this.#subscriptions.delete(subscription);
      throw error;
    }
    return subscription;
  }

  /** Closes every subscription (their queues stay, but a broadcast one goes with its consumer), and the connection if the events opened it. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#detach();
    await Promise.all([...this.#subscriptions].map((subscription) => subscription.close()));
    if (this.#owned) await this.connection.close();
  }

  /** @internal Declares the topic exchange (durable, not auto-delete). */
  async declare(channel: AmqpChannel): Promise<void> {
    await channel.declareExchange(this.exchange, 'topic', { durable: true, autoDelete: false });
  }

  async #send(routingKey: string, body: Buffer, options: PublishEventOptions): Promise<void> {
    this.#checkOpen();
    if (!this.#declared) {
      const channel = await this.connection.openChannel({ confirms: false });
      try {
        await this.declare(channel);
      } finally {
        await channel.close();
      }
      this.#declared = true;
    }
    const properties: MessageProperties = { contentType: postageContentType, deliveryMode: options.persistent === false ? 1 : 2 };
    if (options.headers !== undefined) properties.headers = options.headers;
    await this.connection.messaging.send(this.exchange, routingKey, body, properties, options.mandatory ?? false);
  }

  #checkOpen(): void {
    if (this.#closed) throw new QAMClosedException('This QAMEvents is closed');
  }
}

class Subscription implements EventSubscription {
  readonly queue: string;
  readonly group: string | undefined;
  readonly #events: QAMEvents;
  readonly #logger: Logger;
  readonly #patterns: readonly string[];
  readonly #handler: EventHandler;
  readonly #deadLetterExchange: string | undefined;
  readonly #maxMessageBytes: number;
  readonly #consumer: QueueConsumer;
  readonly #inFlight = new Set<Promise<void>>();
  readonly #forget: () => void;
  readonly #stats: EventSubscriptionStats = { received: 0, handled: 0, requeued: 0, deadLettered: 0, dropped: 0, badEvents: 0 };
  #closed = false;

  constructor(
    events: QAMEvents,
    logger: Logger,
    patterns: readonly string[],
    handler: EventHandler,
    options: SubscribeOptions,
    forget: () => void,
  ) {
    this.#events = events;
    this.#logger = logger;
    this.#patterns = patterns;
    this.#handler = handler;
    this.#deadLetterExchange = options.deadLetterExchange;
    this.#maxMessageBytes = options.maxMessageBytes ?? 16 * 1024 * 1024;
    this.#forget = forget;
    this.group = options.group;
    this.queue =
      options.group === undefined
        ? `${events.exchange}.subscriber.${randomBytes(9).toString('base64url')}`
        : `${events.exchange}.group.${options.group}`;
    this.#consumer = new QueueConsumer({
      owner: `event subscriber ${this.queue}`,
      connection: events.connection,
      logger,
      prefetch: options.prefetch ?? 10,
      declare: (channel) => this.#declare(channel),
      queues: () => [this.queue],
      receive: (channel, delivery) => this.#receive(channel, delivery),
    });
  }

  start(): Promise<void> {
    return this.#consumer.start();
  }

  stats(): EventSubscriptionStats {
    return { ...this.#stats };
  }

  async close(options: { deleteQueue?: boolean } = {}): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#forget();
    await this.#consumer.stop(async () => {
      while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
    });
    const { connection } = this.#events;
    if ((options.deleteQueue === true || this.group === undefined) && connection.connected) {
      const channel = await connection.openChannel({ confirms: false });
      await channel.deleteQueue(this.queue).catch(() => undefined);
      await channel.close();
    }
  }

  async #declare(channel: AmqpChannel): Promise<void> {
    await this.#events.declare(channel);
    const broadcast = this.group === undefined;
    const queueArguments = this.#deadLetterExchange === undefined ? undefined : { 'x-dead-letter-exchange': this.#deadLetterExchange };
    await channel.declareQueue(this.queue, {
      durable: !broadcast,
      exclusive: broadcast,
      autoDelete: broadcast,
      ...(queueArguments === undefined ? {} : { arguments: queueArguments }),
    });
    for (const pattern of this.#patterns) await channel.bindQueue(this.queue, this.#events.exchange, pattern);
  }

  #receive(channel: AmqpChannel, delivery: Delivery): void {
    const work = this.#handle(channel, delivery).finally(() => this.#inFlight.delete(work));
    this.#inFlight.add(work);
  }

  async #handle(channel: AmqpChannel, delivery: Delivery): Promise<void> {
    this.#stats.received++;
    const tooLarge = sizeError('The event', delivery.content.length, this.#maxMessageBytes, 'event subscriber');
    if (tooLarge !== undefined) {
      this.#stats.badEvents++;
      this.#logger.warn(`event subscriber ${this.queue}: an event with key ${delivery.routingKey} is dropped: ${tooLarge.message}`);
      channel.nack(delivery, false);
      return;
    }
    let payload: unknown;
    try {
      payload = JSON.parse(delivery.content.toString('utf8'));
    } catch {
      this.#stats.badEvents++;
      this.#logger.warn(`event subscriber ${this.queue}: an event with key ${delivery.routingKey} is not JSON; dropped`);
      channel.nack(delivery, false);
      return;
    }
    const headers = delivery.properties.headers;
    const context: EventContext = {
      routingKey: delivery.routingKey,
      exchange: delivery.exchange,
      redelivered: delivery.redelivered,
      fingerprint:
        typeof headers === 'object' && headers !== null
          ? readFingerprint((headers as Record<string, unknown>)[fingerprintHeader])
          : undefined,
      properties: delivery.properties,
    };
    try {
      await this.#handler(payload, context);
    } catch (error) {
      this.#failed(channel, delivery, error);
      return;
    }
    this.#stats.handled++;
    channel.ack(delivery);
  }

  /**
   * The failure policy: the first failure requeues the event (the broker marks it redelivered);
   * a redelivered event that fails again is rejected for good, which dead-letters it when the
   * queue has a dead-letter exchange and drops it otherwise. Never an endless loop.
   */
  #failed(channel: AmqpChannel, delivery: Delivery, error: unknown): void {
    const what = `event subscriber ${this.queue}: the handler of an event with key ${delivery.routingKey} failed`;
    if (!delivery.redelivered) {
      this.#stats.requeued++;
      this.#logger.warn(`${what}, requeued once: ${describeError(error)}`);
      channel.nack(delivery, true);
      return;
    }
    if (this.#deadLetterExchange === undefined) {
      this.#stats.dropped++;
      this.#logger.error(`${what} again, dropped: ${describeError(error)}`);
    } else {
      this.#stats.deadLettered++;
      this.#logger.error(`${what} again, dead-lettered to ${this.#deadLetterExchange}: ${describeError(error)}`);
    }
    channel.nack(delivery, false);
  }
}
