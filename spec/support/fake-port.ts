/**
 * A scripted fake of the AMQP port (lib/amqp/port.ts), for tests of everything above it without a
 * broker: a real QAMServer, QAMProxy or CallClient runs on it through a QAMConnection to
 * `port.url` (`fake://<name>`, registered with the connection's internal `registerPort`).
 *
 * It records what is declared, published and acknowledged, and lets the test act as the broker:
 * deliver messages to consumers, return `mandatory` messages, confirm or fail publishes (at once
 * on the next turn by default, or by hand), close channels and connections with a PortError,
 * cancel consumers, fill the socket and block the connection. No routing and no broker rules
 * beyond these few, which the code above the port relies on:
 * - while the connection is blocked, publishes are taken (and return false) but nothing else is
 *   answered: channel opens and declarations wait until it is unblocked;
 * - acknowledging a delivery the channel does not hold (acknowledged twice, or of another channel)
 *   closes the channel with 406 PRECONDITION_FAILED, as RabbitMQ does;
 * - a channel that closes fails its unconfirmed publishes and its waits for write capacity.
 */
import { QAMConnection, silentLogger, type ConnectionOptions } from '../../lib/index.js';
import { registerPort } from '../../lib/amqp/connection.js';
import {
  PortError,
  type AmqpChannel,
  type AmqpConnection,
  type AmqpPort,
  type Confirmation,
  type ConnectTarget,
  type ConsumeOptions,
  type DeclareExchangeOptions,
  type DeclareQueueOptions,
  type Delivery,
  type ExchangeType,
  type IncomingProperties,
  type MessageProperties,
  type Returned,
} from '../../lib/amqp/port.js';

/** The real clock and timers, taken before a test can install jest's fake ones. */
const realSetTimeout = globalThis.setTimeout;
const realClearTimeout = globalThis.clearTimeout;
const realNow = performance.now.bind(performance);

const fakePorts = new Map<string, FakePort>();

registerPort('fake:', {
  connect(target) {
    const port = fakePorts.get(new URL(target.url).hostname);
    if (port === undefined)
      return Promise.reject(new PortError('connect-failed', `no fake port at ${target.label}`, { reason: 'unknown-host' }));
    return port.connect(target);
  },
});

/** Waits `count` turns of the event loop: long enough for what needs no broker answer to happen. */
export async function turns(count = 10): Promise<void> {
  for (let i = 0; i < count; i++) await new Promise((resolve) => setImmediate(resolve));
}

/** A message a fake channel was asked to publish. */
export class Published {
  /** `'none'` on a channel without confirms; else pending until confirmed or failed. */
  state: 'none' | 'pending' | 'confirmed' | 'failed';
  readonly #confirmed: Confirmation | undefined;

  constructor(
    readonly channel: FakeChannel,
    readonly exchange: string,
    readonly routingKey: string,
    readonly content: Buffer,
    readonly properties: MessageProperties,
    readonly mandatory: boolean,
    confirmed: Confirmation | undefined,
  ) {
    this.#confirmed = confirmed;
    this.state = confirmed === undefined ? 'none' : 'pending';
  }

  /** The broker confirms the publish. */
  confirm(): void {
    this.#settle(undefined);
  }

  /** The publish fails with `error` (a nack, or the channel closing before the confirm). */
  fail(error: PortError): void {
    this.#settle(error);
  }

  #settle(failure: PortError | undefined): void {
    if (this.state !== 'pending') return;
    this.state = failure === undefined ? 'confirmed' : 'failed';
    this.#confirmed?.(failure);
    this.channel.port.notify();
  }
}

/** A consumer of a queue. */
export interface FakeConsumer {
  readonly channel: FakeChannel;
  readonly queue: string;
  readonly tag: string;
  readonly options: ConsumeOptions;
  readonly onDelivery: (delivery: Delivery) => void;
  readonly onCancel: (() => void) | undefined;
}

/** What a test may set of a delivery beyond its body and properties. */
export interface DeliveryFields {
  redelivered?: boolean;
  exchange?: string;
  routingKey?: string;
}

