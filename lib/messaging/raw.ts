import { randomBytes } from 'node:crypto';
import type { AmqpChannel, Delivery, IncomingProperties, MessageProperties, PortError, Returned } from '../amqp/port.js';
import { failureKind } from '../amqp/port.js';
import { RetiredChannels } from '../amqp/retired-channels.js';
import {
  QAMAbortException,
  QAMAccessRefusedException,
  QAMConnectionException,
  QAMException,
  QAMNoRouteException,
  QAMPublishException,
  QAMTimeoutException,
  describeError,
} from '../errors.js';
import { anyString, boolean, checkOptions, nested, nonEmptyString, rule, seconds, type Rules } from '../options.js';
import { reservedHeaderPrefix } from '../protocols/native/wire.js';

/** AMQP properties a raw message may carry. `headers` may not use the reserved prefix `x-qam-`. */
export interface RawProperties {
  contentType?: string;
  contentEncoding?: string;
  headers?: Record<string, unknown>;
  /** 2: persistent. */
  deliveryMode?: 1 | 2;
  correlationId?: string;
  messageId?: string;
  /** Milliseconds, as AMQP's per-message TTL. */
  expiration?: number;
  /** Seconds since the epoch. */
  timestamp?: number;
  type?: string;
  appId?: string;
  /** Checked by RabbitMQ against the connection's user. */
  userId?: string;
  priority?: number;
}

export interface RawPublishOptions {
  properties?: RawProperties;
  /** Return unroutable messages (the promise rejects with NO_ROUTE). @default true */
  mandatory?: boolean;
}

export interface RawCallOptions extends RawPublishOptions {
  /** Seconds to wait for the reply. @default 30 */
  timeout?: number;
  /** Cancels the call (QAMAbortException) when it aborts. */
  signal?: AbortSignal;
  /**
   * A queue the caller declared (and bound) for replies, named as the request's `reply_to`;
   * replies are matched by correlation id. @default RabbitMQ's direct reply-to
   */
  replyQueue?: string;
}

/** A reply as it arrived: its body, its properties and its delivery fields. */
export interface RawReply {
  body: Buffer;
  properties: IncomingProperties;
  fields: { exchange: string; routingKey: string; redelivered: boolean };
}

/** What raw messaging needs of a connection. @internal */
export interface ChannelSource {
  readonly label: string;
  openChannel(options: { confirms: boolean }): Promise<AmqpChannel>;
}

const directReplyTo = 'amq.rabbitmq.reply-to';
/** A channel nacked on is replaced unless it opened less than this long ago (at most one new channel a second). */
const replaceNackedAfterMs = 1000;
/** The header that matches a returned raw publish to its promise. */
const publishIdHeader = `${reservedHeaderPrefix}publish`;

const propertyRules: Rules<RawProperties> = {
  contentType: anyString,
  contentEncoding: anyString,
  headers: rule('an object of headers without the reserved prefix x-qam-', (value) => {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
    return Object.keys(value).every((key) => !key.toLowerCase().startsWith(reservedHeaderPrefix));
  }),
  deliveryMode: rule('1 or 2', (value) => value === 1 || value === 2),
  correlationId: anyString,
  messageId: anyString,
  expiration: rule('a non-negative integer of milliseconds', (value) => Number.isSafeInteger(value) && (value as number) >= 0),
  timestamp: rule('a non-negative integer', (value) => Number.isSafeInteger(value) && (value as number) >= 0),
  type: anyString,
  appId: anyString,
  userId: anyString,
  priority: rule('an integer from 0 to 255', (value) => Number.isInteger(value) && (value as number) >= 0 && (value as number) <= 255),
};

const callRules: Rules<RawCallOptions> = {
  properties: nested(propertyRules),
  mandatory: boolean,
  timeout: seconds,
  signal: rule('an AbortSignal', (value) => value instanceof AbortSignal),
  replyQueue: nonEmptyString,
};

