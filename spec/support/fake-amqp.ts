/**
 * An in-process stand-in for amqplib's channel model, for feeding a real QAMServer or QAMProxy
 * thousands of deliveries a second: channels record what is published and acknowledged, confirm
 * every publish on the next turn, and hand each consumer's callback to the test, which delivers
 * messages itself. No routing, no broker rules: what a broker would refuse is the business of the
 * tests against RabbitMQ.
 */
import { EventEmitter } from 'node:events';
import type { ChannelModel, ConsumeMessage, MessageProperties, Options } from 'amqplib';
import { QAMConnection, silentLogger, type Logger } from '../../lib/index.js';

/** A message a fake channel was asked to publish. */
export interface Published {
  exchange: string;
  routingKey: string;
  content: Buffer;
  properties: Options.Publish;
}

type Consume = (message: ConsumeMessage | null) => void;

const resolved = <T>(value: T): Promise<T> => Promise.resolve(value);

/** One fake channel (confirm or not: every publish with a callback is confirmed). */
export class FakeChannel extends EventEmitter {
  closed = false;

  constructor(private readonly broker: FakeBroker) {
    super();
  }

  publish(exchange: string, routingKey: string, content: Buffer, properties: Options.Publish = {}, confirmed?: (error: unknown) => void): boolean {
    if (this.closed) throw new Error('Channel closed');
    this.broker.published.push({ exchange, routingKey, content, properties });
    if (confirmed !== undefined) setImmediate(() => confirmed(null));
    this.broker.notify();
    return true;
  }

  sendToQueue(queue: string, content: Buffer, properties?: Options.Publish, confirmed?: (error: unknown) => void): boolean {
    return this.publish('', queue, content, properties, confirmed);
  }

  consume(queue: string, onMessage: Consume): Promise<{ consumerTag: string }> {
    const consumerTag = `fake-${this.broker.consumers.size + 1}`;
    this.broker.consumers.set(queue, onMessage);
    return resolved({ consumerTag });
  }

  ack(message: ConsumeMessage): void {
    if (this.closed) throw new Error('Channel closed');
    this.broker.acked.add(message.fields.deliveryTag);
    this.broker.notify();
  }

  nack(message: ConsumeMessage): void {
    this.ack(message);
  }

  reject(message: ConsumeMessage): void {
    this.ack(message);
  }

  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.emit('close');
    }
    return resolved(undefined);
  }

  assertQueue(queue: string): Promise<{ queue: string; messageCount: number; consumerCount: number }> {
    return resolved({ queue, messageCount: 0, consumerCount: 0 });
  }

  checkQueue(queue: string): Promise<{ queue: string; messageCount: number; consumerCount: number }> {
    return this.assertQueue(queue);
  }

  assertExchange(exchange: string): Promise<{ exchange: string }> {
    return resolved({ exchange });
  }

  checkExchange(exchange: string): Promise<{ exchange: string }> {
    return this.assertExchange(exchange);
  }

  deleteQueue(): Promise<{ messageCount: number }> {
    return resolved({ messageCount: 0 });
  }

  purgeQueue(): Promise<{ messageCount: number }> {
    return resolved({ messageCount: 0 });
  }

  bindQueue = (): Promise<object> => resolved({});
  unbindQueue = (): Promise<object> => resolved({});
  deleteExchange = (): Promise<object> => resolved({});
  bindExchange = (): Promise<object> => resolved({});
  unbindExchange = (): Promise<object> => resolved({});
  cancel = (): Promise<object> => resolved({});
  prefetch = (): Promise<object> => resolved({});
  recover = (): Promise<object> => resolved({});
  waitForConfirms = (): Promise<void> => resolved(undefined);
  ackAll = (): void => undefined;
  nackAll = (): void => undefined;
}

/** What the server and proxy under test see as the broker. */
export class FakeBroker {
  readonly published: Published[] = [];
  /** The callback of the latest consumer of each queue. */
  readonly consumers = new Map<string, Consume>();
  readonly acked = new Set<number>();
  readonly channels: FakeChannel[] = [];
  #nextTag = 1;
  #waiters: Array<() => void> = [];

  readonly model = {
    createChannel: (): Promise<FakeChannel> => resolved(this.#channel()),
    createConfirmChannel: (): Promise<FakeChannel> => resolved(this.#channel()),
    close: (): Promise<void> => resolved(undefined),
    on: (): void => undefined,
    off: (): void => undefined,
  };

  /** A QAMConnection whose channels are this broker's. */
  connection(logger: Logger = silentLogger): QAMConnection {
    return new FakeConnection(this, logger);
  }

  /** Hands `queue`'s consumer a message; returns its delivery tag. */
  deliver(queue: string, content: Buffer, properties: Partial<MessageProperties>, fields: { redelivered?: boolean; exchange?: string; routingKey?: string } = {}): number {
    const consume = this.consumers.get(queue);
    if (consume === undefined) throw new Error(`nothing consumes ${queue}`);
    const deliveryTag = this.#nextTag++;
    consume({
      content,
      fields: { deliveryTag, redelivered: fields.redelivered ?? false, exchange: fields.exchange ?? '', routingKey: fields.routingKey ?? queue, consumerTag: 'fake' },
      properties: messageProperties(properties),
    });
    return deliveryTag;
  }

  /** Resolves once `predicate` holds, checking after every publish and ack (and now). */
  async until(predicate: () => boolean): Promise<void> {
    while (!predicate()) await new Promise<void>((resolve) => this.#waiters.push(resolve));
  }

  /** @internal Wakes {@link until}. */
  notify(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }

  #channel(): FakeChannel {
    const channel = new FakeChannel(this);
    this.channels.push(channel);
    return channel;
  }
}

/** Every property amqplib decodes, undefined where the message has none. */
function messageProperties(properties: Partial<MessageProperties>): MessageProperties {
  return {
    contentType: undefined,
    contentEncoding: undefined,
    headers: {},
    deliveryMode: undefined,
    priority: undefined,
    correlationId: undefined,
    replyTo: undefined,
    expiration: undefined,
    messageId: undefined,
    timestamp: undefined,
    type: undefined,
    userId: undefined,
    appId: undefined,
    clusterId: undefined,
    ...properties,
  };
}

class FakeConnection extends QAMConnection {
  readonly #broker: FakeBroker;

  constructor(broker: FakeBroker, logger: Logger) {
    super({ url: 'amqp://fake.invalid', logger });
    this.#broker = broker;
  }

  override get connected(): boolean {
    return !this.closed;
  }

  override model(): Promise<ChannelModel> {
    return resolved(this.#broker.model as unknown as ChannelModel);
  }

  /** The connection of a server's first replies goes to the fake broker too. */
  override sibling(): QAMConnection {
    return new FakeConnection(this.#broker, this.logger);
  }
}