/** The broker the code under test sees, and the test's controls of it. */
export class FakePort implements AmqpPort {
  static #count = 0;
  readonly name = `fake-${++FakePort.#count}`;
  /** The URL a QAMConnection reaches this port with. */
  readonly url = `fake://${this.name}`;
  readonly connections: FakeConnection[] = [];
  readonly channels: FakeChannel[] = [];
  /** Every publish on every channel, in order. */
  readonly published: Published[] = [];
  /** The active consumer of each queue (the latest one). */
  readonly consumers = new Map<string, FakeConsumer>();
  /** Delivery tags acknowledged (tags are unique across channels here). */
  readonly acked = new Set<number>();
  /** Delivery tags rejected, with their requeue flag. */
  readonly nacked = new Map<number, boolean>();
  /** Topology operations in order, such as `declareQueue server_calc_queue`. */
  readonly operations: string[] = [];
  /** False to confirm publishes by hand ({@link Published.confirm}); else each is confirmed on the next turn. */
  autoConfirm = true;
  /** When set, connecting fails with it. */
  refuseConnect: PortError | undefined;
  /**
   * Decides the broker's answer to a topology operation (`'declareQueue'`, `'checkExchange'`, …)
   * on `name`: an error closes the channel with it, as a broker does.
   */
  refuse: ((operation: string, name: string) => PortError | undefined) | undefined;
  #nextTag = 1;
  #waiters: Array<() => void> = [];

  /** A QAMConnection to this port (not yet connected). */
  connection(options: ConnectionOptions = {}): QAMConnection {
    return new QAMConnection({ url: this.url, logger: silentLogger, ...options });
  }

  constructor() {
    fakePorts.set(this.name, this);
  }

  connect(target: ConnectTarget): Promise<FakeConnection> {
    if (this.refuseConnect !== undefined) return Promise.reject(this.refuseConnect);
    const connection = new FakeConnection(this, target.username);
    this.connections.push(connection);
    this.notify();
    return Promise.resolve(connection);
  }

  /** The connection opened last. */
  get lastConnection(): FakeConnection {
    const connection = this.connections.at(-1);
    if (connection === undefined) throw new Error('nothing connected to the fake port');
    return connection;
  }

  /** Hands the consumer of `queue` a message; returns the delivery. Throws when nothing consumes the queue. */
  deliver(queue: string, content: Buffer, properties: IncomingProperties = {}, fields: DeliveryFields = {}): Delivery {
    const consumer = this.consumers.get(queue);
    if (consumer === undefined) throw new Error(`nothing consumes ${queue}`);
    const delivery: Delivery = {
      content,
      properties,
      redelivered: fields.redelivered ?? false,
      exchange: fields.exchange ?? '',
      routingKey: fields.routingKey ?? queue,
      deliveryTag: this.#nextTag++,
    };
    if (!consumer.options.noAck) consumer.channel.unacked.add(delivery.deliveryTag);
    consumer.onDelivery(delivery);
    return delivery;
  }

  /** The broker returns an unroutable `mandatory` message to its publisher. */
  returnMessage(message: Published, replyCode = 312, replyText = 'NO_ROUTE'): void {
    const { exchange, routingKey, content, properties } = message;
    message.channel.returned({ content, properties, replyCode, replyText, exchange, routingKey });
  }

  /** The broker cancels the consumer of `queue` (its queue was deleted). */
  cancelConsumer(queue: string): void {
    const consumer = this.consumers.get(queue);
    if (consumer === undefined) throw new Error(`nothing consumes ${queue}`);
    this.consumers.delete(queue);
    consumer.onCancel?.();
  }

  /**
   * Resolves once `predicate` holds, checking now and after every publish, confirm, ack, open,
   * consume and close; rejects, naming the predicate, when it still does not hold after
   * `timeoutMs` of real time (jest's fake timers do not stop that clock).
   */
  async until(predicate: () => boolean, timeoutMs = 5_000): Promise<void> {
    const deadline = realNow() + timeoutMs;
    while (!predicate()) {
      const left = deadline - realNow();
      if (left <= 0) throw new Error(`fake port: ${predicate.toString()} did not hold within ${timeoutMs} ms`);
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        timer = realSetTimeout(resolve, left);
      });
      realClearTimeout(timer);
    }
  }

  /** Wakes {@link until}. */
  notify(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }
}

/** One fake connection. */
export class FakeConnection implements AmqpConnection {
  readonly channels: FakeChannel[] = [];
  closed = false;
  /** True while the socket's buffer is full: publishes return false until {@link drain}. */
  congested = false;
  #blocked = false;
  #onBlocked: ((blocked: boolean, reason: string | undefined) => void) | undefined;
  #onClose: ((error: PortError | undefined) => void) | undefined;
  #wake: Array<() => void> = [];