function toBuffer(body: unknown): Buffer {
  if (Buffer.isBuffer(body)) return body;
  if (typeof body === 'string') return Buffer.from(body);
  throw new TypeError(`A raw message body must be a Buffer or a string, got ${typeof body}`);
}

function amqpProperties(properties: RawProperties | undefined, headers: Record<string, unknown>): MessageProperties {
  const { expiration, headers: own, ...rest } = properties ?? {};
  const out: MessageProperties = { ...rest, headers: { ...own, ...headers } };
  if (expiration !== undefined) out.expiration = String(expiration);
  return out;
}

interface PendingCall {
  resolve(reply: RawReply): void;
  reject(error: Error): void;
}

/**
 * Raw publishing and RPC on a connection (Shrapnel's `rpc.call` and confirmed publish): any
 * exchange and routing key, any body and properties. Publishes go out on one confirm channel
 * with `mandatory`; replies come through direct reply-to on that channel, or through a queue the
 * caller names, matched by correlation id. Every message also carries the connection's `x-qam-*`
 * headers (wire version, fingerprint).
 *
 * A channel the broker nacks a message on is retired, as a proxy's is (see CallClient): later
 * messages go out on a new channel, and the old one closes once what was sent on it has ended.
 * @internal
 */
export class RawMessaging {
  readonly #source: ChannelSource;
  readonly #headers: Record<string, unknown>;
  #channel: Promise<AmqpChannel> | undefined;
  readonly #replyChannels = new Map<string, Promise<AmqpChannel>>();
  readonly #calls = new Map<string, PendingCall>();
  readonly #publishes = new Map<string, (error: Error) => void>();
  /** The current channel, once open, and when it opened (ms since the epoch). */
  #open: AmqpChannel | undefined;
  #openedAt = 0;
  /** Channels retired after a nack, each with the calls (`c:` id) and publishes (`p:` id) that may still wait on it. */
  readonly #retired = new RetiredChannels();
  readonly #prefix = randomBytes(6).toString('base64url');
  #seq = 0;

  constructor(source: ChannelSource, headers: Record<string, unknown>) {
    this.#source = source;
    this.#headers = headers;
  }

  async publish(exchange: string, routingKey: string, body: Buffer | string, options: RawPublishOptions = {}): Promise<void> {
    checkOptions('publish', options, callRules);
    await this.send(exchange, routingKey, toBuffer(body), amqpProperties(options.properties, {}), options.mandatory ?? true);
  }

