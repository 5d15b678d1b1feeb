import * as amqp from 'amqplib';
import type { Channel, ChannelModel, ConfirmChannel, ConsumeMessage, Message, Options } from 'amqplib';
import type { Duplex } from 'node:stream';
import { amqplibVersion, socketOf, streamlineWrites, testedAmqplibVersions, writeCapacityBytes } from './amqplib-internals.js';
import {
  PortError,
  type AmqpChannel,
  type AmqpConnection,
  type AmqpPort,
  type Confirmation,
  type DeclareExchangeOptions,
  type DeclareQueueOptions,
  type ExchangeType,
  type ConnectTarget,
  type Delivery,
  type FailureKind,
  type IncomingProperties,
  type MessageProperties,
  type Returned,
} from './port.js';

/**
 * The AMQP port over amqplib: RabbitMQ (or any AMQP 0-9-1 broker) over TCP or TLS. The only
 * module that imports amqplib; it turns amqplib's errors into classified {@link PortError}s.
 * @internal
 */
export const amqplibPort: AmqpPort = {
  async connect(target) {
    let model: ChannelModel;
    try {
      model = await amqp.connect(withHeartbeat(target.url, target.heartbeatSeconds), socketOptions(target));
    } catch (error) {
      throw connectFailure(error);
    }
    const connection = new AmqplibConnection(model, target.username);
    if (!connection.streamlined && !notedPlainWrites) {
      notedPlainWrites = true;
      target.logger.debug(`amqplib ${amqplibVersion} is not one qam's write path was tested with (${testedAmqplibVersions.join(', ')}): writes go through amqplib's own path`);
    }
    return connection;
  },
};

let notedPlainWrites = false;

function socketOptions(target: ConnectTarget): Record<string, unknown> {
  const options: Record<string, unknown> = { noDelay: true, timeout: target.connectTimeoutMs, ...target.tls };
  if (target.connectionName !== undefined) options['clientProperties'] = { connection_name: target.connectionName };
  return options;
}

function withHeartbeat(url: string, heartbeat: number): string {
  if (/[?&]heartbeat=/.test(url)) return url;
  return `${url}${url.includes('?') ? '&' : '?'}heartbeat=${heartbeat}`;
}

/** How long a close waits for the broker's answer before it drops the socket (the broker may have stopped reading it). */
const closeTimeoutMs = 1000;

/** @internal Exported for tests of the write path. */
export class AmqplibConnection implements AmqpConnection {
  readonly username: string;
  readonly #model: ChannelModel;
  readonly #socket: Duplex | undefined;
  #blocked = false;
  #closing = false;
  #error: PortError | undefined;
  #onBlocked: ((blocked: boolean, reason: string | undefined) => void) | undefined;
  #onClose: ((error: PortError | undefined) => void) | undefined;
  readonly #writableWaiters = new Set<() => void>();

