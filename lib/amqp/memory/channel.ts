/**
 * A channel of the embedded broker: the port's {@link AmqpChannel}, with RabbitMQ 3.10's checks in
 * RabbitMQ's order (permission, existence, exclusivity, equivalence), its direct reply-to, its
 * delivery tags and prefetch, and its confirms.
 *
 * A method the broker refuses closes the channel, as RabbitMQ does: the channel stops taking
 * methods at once (publishes are dropped, other methods fail once the close is told), and its
 * close reaches the client in the next pass, after what the broker sent before it (confirms,
 * returns), then `onClose` handlers run with the error, then the failed method rejects.
 * @internal
 */
import type {
  AmqpChannel,
  Confirmation,
  ConsumeOptions,
  DeclareExchangeOptions,
  DeclareQueueOptions,
  Delivery,
  ExchangeType,
  MessageProperties,
  PortError,
  Returned,
} from '../port.js';
import { isReplyAddress, replyToQueue, type BrokerCore, type ReplyTarget } from './core.js';
import { Deque } from './deque.js';
import { assertExchangeEquivalent, assertQueueEquivalent, parseExpiration, queueArguments } from './equivalence.js';
import {
  BrokerRefusal,
  accessRefused,
  amqpError,
  closedError,
  defaultExchangeRefused,
  encodeError,
  notFound,
  refuse,
  resource,
  resourceLocked,
} from './errors.js';
import type { Queue, QueueConsumer, QueuedMessage } from './queue.js';
import { invoke, type Flushable } from './scheduler.js';
import type { Access } from './users.js';
import type { Vhost } from './vhost.js';
import { checkShortString, copyBytes, copyProperties, wireProperties, wireTable, type WireProperties } from './wire.js';

/** A method waiting for the broker to read it (the broker stops reading a blocked connection). */
export interface Command {
  run(): void;
  /** The connection closed before the broker read it. */
  abandon(): void;
}

/** What a channel needs from its connection. */
export interface ChannelHost {
  readonly core: BrokerCore;
  readonly vhost: Vhost;
  readonly username: string;
  /** False once the broker stopped reading the connection (it blocked it and a publish came). */
  readonly reading: boolean;
  /** True when a publish would be read now: reading, and not blocked. */
  readonly publishing: boolean;
  /** Runs `command` now, or once the broker reads the connection again. */
  submit(command: Command): void;
  /** Holds a publish while the broker blocks the connection (until it lets it go). */
  hold(command: Command): void;
  /** The broker stops reading the blocked connection (a publish came): what follows waits. */
  stopReading(): void;
  /** Closes the whole connection with a connection error. */
  fail(error: PortError): void;
  /** Records an exclusive queue of the connection (deleted with it). */
  own(queue: Queue): void;
  /** The broker closed the channel; the connection forgets it. */
  released(channel: MemoryChannel): void;
}

const exchangeTypes: ReadonlySet<string> = new Set<ExchangeType>(['direct', 'fanout', 'topic', 'headers']);

type ChannelEvent =
  | { readonly kind: 'confirm'; count: number }
  | { readonly kind: 'return'; readonly returned: Returned }
  | { readonly kind: 'cancel'; readonly consumer: ChannelConsumer }
  | { readonly kind: 'reply'; readonly tag: string; readonly onDelivery: (delivery: Delivery) => void; readonly delivery: Delivery }
  | { readonly kind: 'reject'; readonly reject: (error: PortError) => void; readonly error: PortError }
  | { readonly kind: 'close'; readonly error: PortError | undefined };

interface ReplyConsumer {
  readonly tag: string;
  readonly key: string;
  readonly address: string;
  readonly onDelivery: (delivery: Delivery) => void;
}

class ChannelConsumer implements QueueConsumer {
  constructor(
    readonly channel: MemoryChannel,
    readonly tag: string,
    readonly queue: Queue,
    readonly noAck: boolean,
    readonly exclusive: boolean,
    readonly onDelivery: (delivery: Delivery) => void,
    readonly onCancel: (() => void) | undefined,
  ) {}

  ready(): boolean {
    return this.channel.canDeliver(this.noAck);
  }

  deliver(message: QueuedMessage): void {
    this.channel.deliver(this, message);
  }

  cancelled(): void {
    this.channel.cancelledByBroker(this);
  }
}

function noop(): void {}