  /**
   * Publishes a message with any AMQP properties (`replyTo` too) and the connection's `x-qam-*`
   * headers on the confirm channel; resolves once the broker confirmed it.
   */
  async send(exchange: string, routingKey: string, content: Buffer, message: MessageProperties, mandatory: boolean): Promise<void> {
    const id = this.#nextId();
    const properties: MessageProperties = { ...message, headers: { ...message.headers, ...this.#headers, [publishIdHeader]: id } };
    const channel = await this.#publisher();
    await new Promise<void>((resolve, reject) => {
      this.#publishes.set(id, reject);
      const confirmed = (failure: PortError | undefined): void => {
        if (failure?.kind === 'nacked') this.#retire(channel);
        if (!this.#publishes.delete(id)) return;
        this.#retired.ended(`p:${id}`);
        if (failure === undefined) resolve();
        else reject(this.#explain(failure, exchange, routingKey));
      };
      try {
        channel.publish(exchange, routingKey, content, properties, { mandatory }, confirmed);
      } catch (error) {
        this.#publishes.delete(id);
        reject(this.#explain(error, exchange, routingKey));
      }
    });
  }

  async call(exchange: string, routingKey: string, body: Buffer | string, options: RawCallOptions = {}): Promise<RawReply> {
    checkOptions('rpc', options, callRules);
    const content = toBuffer(body);
    const timeoutMs = Math.ceil((options.timeout ?? 30) * 1000);
    const { signal, replyQueue } = options;
    if (signal?.aborted === true) throw new QAMAbortException(`Call to ${exchange || '(default)'}/${routingKey} was cancelled`);
    const id = options.properties?.correlationId ?? this.#nextId();
    if (this.#calls.has(id)) throw new TypeError(`A call with correlation id ${id} is already waiting`);
    const properties = amqpProperties(options.properties, this.#headers);
    properties.correlationId = id;
    properties.replyTo = replyQueue ?? directReplyTo;
    return new Promise<RawReply>((resolve, reject) => {
      const onAbort = (): void => end(new QAMAbortException(`Call to ${exchange || '(default)'}/${routingKey} was cancelled`));
      const timer = setTimeout(
        () => end(new QAMTimeoutException(`No reply from ${exchange || '(default)'}/${routingKey} within ${timeoutMs} ms`)),
        timeoutMs,
      );
      const end = (outcome: Error | RawReply): void => {
        if (this.#calls.get(id) !== pending) return;
        this.#calls.delete(id);
        this.#retired.ended(`c:${id}`);
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        if (outcome instanceof Error) reject(outcome);
        else resolve(outcome);
      };
      const pending: PendingCall = { resolve: end, reject: end };
      this.#calls.set(id, pending);
      signal?.addEventListener('abort', onAbort, { once: true });
      const send = async (): Promise<void> => {
        if (replyQueue !== undefined) await this.#replyConsumer(replyQueue);
        const channel = await this.#publisher();
        if (this.#calls.get(id) !== pending) return;
        channel.publish(exchange, routingKey, content, properties, { mandatory: options.mandatory ?? true }, (failure) => {
          if (failure?.kind === 'nacked') this.#retire(channel);
          if (failure !== undefined) end(this.#explain(failure, exchange, routingKey));
        });
      };
      send().catch((error: unknown) => end(this.#explain(error, exchange, routingKey)));
    });
  }

  /** Fails what waits; the channels close with the connection. */
  close(): void {
    this.#channel = undefined;
    this.#open = undefined;
    this.#retired.clear();
    this.#replyChannels.clear();
    this.#failAll(new QAMConnectionException(`The connection to ${this.#source.label} was closed`));
  }

  #nextId(): string {
    return `${this.#prefix}.${(++this.#seq).toString(36)}`;
  }

  /** The confirm channel publishing everything and consuming direct reply-to (opened once, again after it closed). */
  #publisher(): Promise<AmqpChannel> {
    this.#channel ??= this.#openPublisher().catch((error: unknown) => {
      this.#channel = undefined;
      throw error;
    });
    return this.#channel;
  }

  async #openPublisher(): Promise<AmqpChannel> {
    const channel = await this.#source.openChannel({ confirms: true });
    const opened = this.#channel;
    channel.onReturn((returned) => this.#returned(returned));
    channel.onClose((error) => {
      const retired = this.#retired.closed(channel);
      if (retired !== undefined) {
        this.#retiredClosed(retired, error);
        return;
      }
      // Else a retired channel closed once nothing waited on it, or one that never opened.
      if (this.#open !== channel) return;
      this.#open = undefined;
      if (this.#channel === opened) this.#channel = undefined;
      this.#failAll(
        error === undefined
          ? new QAMConnectionException(`The raw messaging channel to ${this.#source.label} closed`)
          : this.#explain(error, '', 'a message on the channel'),
      );
    });
    await channel.consume(directReplyTo, (delivery) => this.#reply(delivery), { noAck: true });
    this.#open = channel;
    this.#openedAt = Date.now();
    return channel;
  }

  /**
   * The broker nacked a message on `channel`: unless it is no longer the current one or opened
   * less than {@link replaceNackedAfterMs} ago, the next message opens a new channel, and this one
   * closes once the calls and publishes sent on it have ended (RabbitMQ 3.10 nacks, for the life
   * of a channel, every publish to a quorum queue whose first publish on it came while the queue's
   * leader was on a node that was down).
   */
  #retire(channel: AmqpChannel): void {
    if (this.#open !== channel || Date.now() - this.#openedAt < replaceNackedAfterMs) return;
    this.#open = undefined;
    this.#channel = undefined;
    const waiting = new Set([...[...this.#calls.keys()].map((id) => `c:${id}`), ...[...this.#publishes.keys()].map((id) => `p:${id}`)]);
    this.#retired.retire(channel, waiting);
  }

  /** A retired channel closed before what was sent on it ended: that fails, nothing else. */
  #retiredClosed(waiting: Set<string>, error: PortError | undefined): void {
    const failure =
      error === undefined
        ? new QAMConnectionException(`The raw messaging channel to ${this.#source.label} closed`)
        : this.#explain(error, '', 'a message on the channel');
    for (const key of waiting) {
      const id = key.slice(2);
      if (key.startsWith('c:')) this.#calls.get(id)?.reject(failure);
      else {
        const reject = this.#publishes.get(id);
        this.#publishes.delete(id);
        reject?.(failure);
      }
    }
  }

  #replyConsumer(queue: string): Promise<AmqpChannel> {
    let opening = this.#replyChannels.get(queue);
    if (opening === undefined) {
      opening = (async () => {
        const channel = await this.#source.openChannel({ confirms: false });
        channel.onClose(() => this.#replyChannels.delete(queue));
        try {
          await channel.consume(
            queue,
            (delivery) => this.#reply(delivery),
            { noAck: true },
            () => this.#replyChannels.delete(queue),
          );
        } catch (error) {
          await channel.close();
          throw error;
        }
        return channel;
      })();
      opening.catch(() => this.#replyChannels.delete(queue));
      this.#replyChannels.set(queue, opening);
    }
    return opening;
  }

  #reply(delivery: Delivery): void {
    const { correlationId } = delivery.properties;
    const pending = typeof correlationId === 'string' ? this.#calls.get(correlationId) : undefined;
    pending?.resolve({
      body: delivery.content,
      properties: delivery.properties,
      fields: { exchange: delivery.exchange, routingKey: delivery.routingKey, redelivered: delivery.redelivered },
    });
  }

  #returned(returned: Returned): void {
    const error = new QAMNoRouteException(
      `No queue took the message to ${returned.exchange || '(default)'}/${returned.routingKey}: ${returned.replyText}`,
    );
    const { correlationId, headers } = returned.properties;
    if (typeof correlationId === 'string') this.#calls.get(correlationId)?.reject(error);
    const publishId = typeof headers === 'object' && headers !== null ? (headers as Record<string, unknown>)[publishIdHeader] : undefined;
    if (typeof publishId === 'string') {
      const reject = this.#publishes.get(publishId);
      this.#publishes.delete(publishId);
      reject?.(error);
    }
  }

  #failAll(error: Error): void {
    for (const pending of [...this.#calls.values()]) pending.reject(error);
    const publishes = [...this.#publishes];
    this.#publishes.clear();
    for (const [id, reject] of publishes) {
      this.#retired.ended(`p:${id}`);
      reject(error);
    }
  }

  #explain(error: unknown, exchange: string, routingKey: string): Error {
    if (error instanceof QAMException || error instanceof TypeError) return error;
    const where = `${exchange || '(default)'}/${routingKey}`;
    switch (failureKind(error)) {
      case 'access-refused':
        return new QAMAccessRefusedException(`The broker refused the message to ${where}: ${describeError(error)}`, error);
      case 'not-found':
        return new QAMNoRouteException(`No exchange for the message to ${where}: ${describeError(error)}`);
      case 'closed':
        return new QAMConnectionException(`The connection closed before the broker confirmed the message to ${where}`, error);
      default:
        return new QAMPublishException(`The broker did not accept the message to ${where}: ${describeError(error)}`, error);
    }
  }
}
