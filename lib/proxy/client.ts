import { randomBytes } from 'node:crypto';
import type { ConfirmChannel, ConsumeMessage, Message } from 'amqplib';
import type { QAMConnection } from '../amqp/connection.js';
import { payloadToError, parseReply, type ErrorClass, type RequestEnvelope } from '../protocols/native/format.js';
import {
  QAMAccessRefusedException,
  QAMBadMessageException,
  QAMClosedException,
  QAMConnectionException,
  QAMException,
  QAMNoRouteException,
  QAMPayloadTooLargeException,
  QAMPublishException,
  QAMSerializationException,
  amqpReplyCode,
  describeError,
} from '../errors.js';
import type { Logger } from '../logger.js';
import { directReplyTo, serverNames } from '../protocols/naming.js';
import { PendingCalls, type Completion } from './pending.js';
import { serializerForContentType, type Serializer } from '../serializers.js';

/** @internal */
export interface ClientSettings {
  serverId: string;
  connection: QAMConnection;
  ownsConnection: boolean;
  serializer: Serializer;
  maxBytes: number;
  errorClasses: ReadonlyMap<string, ErrorClass>;
  logger: Logger;
}

/** @internal One call as the proxy facade hands it over. */
export interface CallRequest {
  method: string;
  params: unknown[];
  timeoutMs: number;
  completion: Completion;
  signal: AbortSignal | undefined;
  /** Times to send the call again after a timeout or a lost connection (idempotent functions only). */
  retries: number;
}

/**
 * What the proxy facade needs of the AMQP side: start a call (its uid is returned), end one that
 * cannot be sent, cancel, close. Calls end through {@link pending}, whatever the transport.
 * @internal
 */
export interface CallTransport {
  readonly pending: PendingCalls;
  call(request: CallRequest): string;
  fail(method: string, completion: Completion, error: Error): string;
  close(): Promise<void>;
}

/**
 * The steps of a call every transport shares: a uid; a closed transport or arguments that cannot
 * be encoded end the call on a later tick, after its uid is returned; otherwise the call enters
 * {@link pending} with its retries and is sent. A retry is encoded again with its new deadline and
 * goes out under the same uid, so any reply to any attempt answers the call.
 * @internal
 */
export abstract class CallPipeline<Outgoing> implements CallTransport {
  abstract readonly pending: PendingCalls;
  readonly #serverId: string;

  constructor(serverId: string) {
    this.#serverId = serverId;
  }

  abstract close(): Promise<void>;
  /** The uid of a new call. */
  protected abstract nextId(): string;
  /** True once {@link close} began. */
  protected abstract get closed(): boolean;
  /** The request on the wire, or the error that keeps it from being sent. */
  protected abstract encode(id: string, method: string, params: unknown[], deadline: number): Outgoing | Error;
  /** Publishes an encoded request of a call in {@link pending}. */
  protected abstract send(id: string, outgoing: Outgoing, deadline: number): void;

  /** Starts a call and returns its uid. */
  call(request: CallRequest): string {
    const { method, params, timeoutMs, completion, signal, retries } = request;
    const id = this.nextId();
    if (this.closed) {
      this.pending.rejectSoon(id, method, completion, new QAMClosedException(`Proxy for server ${this.#serverId} is closed`));
      return id;
    }
    const deadline = Date.now() + timeoutMs;
    const outgoing = this.encode(id, method, params, deadline);
    if (outgoing instanceof Error) {
      this.pending.rejectSoon(id, method, completion, outgoing);
      return id;
    }
    const retry = retries > 0 ? { times: retries, resend: (next: number) => this.#resend(id, method, params, next) } : undefined;
    this.pending.add(id, method, timeoutMs, completion, signal, retry);
    // An already aborted signal ended the call in add(): nothing to send, no channel to open.
    if (this.pending.has(id)) this.send(id, outgoing, deadline);
    return id;
  }

  /** Ends a call that cannot be sent; callbacks run on a later tick, after the uid is returned. */
  fail(method: string, completion: Completion, error: Error): string {
    const id = this.nextId();
    this.pending.rejectSoon(id, method, completion, error);
    return id;
  }

  #resend(id: string, method: string, params: unknown[], deadline: number): void {
    const outgoing = this.encode(id, method, params, deadline);
    if (outgoing instanceof Error) this.pending.settle(id, outgoing);
    else this.send(id, outgoing, deadline);
  }
}

/**
 * The AMQP side of a proxy: one confirm channel that publishes requests and consumes their replies
 * through RabbitMQ's direct reply-to (which requires both on one channel). Requests are published
 * with `mandatory`, so a server id no queue serves comes back at once as NO_ROUTE, and with an
 * `expiration` equal to the caller's remaining time, so the broker drops requests nobody waits for.
 * @internal
 */