export class MemoryChannel implements AmqpChannel, Flushable, ReplyTarget {
  readonly confirms: boolean;
  readonly #host: ChannelHost;
  /** Unique in the broker: names the channel in reply addresses. */
  readonly #id: number;
  /** The client called close(). */
  #closing = false;
  /** The close was told (onClose ran). */
  #closed = false;
  /** The broker takes methods on it. */
  #open = true;
  #closeQueued = false;
  /** Its connection was lost: what the broker had not sent yet never arrives. */
  #lost = false;
  #error: PortError | undefined;
  #events: ChannelEvent[] = [];
  #queued = false;
  readonly #consumers = new Map<string, ChannelConsumer>();
  #reply: ReplyConsumer | undefined;
  #replyToken: string | undefined;
  readonly #unacked = new Map<number, QueuedMessage>();
  #nextTag = 1;
  #prefetch = 0;
  /** One entry per publish on a confirm channel, in order, until confirmed or failed. */
  readonly #unconfirmed = new Deque<Confirmation | undefined>();
  readonly #returnHandlers: Array<(returned: Returned) => void> = [];
  readonly #closeHandlers: Array<(error: PortError | undefined) => void> = [];
  #closeWaiters: Array<() => void> = [];
  #writableWaiters: Array<{ resolve: () => void; reject: (error: PortError) => void }> = [];

  constructor(host: ChannelHost, confirms: boolean) {
    this.#host = host;
    this.confirms = confirms;
    this.#id = host.core.nextId();
  }

