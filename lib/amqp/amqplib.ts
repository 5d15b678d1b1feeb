import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { Socket } from 'node:net';
import * as amqp from 'amqplib';
import type { Channel, ChannelModel, ConfirmChannel, ConsumeMessage, Message, Options } from 'amqplib';
import type { Duplex } from 'node:stream';
import type { ConnectFailedReason } from '../errors.js';
import {
  amqplibVersion,
  keepProcessAlive,
  socketOf,
  streamlineWrites,
  testedAmqplibVersions,
  writeCapacityBytes,
} from './amqplib-internals.js';
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
    const model = await openModel(withHeartbeat(target.url, target.heartbeatSeconds), socketOptions(target), target.label);
    if (model instanceof PortError) throw model;
    const connection = new AmqplibConnection(model, target.username);
    if (!connection.streamlined && !notedPlainWrites) {
      notedPlainWrites = true;
      target.logger.debug(
        `amqplib ${amqplibVersion} is not one qam's write path was tested with (${testedAmqplibVersions.join(', ')}): writes go through amqplib's own path`,
      );
    }
    return connection;
  },
};

let notedPlainWrites = false;

function socketOptions(target: ConnectTarget): Options.Connect & Record<string, unknown> {
  const options: Options.Connect & Record<string, unknown> = { noDelay: true, timeout: target.connectTimeoutMs, ...target.tls };
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
    // amqplib emits the connection's 'error' before its channels close, so their failures can name it.
    model.on('error', (error: unknown) => {
      this.#error = classify(error, true);
    });
    model.on('close', (error?: unknown) => {
      this.#blocked = false;
      this.#wakeWriters();
      const cause = this.#closing
        ? undefined
        : (this.#error ?? (error === undefined ? new PortError('closed', 'Connection closed') : classify(error)));
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

  /** The error the broker closed the connection with, once it did. */
  get closeError(): PortError | undefined {
    return this.#error;
  }

  /** @internal amqplib's connection, for tests and measurements of the write path. */
  get model(): ChannelModel {
    return this.#model;
  }

  /** @internal The socket, for tests of the write path; undefined when writes take amqplib's own path. */
  get socket(): Duplex | undefined {
    return this.#socket;
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

  keepAlive(alive: boolean): void {
    keepProcessAlive(this.#model, alive);
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
    const answered = await Promise.race([
      closed,
      new Promise<boolean>((resolve) => (timer = setTimeout(resolve, this.#blocked ? 0 : closeTimeoutMs, false))),
    ]);
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

  async consume(
    queue: string,
    onDelivery: (delivery: Delivery) => void,
    options: { noAck: boolean; exclusive?: boolean },
    onCancel?: () => void,
  ): Promise<string> {
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

  publish(
    exchange: string,
    routingKey: string,
    content: Buffer,
    properties: MessageProperties,
    options: { mandatory: boolean },
    confirmed?: Confirmation,
  ): boolean {
    const publishOptions = publishOptionsOf(properties, options.mandatory);
    let written: boolean;
    try {
      written =
        confirmed === undefined
          ? this.#channel.publish(exchange, routingKey, content, publishOptions)
          : (this.#channel as ConfirmChannel).publish(exchange, routingKey, content, publishOptions, (error: unknown) => {
              confirmed(error === null || error === undefined ? undefined : this.#confirmFailure(error));
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

  /**
   * Closes the channel; does not wait for the broker's answer for long (it may have stopped
   * reading), nor at all while it blocks the connection.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.#channel.close().catch(() => undefined),
      new Promise((resolve) => (timer = setTimeout(resolve, this.#connection.blocked ? 0 : closeTimeoutMs))),
    ]);
    clearTimeout(timer);
  }

  /** Why a publish was not confirmed: amqplib reports a nack as an Error with this text, and a close as `channel closed`. */
  #confirmFailure(error: unknown): PortError {
    if (error instanceof Error && error.message === 'message nacked')
      return new PortError('nacked', 'The broker nacked the message (a queue it was routed to did not take it)', { cause: error });
    return this.#failure(error);
  }

  /** The error an operation failed with: the broker's reason for closing the channel, when it closed it. */
  #failure(error: unknown): PortError {
    const closedBy = this.#error ?? this.#connection.closeError;
    if (closedBy !== undefined) return closedBy;
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

/**
 * amqplib's options of a publish, written out field by field: this runs for every message, and
 * a spread followed by more fields (`{ ...properties, mandatory }`) on top of the request's own
 * spreads made them cost about 850 ns in V8 (Node 20) instead of 8 ns (`bench/object-spread.ts`).
 */
function publishOptionsOf(properties: MessageProperties, mandatory: boolean): Options.Publish {
  // amqplib reads a field that is undefined as one that is absent.
  const options: { [K in keyof Options.Publish]?: Options.Publish[K] | undefined } = {
    contentType: properties.contentType,
    contentEncoding: properties.contentEncoding,
    headers: properties.headers,
    deliveryMode: properties.deliveryMode,
    priority: properties.priority,
    correlationId: properties.correlationId,
    replyTo: properties.replyTo,
    expiration: properties.expiration,
    messageId: properties.messageId,
    timestamp: properties.timestamp,
    type: properties.type,
    userId: properties.userId,
    appId: properties.appId,
    mandatory,
  };
  return options as Options.Publish;
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
]);

/**
 * An amqplib error as a PortError. amqplib puts the broker's reply code on `code` for channel and
 * connection closes; handshake failures carry it only in the text.
 */
export function classify(error: unknown, connection = false): PortError {
  if (error instanceof PortError) return error;
  const text = error instanceof Error ? error.message : String(error);
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  const replyCode = typeof code === 'number' ? code : undefined;
  let kind: FailureKind;
  if (replyCode !== undefined) kind = kindsByReplyCode.get(replyCode) ?? (replyCode === connectionForced ? 'closed' : 'internal');
  else kind = isClosedError(error) ? 'closed' : 'other';
  return new PortError(kind, text, { replyCode, connection, cause: error });
}

/** AMQP 320: an operator, or a broker shutting down, closed the connection. */
const connectionForced = 320;

/** The reply code and text of the connection.close the broker ended a handshake with. */
interface BrokerClose {
  replyCode: number;
  replyText: string;
}

const handshakeCaptureBytes = 64 * 1024;

/**
 * Connects through amqplib, keeping the broker's reason when it refuses the handshake. amqplib
 * reports a broker that answers connection.open by closing the connection (RabbitMQ's
 * `530 NOT_ALLOWED - vhost x not found`) only as "Expected ConnectionOpenOk; got <ConnectionClose
 * channel:0>", without the reply code and text, so what amqplib reads during the handshake is
 * copied and the close is read back from it. amqplib makes its socket inside `connect`; `net.connect`
 * announces every socket it makes, synchronously, on the `net.client.socket` diagnostics channel.
 * TLS sockets are not announced there: over TLS only what amqplib reports is known. Resolves with
 * the error that explains a failure.
 */
async function openModel(
  url: string,
  socketOptions: Options.Connect & Record<string, unknown>,
  label: string,
): Promise<ChannelModel | PortError> {
  let socket: Socket | undefined;
  const announced = (message: unknown): void => {
    socket ??= (message as { socket?: Socket }).socket;
  };
  subscribe('net.client.socket', announced);
  let connecting: Promise<ChannelModel>;
  try {
    connecting = amqp.connect(url, socketOptions);
  } finally {
    unsubscribe('net.client.socket', announced);
  }
  const received = socket === undefined ? undefined : copyReads(socket);
  try {
    const model = await connecting;
    received?.stop();
    return model;
  } catch (error) {
    return explainConnectError(error, received?.close(), label, Number(socketOptions['timeout'] ?? 0) / 1000);
  }
}

/** Copies the first bytes read from `socket` until `stop()`. */
function copyReads(socket: Socket): { stop(): void; close(): BrokerClose | undefined } {
  const read = socket.read;
  const chunks: Buffer[] = [];
  let size = 0;
  socket.read = function (this: Socket, ...args: Parameters<Socket['read']>): unknown {
    const chunk: unknown = read.apply(this, args);
    if (Buffer.isBuffer(chunk) && size < handshakeCaptureBytes) {
      chunks.push(chunk);
      size += chunk.length;
    }
    return chunk;
  };
  return {
    stop: () => {
      socket.read = read;
      chunks.length = 0;
    },
    close: () => findClose(Buffer.concat(chunks)),
  };
}

/** The connection.close (class 10, method 50) among the AMQP frames at the start of `bytes`. */
function findClose(bytes: Buffer): BrokerClose | undefined {
  // A frame: type (1 byte), channel (2), payload size (4), payload, frame end (1).
  for (let offset = 0; offset + 7 <= bytes.length;) {
    const type = bytes.readUInt8(offset);
    const size = bytes.readUInt32BE(offset + 3);
    const payload = offset + 7;
    if (payload + size + 1 > bytes.length) return undefined;
    if (type === 1 && size >= 7 && bytes.readUInt16BE(payload) === 10 && bytes.readUInt16BE(payload + 2) === 50) {
      const textEnd = Math.min(payload + 7 + bytes.readUInt8(payload + 6), payload + size);
      return { replyCode: bytes.readUInt16BE(payload + 4), replyText: bytes.toString('utf8', payload + 7, textEnd) };
    }
    offset = payload + size + 1;
  }
  return undefined;
}

/** amqplib quotes a close in answer to the login: `Handshake terminated by server: 403 (ACCESS-REFUSED) with message "…"`. */
function closeInMessage(text: string): BrokerClose | undefined {
  const match = /terminated by server: (\d+) \([^)]*\) with message "(.*)"/s.exec(text);
  return match === null ? undefined : { replyCode: Number(match[1]), replyText: match[2] ?? '' };
}

/** Node's codes for the network failures that keep a connection from being made. */
const networkReasons: Readonly<Record<string, ConnectFailedReason>> = {
  ECONNREFUSED: 'refused',
  ENOTFOUND: 'unknown-host',
  EAI_AGAIN: 'unknown-host',
  EAI_NONAME: 'unknown-host',
  EAI_FAIL: 'unknown-host',
  EAI_NODATA: 'unknown-host',
  EHOSTUNREACH: 'unreachable',
  ENETUNREACH: 'unreachable',
  EHOSTDOWN: 'unreachable',
  ENETDOWN: 'unreachable',
  ETIMEDOUT: 'timeout',
};

/** The error code of a network failure; Node reports a host with several addresses as an AggregateError. */
function networkCode(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const { code, errors } = error as { code?: unknown; errors?: unknown };
  if (typeof code === 'string') return code;
  return Array.isArray(errors) ? networkCode(errors[0]) : undefined;
}

/** Describes a failure to connect in terms a user can act on. */
function explainConnectError(error: unknown, captured: BrokerClose | undefined, label: string, timeoutSeconds: number): PortError {
  const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  const tls = explainTlsError(error, label, text);
  if (tls !== undefined) return tls;
  const close = captured ?? closeInMessage(text);
  if (close !== undefined) {
    const words = `${close.replyCode} ${close.replyText}`;
    // RabbitMQ refuses a login with 403 ACCESS_REFUSED, and a vhost with 530 NOT_ALLOWED: `vhost x
    // not found`, `access to vhost 'x' refused for user 'u'` (permissions), the same followed by
    // `: connection limit (n) is reached`, or `vhost x is down`.
    if (close.replyCode === 403 || (close.replyCode === 530 && /refused for user '[^']*'$/.test(close.replyText))) {
      return new PortError('access-refused', `Broker at ${label} refused the login or vhost: ${words}`, {
        replyCode: close.replyCode,
        cause: error,
      });
    }
    if (close.replyCode === 530 && /vhost .* not found/i.test(close.replyText)) {
      return failed('unknown-vhost', `Broker at ${label} has no such vhost: ${words}`, error);
    }
    return failed('handshake', `Broker at ${label} refused the connection: ${words}`, error);
  }
  // amqplib's own connectTimeout error has a message and no code.
  const reason = error instanceof Error && error.message === 'connect ETIMEDOUT' ? 'timeout' : networkReasons[networkCode(error) ?? ''];
  switch (reason) {
    case 'refused':
      return failed(
        reason,
        `Cannot connect to the broker at ${label}: nothing accepts connections there (is the broker running, on this port?): ${text}`,
        error,
      );
    case 'unknown-host':
      return failed(reason, `Cannot connect to the broker at ${label}: its host name does not resolve: ${text}`, error);
    case 'unreachable':
      return failed(reason, `Cannot connect to the broker at ${label}: its host or network is unreachable: ${text}`, error);
    case 'timeout':
      return failed(
        reason,
        `Cannot connect to the broker at ${label}: the connection and AMQP handshake did not complete within connectTimeout (${timeoutSeconds} s): ${text}`,
        error,
      );
    default:
      if (/ConnectionOpenOk; got <ConnectionClose/.test(text)) {
        return failed(
          'handshake',
          `Broker at ${label} refused to open the vhost, for a reason amqplib does not pass on over TLS (does the vhost exist, may the user use it?): ${text}`,
          error,
        );
      }
      return failed(
        'handshake',
        `Cannot connect to the broker at ${label}: the connection ended before the AMQP handshake completed (is this an AMQP 0-9-1 port?): ${text}`,
        error,
      );
  }
}

/**
 * Node names a failed certificate check with OpenSSL's verify code (`SELF_SIGNED_CERT_IN_CHAIN`,
 * `UNABLE_TO_VERIFY_LEAF_SIGNATURE`, …) or `ERR_TLS_CERT_ALTNAME_INVALID`, and an alert the broker
 * sent with `ERR_SSL_…_ALERT_…`. A TLS endpoint that rejects the client certificate after the
 * handshake (TLS 1.3 verifies it late) just closes the socket, before the AMQP handshake ends.
 */
function explainTlsError(error: unknown, label: string, text: string): PortError | undefined {
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  if (typeof code === 'string' && /^ERR_SSL_.*ALERT/.test(code)) {
    return new PortError(
      'tls',
      `The broker at ${label} refused the TLS handshake (${code}); check the client certificate and key (ssl.cert, ssl.key): ${text}`,
      { cause: error },
    );
  }
  if (typeof code === 'string' && /CERT|^UNABLE_TO_/.test(code)) {
    return new PortError(
      'tls',
      `The certificate of the broker at ${label} was not accepted (${code}); pass the CA that signed it as ssl.ca and a servername it is issued for: ${text}`,
      { cause: error },
    );
  }
  if (typeof code === 'string' && /^ERR_(SSL|TLS)_/.test(code)) {
    return new PortError('tls', `The TLS handshake with ${label} failed (${code}); is that port a TLS listener? ${text}`, { cause: error });
  }
  if (label.startsWith('amqps:') && /closed abruptly during opening handshake/.test(text)) {
    return new PortError(
      'tls',
      `The TLS endpoint at ${label} closed the connection during the handshake; it probably refused the client certificate (ssl.cert, ssl.key): ${text}`,
      { cause: error },
    );
  }
  return undefined;
}

function failed(reason: ConnectFailedReason, message: string, cause: unknown): PortError {
  return new PortError('connect-failed', message, { reason, cause });
}