export class RpcClient extends CallPipeline<Buffer> {
  readonly pending: PendingCalls;
  readonly #settings: ClientSettings;
  readonly #queue: string;
  /** Uids are short (memory per pending call) and distinct between proxies (logs). */
  readonly #prefix = `${randomBytes(4).toString('base64url')}.`;
  readonly #detach: () => void;
  #seq = 0;
  readonly #waiting = new Map<string, { body: Buffer; deadline: number }>();
  #channel: ConfirmChannel | undefined;
  #opening: Promise<ConfirmChannel> | undefined;
  #channelError: Error | undefined;
  #closed = false;

  constructor(settings: ClientSettings) {
    super(settings.serverId);
    this.#settings = settings;
    this.#queue = serverNames(settings.serverId).queue;
    this.pending = new PendingCalls(settings.logger, (id) => this.#waiting.delete(id));
    this.#detach = settings.connection.attach({
      onConnect: () => undefined,
      onDisconnect: (error) => this.#channelLost(this.#channel, error),
    });
  }

  protected nextId(): string {
    return this.#prefix + (++this.#seq).toString(36);
  }

  protected get closed(): boolean {
    return this.#closed;
  }

  protected encode(_id: string, method: string, params: unknown[], deadline: number): Buffer | Error {
    const envelope: RequestEnvelope = { method, params, deadline };
    let body: Buffer;
    try {
      body = this.#settings.serializer.encode(envelope);
    } catch (error) {
      return new QAMSerializationException(`Arguments of ${method} cannot be serialized as ${this.#settings.serializer.name}: ${describeError(error)}`, error);
    }
    if (body.length > this.#settings.maxBytes) {
      return new QAMPayloadTooLargeException(`Request to ${method} is ${body.length} bytes, above the limit of ${this.#settings.maxBytes} bytes`);
    }
    return body;
  }

  /**
   * Publishes at once on the open channel. Otherwise the request waits in {@link #waiting} until a
   * channel (and its reply consumer) is open; a call that ends meanwhile leaves it at once, so an
   * outage holds memory only for calls still within their timeout. When the channel cannot be
   * opened, the waiting calls leave before they fail, so those that retry start a new open.
   */
  protected send(id: string, body: Buffer, deadline: number): void {
    const channel = this.#channel;
    if (channel !== undefined) {
      this.#publish(channel, id, body, deadline);
      return;
    }
    this.#waiting.set(id, { body, deadline });
    if (this.#opening !== undefined) return;
    this.#open().then(
      (opened) => {
        for (const [waitingId, request] of this.#takeWaiting()) this.#publish(opened, waitingId, request.body, request.deadline);
      },
      (error: unknown) => this.pending.settleEach([...this.#takeWaiting().keys()], asConnectionError(error)),
    );
  }

  #takeWaiting(): Map<string, { body: Buffer; deadline: number }> {
    const waiting = new Map(this.#waiting);
    this.#waiting.clear();
    return waiting;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.pending.settleAll(new QAMClosedException(`Proxy for server ${this.#settings.serverId} was closed before the reply arrived`));
    this.#detach();
    // While the broker is down, a channel being opened waits for the reconnect: do not wait.
    const opening = this.#settings.connection.connected ? this.#opening : undefined;
    const channel = this.#channel ?? (await opening?.catch(() => undefined));
    this.#channel = undefined;
    await channel?.close().catch(() => undefined);
    if (this.#settings.ownsConnection) await this.#settings.connection.close();
  }

  #publish(channel: ConfirmChannel, id: string, body: Buffer, deadline: number): void {
    if (!this.pending.has(id)) return;
    const remaining = deadline - Date.now();
    try {
      channel.publish(
        '',
        this.#queue,
        body,
        {
          correlationId: id,
          replyTo: directReplyTo,
          contentType: this.#settings.serializer.contentType,
          expiration: String(Math.max(1, remaining)),
          mandatory: true,
        },
        (error: unknown) => {
          if (error !== null && error !== undefined) this.#publishFailed(id, error);
        },
      );
    } catch (error) {
      this.#publishFailed(id, error);
    }
  }

  #publishFailed(id: string, error: unknown): void {
    const cause = this.#channelError ?? error;
    const text = describeError(cause);
    let reason: Error;
    if (amqpReplyCode(cause) === 403 || /ACCESS.REFUSED/.test(text)) {
      reason = new QAMAccessRefusedException(`The broker refused the request to server ${this.#settings.serverId}: ${text}`, cause);
    } else if (this.#channelError === undefined && isClosedError(error)) {
      reason = new QAMConnectionException(`The connection closed before the broker confirmed the request to server ${this.#settings.serverId}: ${text}`, error);
    } else {
      reason = new QAMPublishException(`The broker did not accept the request to server ${this.#settings.serverId}: ${text}`, cause);
    }
    this.pending.settle(id, reason);
  }

  #open(): Promise<ConfirmChannel> {
    this.#opening ??= this.#createChannel().finally(() => {
      this.#opening = undefined;
    });
    return this.#opening;
  }

  async #createChannel(): Promise<ConfirmChannel> {
    let channel: ConfirmChannel;
    try {
      channel = await (await this.#settings.connection.model()).createConfirmChannel();
    } catch (error) {
      if (!isClosedError(error)) throw error;
      // The socket died before the connection said so: its channels close first. Once it has
      // closed, model() waits for the reconnect.
      await new Promise((resolve) => setImmediate(resolve));
      channel = await (await this.#settings.connection.model()).createConfirmChannel();
    }
    channel.on('error', (error: Error) => {
      this.#channelError = error;
      this.#settings.logger.warn(`proxy for server ${this.#settings.serverId}: channel error: ${describeError(error)}`);
    });
    channel.on('close', () => this.#channelLost(channel, this.#channelError));
    channel.on('return', (message: Message) => this.#returned(message));
    await channel.consume(directReplyTo, (message) => this.#receive(message), { noAck: true });
    if (this.#closed) {
      await channel.close().catch(() => undefined);
      throw new QAMClosedException(`Proxy for server ${this.#settings.serverId} is closed`);
    }
    this.#channelError = undefined;
    this.#channel = channel;
    return channel;
  }

  /**
   * Direct reply-to replies are bound to the channel that published the request: once it is gone
   * they cannot arrive, so every waiting call fails now rather than at its timeout.
   */
  #channelLost(channel: ConfirmChannel | undefined, error: Error | undefined): void {
    if (channel === undefined || channel !== this.#channel) return;
    this.#channel = undefined;
    if (this.#closed) return;
    const reason = new QAMConnectionException(
      `The channel to the broker closed${error === undefined ? '' : ` (${describeError(error)})`}; replies to calls in flight cannot arrive`,
      error,
    );
    // The connection's own close follows its channels' in the same turn; settling after it makes
    // retries wait for the reconnect instead of reopening on the dead connection.
    const lost = this.pending.ids();
    setImmediate(() => this.pending.settleEach(lost, reason));
  }

  #returned(message: Message): void {
    const id = (message.properties as { correlationId?: unknown }).correlationId;
    if (typeof id !== 'string') return;
    this.pending.settle(id, new QAMNoRouteException(`No queue serves server '${this.#settings.serverId}': the broker returned the request as unroutable`));
  }

  #receive(message: ConsumeMessage | null): void {
    if (message === null) return;
    const { correlationId: id, contentType } = message.properties as { correlationId?: unknown; contentType?: string };
    if (typeof id !== 'string' || !this.pending.has(id)) {
      this.pending.noteUnknownReply();
      this.#settings.logger.debug(`proxy for server ${this.#settings.serverId} dropped a reply for ${String(id)}: no call waits for it`);
      return;
    }
    this.pending.settle(id, decodeReply(message.content, contentType, this.#settings));
  }
}

/** Reads a reply of qam's own protocol: its result, or the error it carries or that it is. @internal */
export function decodeReply(
  content: Buffer,
  contentType: string | undefined,
  settings: Pick<ClientSettings, 'maxBytes' | 'errorClasses'>,
): Error | { value: unknown } {
  if (content.length > settings.maxBytes) {
    return new QAMPayloadTooLargeException(`Reply of ${content.length} bytes exceeds the limit of ${settings.maxBytes} bytes`);
  }
  const serializer = serializerForContentType(contentType);
  if (serializer === undefined) return new QAMBadMessageException(`Reply has unsupported content type '${String(contentType)}'`);
  try {
    const reply = parseReply(serializer.decode(content));
    return 'error' in reply ? payloadToError(reply.error, settings.errorClasses) : { value: reply.result };
  } catch (error) {
    return error instanceof QAMBadMessageException ? error : new QAMBadMessageException(`Reply cannot be decoded as ${serializer.name}: ${describeError(error)}`, error);
  }
}

/** amqplib's error for an operation on a channel or connection that has closed. @internal */
export function isClosedError(error: unknown): boolean {
  return error instanceof Error && (error.name === 'IllegalOperationError' || /^(channel|connection) closed/i.test(error.message));
}

function asConnectionError(error: unknown): Error {
  if (error instanceof QAMException) return error;
  return new QAMConnectionException(`Cannot open a channel to the broker: ${describeError(error)}`, error);
}