  constructor(model: ChannelModel, username: string) {
    this.#model = model;
    this.username = username;
    this.#socket = socketOf(model);
    if (this.#socket !== undefined && !streamlineWrites(model, this.#socket)) this.#socket = undefined;
    this.#socket?.on('drain', () => this.#wakeWriters());
    model.on('error', (error: unknown) => {
      this.#error = classify(error);
    });
    model.on('close', (error?: unknown) => {
      this.#blocked = false;
      this.#wakeWriters();
      const cause = this.#closing ? undefined : (this.#error ?? (error === undefined ? new PortError('closed', 'Connection closed') : classify(error)));
      this.#onClose?.(cause);
    });
    model.on('blocked', (reason: unknown) => {
      this.#blocked = true;
      this.#onBlocked?.(true, typeof reason === 'string' ? reason : undefined);
    });
    model.on('unblocked', () => {
      this.#blocked = false;
      this.#wakeWriters();
      this.#onBlocked?.(false, undefined);
    });
  }

  get blocked(): boolean {
    return this.#blocked;
  }

  /** True when writes take the streamlined path (see streamlineWrites). */
  get streamlined(): boolean {
    return this.#socket !== undefined;
  }

  /** True while writes should wait: the broker blocks the connection, or the socket holds too much. */
  get congested(): boolean {
    return this.#blocked || (this.#socket !== undefined && this.#socket.writableLength >= writeCapacityBytes);
  }

  /** Resolves once writes need not wait (see {@link congested}), or the connection closed. */
  whenWritable(): Promise<void> {
    if (!this.congested) return Promise.resolve();
    return new Promise((resolve) => this.#writableWaiters.add(resolve));
  }

  #wakeWriters(): void {
    if (this.congested) return;
    const waiters = [...this.#writableWaiters];
    this.#writableWaiters.clear();
    for (const wake of waiters) wake();
  }

  async openChannel(options: { confirms: boolean }): Promise<AmqpChannel> {
    try {
      const channel = options.confirms ? await this.#model.createConfirmChannel() : await this.#model.createChannel();
      return new AmqplibChannel(channel, options.confirms, this);
    } catch (error) {
      throw classify(error);
    }
  }

  onBlocked(handler: (blocked: boolean, reason: string | undefined) => void): void {
    this.#onBlocked = handler;
  }

  onClose(handler: (error: PortError | undefined) => void): void {
    this.#onClose = handler;
  }

  /**
   * Closes with the AMQP handshake, but drops the socket when the broker does not answer soon:
   * a broker that blocks the connection (memory alarm) stops reading it, close frame included.
   */
  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    let timer: NodeJS.Timeout | undefined;
    const closed = this.#model.close().then(
      () => true,
      () => true,
    );
    const answered = await Promise.race([closed, new Promise<boolean>((resolve) => (timer = setTimeout(resolve, this.#blocked ? 0 : closeTimeoutMs, false)))]);
    clearTimeout(timer);
    if (!answered) this.#socket?.destroy();
  }
}

class AmqplibChannel implements AmqpChannel {
  readonly confirms: boolean;
  readonly #channel: Channel;
  readonly #connection: AmqplibConnection;
  #error: PortError | undefined;
  #closed = false;
  #needsDrain = false;
  #onClose: ((error: PortError | undefined) => void) | undefined;
  readonly #closeWaiters = new Set<() => void>();

  constructor(channel: Channel | ConfirmChannel, confirms: boolean, connection: AmqplibConnection) {
    this.#channel = channel;
    this.confirms = confirms;
    this.#connection = connection;
    // amqplib emits 'error' (the broker's close) before 'close', and fails unconfirmed publishes
    // in between with a bare "channel closed": keeping the error lets those name the cause.
    channel.on('error', (error: unknown) => {
      this.#error = classify(error);
    });
    channel.on('close', () => {
      this.#closed = true;
      for (const wake of this.#closeWaiters) wake();
      this.#closeWaiters.clear();
      this.#onClose?.(this.#error);
    });
    channel.on('drain', () => {
      this.#needsDrain = false;
    });
  }

  async declareExchange(name: string, type: ExchangeType, options: DeclareExchangeOptions): Promise<void> {
    await this.#do(() => this.#channel.assertExchange(name, type, options));
  }

  async checkExchange(name: string): Promise<void> {
    await this.#do(() => this.#channel.checkExchange(name));
  }

  async declareQueue(name: string, options: DeclareQueueOptions): Promise<void> {
    await this.#do(() => this.#channel.assertQueue(name, options));
  }

  async bindQueue(queue: string, exchange: string, routingKey: string): Promise<void> {
    await this.#do(() => this.#channel.bindQueue(queue, exchange, routingKey));
  }

  async deleteQueue(name: string): Promise<void> {
    await this.#do(() => this.#channel.deleteQueue(name));
  }

  async deleteExchange(name: string, options: { ifUnused?: boolean } = {}): Promise<void> {
    await this.#do(() => this.#channel.deleteExchange(name, options));
  }

  async prefetch(count: number): Promise<void> {
    await this.#do(() => this.#channel.prefetch(count));
  }

  async consume(queue: string, onDelivery: (delivery: Delivery) => void, options: { noAck: boolean; exclusive?: boolean }, onCancel?: () => void): Promise<string> {
    const reply = await this.#do(() =>
      this.#channel.consume(
        queue,
        (message: ConsumeMessage | null) => {
          if (message === null) onCancel?.();
          else onDelivery(toDelivery(message));
        },
        { noAck: options.noAck, exclusive: options.exclusive ?? false },
      ),
    );
    return reply.consumerTag;
  }

  async cancel(consumerTag: string): Promise<void> {
    await this.#do(() => this.#channel.cancel(consumerTag));
  }

  ack(delivery: Delivery): void {
    if (this.#closed) return;
    try {
      this.#channel.ack(asMessage(delivery));
    } catch {
      // Closed under the call: the broker redelivers the message to another consumer.
    }
  }

  nack(delivery: Delivery, requeue: boolean): void {
    if (this.#closed) return;
    try {
      this.#channel.nack(asMessage(delivery), false, requeue);
    } catch {
      // As in ack.
    }
  }

  publish(exchange: string, routingKey: string, content: Buffer, properties: MessageProperties, options: { mandatory: boolean }, confirmed?: Confirmation): boolean {
    const publishOptions: Options.Publish = options.mandatory ? { ...properties, mandatory: true } : properties;
    let written: boolean;
    try {
      written =
        confirmed === undefined
          ? this.#channel.publish(exchange, routingKey, content, publishOptions)
          : (this.#channel as ConfirmChannel).publish(exchange, routingKey, content, publishOptions, (error: unknown) => {
              confirmed(error === null || error === undefined ? undefined : this.#failure(error));
            });
    } catch (error) {
      throw this.#failure(error);
    }
    if (!written) this.#needsDrain = true;
    return written && !this.#connection.congested;
  }

  whenWritable(): Promise<void> {
    if (this.#closed) return Promise.reject(this.#failure(undefined));
    if (!this.#needsDrain && !this.#connection.congested) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const onClose = (): void => reject(this.#failure(undefined));
      this.#closeWaiters.add(onClose);
      const ready = (): void => {
        this.#closeWaiters.delete(onClose);
        resolve();
      };
      if (this.#needsDrain) this.#channel.once('drain', () => void this.#connection.whenWritable().then(ready));
      else void this.#connection.whenWritable().then(ready);
    });
  }

  onReturn(handler: (returned: Returned) => void): void {
    this.#channel.on('return', (message: Message) => handler(toReturned(message)));
  }

  onClose(handler: (error: PortError | undefined) => void): void {
    this.#onClose = handler;
  }

  /** Closes the channel; does not wait for the broker's answer for long (it may have stopped reading). */
  async close(): Promise<void> {
    if (this.#closed) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.#channel.close().catch(() => undefined),
      new Promise((resolve) => (timer = setTimeout(resolve, closeTimeoutMs))),
    ]);
    clearTimeout(timer);
  }

  /** The error an operation failed with: the broker's reason for closing the channel, when it closed it. */
  #failure(error: unknown): PortError {
    if (this.#error !== undefined) return this.#error;
    if (error instanceof PortError) return error;
    if (error === undefined || this.#closed || isClosedError(error)) return new PortError('closed', 'The channel closed', { cause: error });
    return classify(error);
  }

  async #do<T>(operation: () => Promise<T>): Promise<T> {
    try {
      return await operation();
    } catch (error) {
      throw this.#failure(error);
    }
  }
}

function toDelivery(message: ConsumeMessage): Delivery {
  const { fields } = message;
  return {
    content: message.content,
    properties: message.properties as IncomingProperties,
    redelivered: fields.redelivered,
    exchange: fields.exchange,
    routingKey: fields.routingKey,
    deliveryTag: fields.deliveryTag,
  };
}

function asMessage(delivery: Delivery): Message {
  return { fields: { deliveryTag: delivery.deliveryTag } } as Message;
}

function toReturned(message: Message): Returned {
  const fields = message.fields as unknown as { replyCode?: unknown; replyText?: unknown; exchange: string; routingKey: string };
  return {
    content: message.content,
    properties: message.properties as IncomingProperties,
    replyCode: typeof fields.replyCode === 'number' ? fields.replyCode : 312,
    replyText: typeof fields.replyText === 'string' ? fields.replyText : 'NO_ROUTE',
    exchange: fields.exchange,
    routingKey: fields.routingKey,
  };
}

/** amqplib's error for an operation on a channel or connection that has closed. */
function isClosedError(error: unknown): boolean {
  return error instanceof Error && (error.name === 'IllegalOperationError' || /^(channel|connection) clos(ed|ing)/i.test(error.message));
}

const kindsByReplyCode: ReadonlyMap<number, FailureKind> = new Map<number, FailureKind>([
  [403, 'access-refused'],
  [404, 'not-found'],
  [405, 'resource-locked'],
  [406, 'precondition-failed'],
  [530, 'unknown-vhost'],
]);

/**
 * An amqplib error as a PortError. amqplib puts the broker's reply code on `code` for channel and
 * connection closes; handshake failures carry it only in the text.
 */
export function classify(error: unknown): PortError {
  if (error instanceof PortError) return error;
  const text = error instanceof Error ? error.message : String(error);
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  const replyCode = typeof code === 'number' ? code : undefined;
  const kind = (replyCode === undefined ? undefined : kindsByReplyCode.get(replyCode)) ?? (isClosedError(error) ? 'closed' : replyCode === undefined ? 'other' : 'internal');
  return new PortError(kind, text, { replyCode, cause: error });
}

/** Why a connection could not be made: the operating system's error code, or the broker's refusal during the handshake. */
function connectFailure(error: unknown): PortError {
  const text = error instanceof Error ? error.message : String(error);
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  let kind: FailureKind = 'other';
  if (code === 'ECONNREFUSED') kind = 'connect-refused';
  else if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') kind = 'unknown-host';
  else if (code === 'ETIMEDOUT' || /timed? ?out/i.test(text)) kind = 'connect-timeout';
  else if (typeof code === 'string' && /^ERR_(SSL|TLS)_|CERT|^UNABLE_TO_/.test(code)) kind = 'tls';
  else if (/\b530\b|NOT_ALLOWED/.test(text)) kind = 'unknown-vhost';
  else if (/\b403\b|ACCESS.REFUSED/.test(text)) kind = 'access-refused';
  return new PortError(kind, text, { cause: error });
}