  constructor(
    readonly port: FakePort,
    readonly username: string,
  ) {}

  get blocked(): boolean {
    return this.#blocked;
  }

  /** True when publishes must wait: blocked or congested. */
  get full(): boolean {
    return this.#blocked || this.congested;
  }

  async openChannel(options: { confirms: boolean }): Promise<FakeChannel> {
    await this.brokerAnswers();
    const channel = new FakeChannel(this, options.confirms);
    this.channels.push(channel);
    this.port.channels.push(channel);
    this.port.notify();
    return channel;
  }

  onBlocked(handler: (blocked: boolean, reason: string | undefined) => void): void {
    this.#onBlocked = handler;
  }

  onClose(handler: (error: PortError | undefined) => void): void {
    this.#onClose = handler;
  }

  /** What the connection was last told by keepAlive() (true as it opened, as a socket starts ref'ed). */
  keepsAlive = true;

  keepAlive(alive: boolean): void {
    this.keepsAlive = alive;
  }

  async close(): Promise<void> {
    this.#end(undefined);
  }

  /** The broker blocks the connection (a resource alarm). */
  block(reason = 'low on memory'): void {
    this.#blocked = true;
    this.#onBlocked?.(true, reason);
  }

  unblock(): void {
    this.#blocked = false;
    this.#onBlocked?.(false, undefined);
    this.#wakeAll();
  }

  /** The socket's buffer fills: publishes return false until {@link drain}. */
  congest(): void {
    this.congested = true;
  }

  drain(): void {
    this.congested = false;
    this.#wakeAll();
  }

  /** The connection is lost (the broker closed it, or the socket died) with `error`. */
  lose(error = new PortError('closed', 'the connection was lost', { connection: true })): void {
    this.#end(error);
  }

  /** Resolves once the broker reads what this connection sends (at once unless blocked); rejects once it closed. */
  async brokerAnswers(): Promise<void> {
    while (this.#blocked && !this.closed) await new Promise<void>((resolve) => this.#wake.push(resolve));
    if (this.closed) throw new PortError('closed', 'the connection is closed', { connection: true });
  }

  #wakeAll(): void {
    const waiters = this.#wake;
    this.#wake = [];
    for (const wake of waiters) wake();
    if (!this.full) for (const channel of this.channels) channel.wakeWriters();
  }

  #end(error: PortError | undefined): void {
    if (this.closed) return;
    this.closed = true;
    this.#blocked = false;
    for (const channel of this.channels)
      channel.end(undefined, error ?? new PortError('closed', 'the connection closed', { connection: true }));
    this.#wakeAll();
    this.#onClose?.(error);
    this.port.notify();
  }
}

/** One fake channel. */
export class FakeChannel implements AmqpChannel {
  static #count = 0;
  readonly id = ++FakeChannel.#count;
  readonly port: FakePort;
  closed = false;
  /** The error the channel closed with, when the broker closed it. */
  closeError: PortError | undefined;
  prefetchCount: number | undefined;
  /** Delivery tags delivered to this channel's acknowledging consumers and not yet acknowledged. */
  readonly unacked = new Set<number>();
  #onReturn: ((returned: Returned) => void) | undefined;
  #onClose: ((error: PortError | undefined) => void) | undefined;
  #consumerTags = 0;
  readonly #writers: Array<{ resolve: () => void; reject: (error: PortError) => void }> = [];

  constructor(
    readonly connection: FakeConnection,
    readonly confirms: boolean,
  ) {
    this.port = connection.port;
  }

  declareExchange(name: string, type: ExchangeType, _options: DeclareExchangeOptions): Promise<void> {
    return this.#operation('declareExchange', name, type);
  }

  checkExchange(name: string): Promise<void> {
    return this.#operation('checkExchange', name);
  }

  declareQueue(name: string, _options: DeclareQueueOptions): Promise<void> {
    return this.#operation('declareQueue', name);
  }

  bindQueue(queue: string, exchange: string, routingKey: string): Promise<void> {
    return this.#operation('bindQueue', queue, exchange, routingKey);
  }

  deleteQueue(name: string): Promise<void> {
    return this.#operation('deleteQueue', name);
  }

  deleteExchange(name: string): Promise<void> {
    return this.#operation('deleteExchange', name);
  }