  declareExchange(name: string, type: ExchangeType, options: DeclareExchangeOptions): Promise<void> {
    return this.#operation(() => {
      checkShortString('exchange', name);
      if (!exchangeTypes.has(type)) throw new BrokerRefusal(amqpError(503, `unknown exchange type '${String(type)}'`), 'connection');
      if (name === '') defaultExchangeRefused();
      const vhost = this.#host.vhost;
      this.#permit('configure', 'exchange', name);
      const args = options.arguments === undefined ? {} : wireTable(options.arguments, 'arguments');
      const existing = vhost.exchanges.get(name);
      if (existing !== undefined) {
        assertExchangeEquivalent(existing, type, options.durable, options.autoDelete, args, resource('exchange', name, vhost.name));
        return;
      }
      if (name.startsWith('amq.')) refuse(403, `exchange name '${name}' contains reserved prefix 'amq.*'`);
      vhost.addExchange({ name, type, durable: options.durable, autoDelete: options.autoDelete, internal: false, arguments: args });
    });
  }

  checkExchange(name: string): Promise<void> {
    return this.#operation(() => {
      checkShortString('exchange', name);
      if (name === '') defaultExchangeRefused();
      const vhost = this.#host.vhost;
      if (!vhost.exchanges.has(name)) notFound('exchange', name, vhost.name);
    });
  }

  declareQueue(name: string, options: DeclareQueueOptions): Promise<void> {
    return this.#operation(() => {
      checkShortString('queue', name);
      const host = this.#host;
      const vhost = host.vhost;
      let queueName = name;
      if (name === '') queueName = host.core.generatedName('amq.gen');
      else if (name.startsWith('amq.')) refuse(403, `queue name '${name}' contains reserved prefix 'amq.*'`);
      this.#permit('configure', 'queue', queueName);
      const args = options.arguments === undefined ? {} : wireTable(options.arguments, 'arguments');
      if (options.expires !== undefined) args['x-expires'] = options.expires;
      // RabbitMQ never makes an exclusive queue durable.
      const durable = options.durable && !options.exclusive;
      const what = resource('queue', queueName, vhost.name);
      const existing = vhost.queues.get(queueName);
      if (existing !== undefined) {
        if (existing.owner !== (options.exclusive ? host : undefined)) resourceLocked(queueName, vhost.name);
        assertQueueEquivalent(existing, durable, options.autoDelete, args, what);
        existing.touch();
        return;
      }
      const { expires, messageTtl } = queueArguments(args, what);
      const owner = options.exclusive ? host : undefined;
      const queue = vhost.addQueue({
        name: queueName,
        durable,
        autoDelete: options.autoDelete,
        owner,
        arguments: args,
        expires,
        messageTtl,
      });
      if (owner !== undefined) host.own(queue);
    });
  }

  bindQueue(queue: string, exchange: string, routingKey: string): Promise<void> {
    return this.#operation(() => {
      checkShortString('queue', queue);
      checkShortString('exchange', exchange);
      checkShortString('routingKey', routingKey);
      if (exchange === '') defaultExchangeRefused();
      const vhost = this.#host.vhost;
      this.#permit('write', 'queue', queue);
      this.#permit('read', 'exchange', exchange);
      const source = vhost.exchanges.get(exchange) ?? notFound('exchange', exchange, vhost.name);
      const target = vhost.queues.get(queue) ?? notFound('queue', queue, vhost.name);
      this.#checkExclusive(target);
      vhost.bind(target, source, routingKey);
    });
  }

  deleteQueue(name: string): Promise<void> {
    return this.#operation(() => {
      checkShortString('queue', name);
      const vhost = this.#host.vhost;
      this.#permit('configure', 'queue', name);
      const queue = vhost.queues.get(name);
      if (queue === undefined) return;
      this.#checkExclusive(queue);
      vhost.remove(queue);
    });
  }

  deleteExchange(name: string, options?: { ifUnused?: boolean }): Promise<void> {
    return this.#operation(() => {
      checkShortString('exchange', name);
      const vhost = this.#host.vhost;
      if (name === '') defaultExchangeRefused();
      if (name.startsWith('amq.')) refuse(403, `deletion of system ${resource('exchange', name, vhost.name)} not allowed`);
      this.#permit('configure', 'exchange', name);
      const exchange = vhost.exchanges.get(name);
      if (exchange === undefined) return;
      if (options?.ifUnused === true && exchange.bindings.length > 0) refuse(406, `${resource('exchange', name, vhost.name)} in use`);
      vhost.deleteExchange(exchange);
    });
  }

  prefetch(count: number): Promise<void> {
    return this.#operation(() => {
      if (!Number.isInteger(count) || count < 0 || count > 0xffff)
        throw encodeError(`prefetch count must be an integer from 0 to 65535, got ${count}`);
      this.#prefetch = count;
      this.#wakeQueues();
    });
  }

  consume(queue: string, onDelivery: (delivery: Delivery) => void, options: ConsumeOptions, onCancel?: () => void): Promise<string> {
    return this.#operation(() => {
      checkShortString('queue', queue);
      if (queue === replyToQueue) return this.#consumeReplies(onDelivery, options);
      const host = this.#host;
      const vhost = host.vhost;
      this.#permit('read', 'queue', queue);
      const target = vhost.queues.get(queue) ?? notFound('queue', queue, vhost.name);
      this.#checkExclusive(target);
      const exclusive = options.exclusive === true;
      if (target.consumers.some((consumer) => consumer.exclusive) || (exclusive && target.consumers.length > 0)) {
        refuse(403, `${resource('queue', queue, vhost.name)} in exclusive use`);
      }
      const tag = host.core.generatedName('amq.ctag');
      const consumer = new ChannelConsumer(this, tag, target, options.noAck, exclusive, onDelivery, onCancel);
      this.#consumers.set(tag, consumer);
      target.addConsumer(consumer);
      return tag;
    });
  }

  /**
   * Direct reply-to: the pseudo-queue gives the channel a reply address. RabbitMQ requires no-ack
   * and one such consumer per channel; it checks no permission.
   */
  #consumeReplies(onDelivery: (delivery: Delivery) => void, options: ConsumeOptions): string {
    if (!options.noAck) refuse(406, 'reply consumer cannot acknowledge');
    if (this.#reply !== undefined) refuse(406, 'reply consumer already set');
    const core = this.#host.core;
    const tag = core.generatedName('amq.ctag');
    const { token, key, address } = core.registerReply(this.#id, this);
    this.#replyToken = token;
    this.#reply = { tag, key, address, onDelivery };
    return tag;
  }

  cancel(consumerTag: string): Promise<void> {
    return this.#operation(() => {
      checkShortString('consumerTag', consumerTag);
      if (this.#reply?.tag === consumerTag) {
        this.#dropReplies();
        return;
      }
      // RabbitMQ ignores an unknown tag, as the spec requires.
      const consumer = this.#consumers.get(consumerTag);
      if (consumer === undefined) return;
      this.#consumers.delete(consumerTag);
      consumer.queue.removeConsumer(consumer);
    });
  }

  ack(delivery: Delivery): void {
    this.#settle(delivery.deliveryTag, 'ack');
  }

  nack(delivery: Delivery, requeue: boolean): void {
    this.#settle(delivery.deliveryTag, requeue ? 'requeue' : 'drop');
  }

  #settle(tag: number, outcome: 'ack' | 'requeue' | 'drop'): void {
    if (this.#closed || this.#closing) return;
    if (this.#host.reading) this.#settleNow(tag, outcome);
    else this.#host.submit({ run: () => this.#settleNow(tag, outcome), abandon: noop });
  }

  #settleNow(tag: number, outcome: 'ack' | 'requeue' | 'drop'): void {
    if (!this.#open) return;
    const message = this.#unacked.get(tag);
    if (message === undefined) {
      this.#fail(amqpError(406, `unknown delivery tag ${tag}`));
      return;
    }
    this.#unacked.delete(tag);
    if (outcome === 'requeue') message.queue.requeue(message);
    else message.queue.settled();
    if (this.#prefetch > 0 && this.#unacked.size === this.#prefetch - 1) this.#wakeQueues();
  }

  publish(
    exchange: string,
    routingKey: string,
    content: Buffer,
    properties: MessageProperties,
    options: { mandatory: boolean },
    confirmed?: Confirmation,
  ): boolean {
    if (this.#closed || this.#closing) throw this.#failure();
    checkShortString('exchange', exchange);
    checkShortString('routingKey', routingKey);
    if (!(content instanceof Uint8Array)) throw encodeError('content is not a buffer');
    const body = copyBytes(content);
    const wire = wireProperties(properties);
    const mandatory = options.mandatory;
    if (this.confirms) this.#unconfirmed.push(confirmed);
    if (this.#host.publishing) {
      this.#publish(exchange, routingKey, body, wire, mandatory);
      return true;
    }
    // The caller should wait for whenWritable(), as the amqplib adapter says of a blocked connection.
    if (this.#host.reading) {
      // The publish that makes the broker stop reading a blocked connection was read: it is routed.
      this.#publish(exchange, routingKey, body, wire, mandatory);
      this.#host.stopReading();
    } else {
      this.#host.hold({ run: () => this.#publish(exchange, routingKey, body, wire, mandatory), abandon: noop });
    }
    return false;
  }

  #publish(exchange: string, routingKey: string, body: Buffer, properties: WireProperties, mandatory: boolean): void {
    // A message published after the broker closed the channel is dropped; its confirm fails with the close.
    if (!this.#open) return;
    try {
      this.#route(exchange, routingKey, body, properties, mandatory);
    } catch (error) {
      if (!(error instanceof BrokerRefusal)) throw error;
      this.#refused(error);
    }
  }

  #route(exchange: string, routingKey: string, body: Buffer, properties: WireProperties, mandatory: boolean): void {
    const host = this.#host;
    const core = host.core;
    const vhost = host.vhost;
    if (body.length > core.maxMessageSize)
      refuse(406, `message size ${body.length} is larger than configured max size ${core.maxMessageSize}`);
    this.#permit('write', 'exchange', exchange);
    const target = vhost.exchanges.get(exchange) ?? notFound('exchange', exchange, vhost.name);
    if (target.internal) refuse(403, `cannot publish to internal ${resource('exchange', exchange, vhost.name)}`);
    if (properties['replyTo'] === replyToQueue) {
      if (this.#reply === undefined) refuse(406, 'fast reply consumer does not exist');
      properties['replyTo'] = this.#reply.address;
    }
    const userId = properties['userId'];
    if (userId !== undefined && userId !== host.username) {
      refuse(406, `user_id property set to '${String(userId)}' but authenticated user was '${host.username}'`);
    }
    const expiration = properties['expiration'];
    const ttl = expiration === undefined ? undefined : parseExpiration(expiration as string);
    let queues: Queue[];
    let replied = false;
    if (exchange !== '') {
      queues = target.route(routingKey);
    } else if (isReplyAddress(routingKey)) {
      // RabbitMQ 3.10 hands a reply to its channel beside routing, which finds no queue: a
      // mandatory reply is delivered and returned as unroutable too.
      const route = core.routeReply(routingKey, body, properties);
      if (route === 'malformed') throw new BrokerRefusal(amqpError(541, ''), 'connection');
      replied = route === 'delivered';
      queues = [];
    } else {
      const queue = vhost.queues.get(routingKey);
      queues = queue === undefined ? [] : [queue];
    }
    if (queues.length === 0) {
      if (mandatory) {
        const returned: Returned = {
          content: replied ? copyBytes(body) : body,
          properties: replied ? copyProperties(properties) : properties,
          replyCode: 312,
          replyText: 'NO_ROUTE',
          exchange,
          routingKey,
        };
        this.#push({ kind: 'return', returned });
      }
    } else {
      const shared = queues.length > 1;
      for (const queue of queues) queue.enqueue(body, properties, exchange, routingKey, shared, ttl);
    }
    if (this.confirms) this.#confirmOne();
  }

  whenWritable(): Promise<void> {
    if (this.#closed || this.#closing) return Promise.reject(this.#failure());
    if (this.#host.publishing) return Promise.resolve();
    return new Promise((resolve, reject) => this.#writableWaiters.push({ resolve, reject }));
  }

  onReturn(handler: (returned: Returned) => void): void {
    this.#returnHandlers.push(handler);
  }

  onClose(handler: (error: PortError | undefined) => void): void {
    this.#closeHandlers.push(handler);
  }

  /**
   * Closes the channel. While the broker does not read the connection (blocked after a publish),
   * the close waits there behind what came before it, but the caller does not wait for it (the
   * amqplib adapter stops waiting too): `onClose` runs once the broker gets to it.
   */
  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    const closed = new Promise<void>((resolve) => this.#closeWaiters.push(resolve));
    if (!this.#closing) {
      this.#closing = true;
      if (this.#open) {
        this.#host.submit({
          run: () => {
            if (!this.#open) return;
            this.#release();
            this.#queueClose(undefined);
          },
          abandon: noop,
        });
      }
    }
    return this.#host.reading ? closed : Promise.resolve();
  }

  /** True when a consumer of this channel takes a delivery now. @internal */
  canDeliver(noAck: boolean): boolean {
    return this.#open && !this.#closing && (noAck || this.#prefetch === 0 || this.#unacked.size < this.#prefetch);
  }

  /**
   * Hands a message to a consumer. An acknowledged delivery gets its own copy (the message may be
   * requeued and delivered again); a no-ack delivery of a message no one else got takes the
   * broker's copy, made when it was published.
   * @internal
   */
  deliver(consumer: ChannelConsumer, message: QueuedMessage): void {
    const tag = this.#nextTag++;
    if (!consumer.noAck) this.#unacked.set(tag, message);
    const own = consumer.noAck && !message.shared;
    invoke(consumer.onDelivery, {
      content: own ? message.content : copyBytes(message.content),
      properties: own ? message.properties : copyProperties(message.properties),
      redelivered: message.redelivered,
      exchange: message.exchange,
      routingKey: message.routingKey,
      deliveryTag: tag,
    });
  }

  /** Its queue was deleted: the consumer is told (`onCancel`). @internal */
  cancelledByBroker(consumer: ChannelConsumer): void {
    if (this.#consumers.get(consumer.tag) !== consumer) return;
    this.#consumers.delete(consumer.tag);
    this.#push({ kind: 'cancel', consumer });
  }

  /**
   * A reply to this channel's address. RabbitMQ delivers it with the channel's next delivery tag
   * without using it up (no-ack: it is never acknowledged).
   */
  deliverReply(key: string, content: Buffer, properties: WireProperties, routingKey: string): void {
    const reply = this.#reply;
    if (reply === undefined || reply.key !== key || !this.#open) return;
    const delivery: Delivery = { content, properties, redelivered: false, exchange: '', routingKey, deliveryTag: this.#nextTag };
    this.#push({ kind: 'reply', tag: reply.tag, onDelivery: reply.onDelivery, delivery });
  }

  /** The connection closed (or was lost): the channel closes with it. @internal */
  connectionClosed(lost: boolean): void {
    if (lost) this.#lost = true;
    if (this.#open) this.#release();
    this.#queueClose(undefined);
  }

  /** The broker reads the connection again and does not block it. @internal */
  drained(): void {
    const waiters = this.#writableWaiters;
    this.#writableWaiters = [];
    for (const waiter of waiters) waiter.resolve();
  }

  flush(): void {
    this.#queued = false;
    const events = this.#events;
    this.#events = [];
    for (const event of events) {
      switch (event.kind) {
        case 'confirm':
          if (!this.#lost) {
            for (let i = 0; i < event.count; i++) {
              const confirmed = this.#unconfirmed.shift();
              if (confirmed !== undefined) invoke(confirmed, undefined);
            }
          }
          break;
        case 'return':
          if (!this.#lost) for (const handler of this.#returnHandlers) invoke(handler, event.returned);
          break;
        case 'cancel':
          if (!this.#lost && event.consumer.onCancel !== undefined) invoke(event.consumer.onCancel);
          break;
        case 'reply':
          if (!this.#lost && this.#reply?.tag === event.tag) invoke(event.onDelivery, event.delivery);
          break;
        case 'reject':
          event.reject(event.error);
          break;
        case 'close':
          this.#finish(event.error);
          break;
      }
    }
  }

  /**
   * Runs a method as the broker reads it; resolves with its result, or rejects: at once when the
   * client library would refuse it, after the close when the broker refuses it or the channel had
   * closed.
   */
  #operation<T>(run: () => T): Promise<T> {
    if (this.#closed || this.#closing) return Promise.reject(this.#failure());
    return new Promise<T>((resolve, reject) => {
      this.#host.submit({
        run: () => {
          if (!this.#open) {
            this.#rejectLater(reject, this.#failure());
            return;
          }
          let result: T;
          try {
            result = run();
          } catch (error) {
            if (error instanceof BrokerRefusal) {
              this.#refused(error);
              this.#rejectLater(reject, error.error);
            } else {
              reject(error);
            }
            return;
          }
          resolve(result);
        },
        abandon: () => this.#rejectLater(reject, closedError('Channel')),
      });
    });
  }

  /** Why the channel cannot be used: the broker's error when the broker closed it, else `'closed'` (as the amqplib adapter tells it). */
  #failure(): PortError {
    return this.#error ?? closedError('Channel');
  }

  #rejectLater(reject: (error: PortError) => void, error: PortError): void {
    if (this.#closed) reject(error);
    else this.#push({ kind: 'reject', reject, error });
  }

  #refused(refusal: BrokerRefusal): void {
    if (refusal.scope === 'connection') this.#host.fail(refusal.error);
    else this.#fail(refusal.error);
  }

  /** The broker closes the channel with `error`. */
  #fail(error: PortError): void {
    if (!this.#open) return;
    this.#error = error;
    this.#release();
    this.#queueClose(error);
  }

  /**
   * What the broker does when a channel goes: unacknowledged deliveries back to their queues
   * (marked redelivered), consumers removed (auto-delete queues may go with them), the reply
   * address forgotten.
   */
  #release(): void {
    this.#open = false;
    const unacked = [...this.#unacked.values()];
    this.#unacked.clear();
    for (const message of unacked) message.queue.requeue(message);
    const consumers = [...this.#consumers.values()];
    this.#consumers.clear();
    for (const consumer of consumers) consumer.queue.removeConsumer(consumer);
    this.#dropReplies();
    this.#host.released(this);
  }

  #dropReplies(): void {
    if (this.#replyToken !== undefined) this.#host.core.unregisterReply(this.#replyToken);
    this.#replyToken = undefined;
    this.#reply = undefined;
  }

  #queueClose(error: PortError | undefined): void {
    if (this.#closeQueued) return;
    this.#closeQueued = true;
    this.#push({ kind: 'close', error });
  }

  /** The close reaches the client: confirms still pending fail, then `onClose` handlers run. */
  #finish(error: PortError | undefined): void {
    if (this.#closed) return;
    this.#closed = true;
    const failure = error ?? closedError('Channel');
    while (this.#unconfirmed.length > 0) {
      const confirmed = this.#unconfirmed.shift();
      if (confirmed !== undefined) invoke(confirmed, failure);
    }
    const waiters = this.#writableWaiters;
    this.#writableWaiters = [];
    for (const waiter of waiters) waiter.reject(failure);
    for (const handler of this.#closeHandlers) invoke(handler, error);
    const closed = this.#closeWaiters;
    this.#closeWaiters = [];
    for (const resolve of closed) resolve();
  }

  #push(event: ChannelEvent): void {
    this.#events.push(event);
    if (this.#queued) return;
    this.#queued = true;
    this.#host.core.scheduler.flush(this);
  }

  /** Confirms are sent in publish order: consecutive ones travel as one event. */
  #confirmOne(): void {
    const last = this.#events[this.#events.length - 1];
    if (last !== undefined && last.kind === 'confirm') last.count++;
    else this.#push({ kind: 'confirm', count: 1 });
  }

  #wakeQueues(): void {
    for (const consumer of this.#consumers.values()) consumer.queue.wake();
  }

  /** RabbitMQ checks permissions on the default exchange under the name `amq.default`. */
  #permit(access: Access, kind: 'queue' | 'exchange', name: string): void {
    const host = this.#host;
    const resourceName = kind === 'exchange' && name === '' ? 'amq.default' : name;
    if (!host.core.users.permitted(host.username, host.vhost.name, access, resourceName))
      accessRefused(kind, resourceName, host.vhost.name, host.username);
  }

  /** Another connection's exclusive queue is locked (405). */
  #checkExclusive(queue: Queue): void {
    if (queue.owner !== undefined && queue.owner !== this.#host) resourceLocked(queue.name, this.#host.vhost.name);
  }
}