  async prefetch(count: number): Promise<void> {
    await this.#answered();
    this.prefetchCount = count;
  }

  async consume(queue: string, onDelivery: (delivery: Delivery) => void, options: ConsumeOptions, onCancel?: () => void): Promise<string> {
    await this.#answered();
    const tag = `fake.${this.id}.${++this.#consumerTags}`;
    this.port.consumers.set(queue, { channel: this, queue, tag, options, onDelivery, onCancel });
    this.port.notify();
    return tag;
  }

  async cancel(consumerTag: string): Promise<void> {
    await this.#answered();
    for (const [queue, consumer] of this.port.consumers) if (consumer.tag === consumerTag) this.port.consumers.delete(queue);
  }

  ack(delivery: Delivery): void {
    if (this.#settleDelivery(delivery)) this.port.acked.add(delivery.deliveryTag);
    this.port.notify();
  }

  nack(delivery: Delivery, requeue: boolean): void {
    if (this.#settleDelivery(delivery)) this.port.nacked.set(delivery.deliveryTag, requeue);
    this.port.notify();
  }

  publish(
    exchange: string,
    routingKey: string,
    content: Buffer,
    properties: MessageProperties,
    options: { mandatory: boolean },
    confirmed?: Confirmation,
  ): boolean {
    if (this.closed) throw this.closeError ?? new PortError('closed', 'the channel is closed');
    const message = new Published(
      this,
      exchange,
      routingKey,
      content,
      properties,
      options.mandatory,
      this.confirms ? confirmed : undefined,
    );
    this.port.published.push(message);
    if (message.state === 'pending' && this.port.autoConfirm) setImmediate(() => message.confirm());
    this.port.notify();
    return !this.connection.full;
  }

  whenWritable(): Promise<void> {
    if (this.closed) return Promise.reject(this.closeError ?? new PortError('closed', 'the channel is closed'));
    if (!this.connection.full) return Promise.resolve();
    return new Promise((resolve, reject) => this.#writers.push({ resolve, reject }));
  }

  /** @internal Resolves the waits for write capacity (the connection takes writes again). */
  wakeWriters(): void {
    for (const writer of this.#writers.splice(0)) writer.resolve();
  }

  onReturn(handler: (returned: Returned) => void): void {
    this.#onReturn = handler;
  }

  onClose(handler: (error: PortError | undefined) => void): void {
    this.#onClose = handler;
  }

  async close(): Promise<void> {
    this.end(undefined, new PortError('closed', 'the channel closed'));
  }

  /** The broker closes the channel with `error` (as it does for a refused publish or declaration). */
  closeWith(error: PortError): void {
    this.end(error, error);
  }

  /** Hands a returned message to the channel's return handler. */
  returned(message: Returned): void {
    this.#onReturn?.(message);
  }

  /** @internal Closes the channel: `error` is told to its close handler, `failure` to what was unfinished on it. */
  end(error: PortError | undefined, failure: PortError): void {
    if (this.closed) return;
    this.closed = true;
    this.closeError = error;
    for (const [queue, consumer] of this.port.consumers) if (consumer.channel === this) this.port.consumers.delete(queue);
    for (const message of this.port.published) if (message.channel === this) message.fail(failure);
    for (const writer of this.#writers.splice(0)) writer.reject(failure);
    this.#onClose?.(error);
    this.port.notify();
  }

  /** True when the delivery was this channel's to settle; otherwise the broker closes the channel (406). */
  #settleDelivery(delivery: Delivery): boolean {
    if (this.closed) return false;
    if (this.unacked.delete(delivery.deliveryTag)) return true;
    this.closeWith(
      new PortError('precondition-failed', `PRECONDITION_FAILED - unknown delivery tag ${delivery.deliveryTag}`, { replyCode: 406 }),
    );
    return false;
  }

  async #answered(): Promise<void> {
    await this.connection.brokerAnswers();
    if (this.closed) throw this.closeError ?? new PortError('closed', 'the channel is closed');
  }

  async #operation(operation: string, name: string, ...rest: string[]): Promise<void> {
    await this.#answered();
    this.port.operations.push([operation, name, ...rest].join(' '));
    const refusal = this.port.refuse?.(operation, name);
    if (refusal !== undefined) {
      this.closeWith(refusal);
      throw refusal;
    }
  }
}
