import type { Channel, ChannelModel, ConfirmChannel, ConsumeMessage, Message, Options } from 'amqplib';
import { CallPipeline, isClosedError } from './client.js';
import type { QAMConnection } from '../amqp/connection.js';
import {
  QAMAccessRefusedException,
  QAMClosedException,
  QAMConnectionException,
  QAMException,
  QAMNoRouteException,
  QAMPayloadTooLargeException,
  QAMPublishException,
  amqpReplyCode,
  describeError,
} from '../errors.js';
import type { Logger } from '../logger.js';
import { PendingCalls } from './pending.js';

/** A request ready to publish. @internal */
export interface OutgoingRequest {
  exchange: string;
  routingKey: string;
  body: Buffer;
  properties: Options.Publish;
}

/**
 * A client wire format whose replies come through a queue the proxy declares (Python QAM's,
 * callme's), rather than direct reply-to: its names, ids, and how requests and replies read.
 * @internal
 */
export interface ClientProtocol {
  /** The queue replies arrive in. */
  readonly replyQueue: string;
  /** True when the reply queue outlives the connection, so calls in flight survive a reconnect. */
  readonly repliesOutliveConnection: boolean;
  /** Declares the reply queue and what routes replies to it. */
  declareReplies(channel: Channel): Promise<void>;
  /** Declares what publishing a request needs, on the publish channel. */
  declareRequests(channel: Channel): Promise<void>;
  /** Deletes what {@link declareReplies} made. */
  removeReplies(channel: Channel): Promise<void>;
  /** A new call id: never one a reply may still come for, and none that another party can guess (it could forge the reply). */
  nextId(): string;
  /** The request of a call. Throws QAMSerializationException when its params cannot be encoded. */
  request(id: string, method: string, params: unknown[], deadline: number): OutgoingRequest;
  /** The call id of a request the broker returned as unroutable. */
  returnedId(message: Message): string | undefined;
  /** The call a reply answers (undefined when it names none) and how that call ends. */
  readReply(message: ConsumeMessage): { id: string | undefined; outcome: Error | { value: unknown } };
}

/** @internal */
export interface ReplyQueueClientSettings {
  serverId: string;
  connection: QAMConnection;
  ownsConnection: boolean;
  maxBytes: number;
  logger: Logger;
  protocol: ClientProtocol;
}

/**
 * The AMQP side of a proxy whose replies come through a queue of its own. Two channels: one
 * consumes the reply queue; a confirm channel publishes requests. The broker closes a channel that
 * publishes to an exchange the user may not write to (ACCESS_REFUSED) or that does not exist
 * (NOT_FOUND); on its own channel that failure ends only the calls published on it, at once, and
 * the next call opens a new one. Requests carry `mandatory`, so a request no queue is bound for
 * comes back as NO_ROUTE, and an `expiration` equal to the caller's remaining time, so the broker
 * drops requests nobody waits for.
 * @internal
 */
export class ReplyQueueClient extends CallPipeline<OutgoingRequest> {
  readonly pending: PendingCalls;
  readonly #settings: ReplyQueueClientSettings;
  readonly #protocol: ClientProtocol;
  readonly #detach: () => void;
  readonly #channelErrors = new WeakMap<Channel, Error>();
  #consumer: { channel: Channel; tag: string } | undefined;
  #publisher: ConfirmChannel | undefined;
  #setup: Promise<ConfirmChannel> | undefined;
  #declared = false;
  #closed = false;

  constructor(settings: ReplyQueueClientSettings) {
    super(settings.serverId);
    this.#settings = settings;
    this.#protocol = settings.protocol;
    this.pending = new PendingCalls(settings.logger);
    this.#detach = settings.connection.attach({
      onConnect: () => this.#reconnected(),
      onDisconnect: (error) => this.#disconnected(error),
    });
  }

  /** A call's uid is its id on the wire. */
  protected nextId(): string {
    return this.#protocol.nextId();
  }

  protected get closed(): boolean {
    return this.#closed;
  }

  protected encode(id: string, method: string, params: unknown[], deadline: number): OutgoingRequest | Error {
    let outgoing: OutgoingRequest;
    try {
      outgoing = this.#protocol.request(id, method, params, deadline);
    } catch (error) {
      return asError(error);
    }
    if (outgoing.body.length > this.#settings.maxBytes) {
      return new QAMPayloadTooLargeException(`Request to ${method} is ${outgoing.body.length} bytes, above the limit of ${this.#settings.maxBytes} bytes`);
    }
    return outgoing;
  }

  /** Publishes at once when the reply queue is consumed and a publish channel open, else once they are. */
  protected send(id: string, outgoing: OutgoingRequest, deadline: number): void {
    const publisher = this.#publisher;
    if (publisher !== undefined && this.#consumer !== undefined) this.#publish(publisher, id, outgoing, deadline);
    else {
      this.#ready().then(
        (opened) => this.#publish(opened, id, outgoing, deadline),
        (error: unknown) => this.pending.settle(id, this.#explain(error)),
      );
    }
  }

  /** Rejects waiting calls, closes the channels and deletes the reply queue (and the connection, when owned). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.pending.settleAll(new QAMClosedException(`Proxy for server ${this.#settings.serverId} was closed before the reply arrived`));
    this.#detach();
    // While the connection is down, a setup in progress waits for the reconnect: it then shuts
    // down what it opened itself (see #open) rather than hold up close() until the broker is back.
    if (this.#settings.connection.connected) await this.#setup?.catch(() => undefined);
    await this.#shutdown();
    if (this.#settings.ownsConnection) await this.#settings.connection.close();
  }

  async #shutdown(): Promise<void> {
    const channels = [this.#publisher, this.#consumer?.channel];
    this.#publisher = undefined;
    this.#consumer = undefined;
    for (const channel of channels) await channel?.close().catch(() => undefined);
    if (this.#declared) await this.#removeReplies();
  }

  async #removeReplies(): Promise<void> {
    const queue = this.#protocol.replyQueue;
    if (!this.#settings.connection.connected) {
      this.#settings.logger.warn(`proxy for server ${this.#settings.serverId}: disconnected at close, reply queue ${queue} left to the broker`);
      return;
    }
    try {
      const channel = await (await this.#settings.connection.model()).createChannel();
      channel.on('error', () => undefined);
      await this.#protocol.removeReplies(channel);
      await channel.close();
    } catch (error) {
      this.#settings.logger.warn(`proxy for server ${this.#settings.serverId} could not delete its reply queue ${queue}: ${describeError(error)}`);
    }
  }

  /** The publish channel, once the reply queue is consumed (single flight). */
  #ready(): Promise<ConfirmChannel> {
    this.#setup ??= this.#open().finally(() => {
      this.#setup = undefined;
    });
    return this.#setup;
  }

  async #open(): Promise<ConfirmChannel> {
    const model = await this.#settings.connection.model();
    if (this.#consumer === undefined) await this.#consume(model);
    const publisher = this.#publisher ?? (await this.#openPublisher(model));
    if (this.#closed) {
      await this.#shutdown();
      throw new QAMClosedException(`Proxy for server ${this.#settings.serverId} is closed`);
    }
    return publisher;
  }

  async #consume(model: ChannelModel): Promise<void> {
    const channel = await model.createChannel();
    this.#watch(channel, (error) => this.#settings.logger.warn(`proxy for server ${this.#settings.serverId}: reply channel error: ${describeError(error)}`));
    channel.on('close', () => this.#consumerClosed(channel));
    try {
      this.#declared = true;
      await this.#protocol.declareReplies(channel);
      const { consumerTag } = await channel.consume(
        this.#protocol.replyQueue,
        (message) => (message === null ? this.#consumerCancelled(channel) : this.#receive(message)),
        { noAck: true },
      );
      this.#consumer = { channel, tag: consumerTag };
    } catch (error) {
      await channel.close().catch(() => undefined);
      throw error;
    }
  }

  async #openPublisher(model: ChannelModel): Promise<ConfirmChannel> {
    const channel = await model.createConfirmChannel();
    // Its errors reach the calls they fail; logging them too would repeat every refused call.
    this.#watch(channel, (error) => this.#settings.logger.debug(`proxy for server ${this.#settings.serverId}: publish channel closed: ${describeError(error)}`));
    channel.on('close', () => {
      if (this.#publisher === channel) this.#publisher = undefined;
    });
    channel.on('return', (message: Message) => this.#returned(message));
    try {
      await this.#protocol.declareRequests(channel);
    } catch (error) {
      await channel.close().catch(() => undefined);
      throw error;
    }
    this.#publisher = channel;
    return channel;
  }

  /** Keeps the error the broker closed `channel` with: amqplib reports its pending confirms only as "channel closed". */
  #watch(channel: Channel, log: (error: Error) => void): void {
    channel.on('error', (error: Error) => {
      this.#channelErrors.set(channel, error);
      log(error);
    });
  }

  #publish(channel: ConfirmChannel, id: string, request: OutgoingRequest, deadline: number): void {
    if (!this.pending.has(id)) return;
    const properties: Options.Publish = { ...request.properties, expiration: String(Math.max(1, deadline - Date.now())), mandatory: true };
    try {
      channel.publish(request.exchange, request.routingKey, request.body, properties, (error: unknown) => {
        if (error !== null && error !== undefined) this.pending.settle(id, this.#explain(this.#channelErrors.get(channel) ?? error));
      });
    } catch (error) {
      this.pending.settle(id, this.#explain(this.#channelErrors.get(channel) ?? error));
    }
  }

  #explain(error: unknown): Error {
    if (error instanceof QAMException) return error;
    const serverId = this.#settings.serverId;
    const text = describeError(error);
    switch (amqpReplyCode(error)) {
      case 403:
        return new QAMAccessRefusedException(`The broker refused the call to server ${serverId} for lack of permission: ${text}`, error);
      case 404:
        return new QAMNoRouteException(`Nothing serves server '${serverId}': ${text}`);
      default:
        if (isClosedError(error)) return new QAMConnectionException(`The connection closed before the broker confirmed the request to server ${serverId}: ${text}`, error);
        return new QAMPublishException(`The broker did not accept the request to server ${serverId}: ${text}`, error);
    }
  }

  #returned(message: Message): void {
    const id = this.#protocol.returnedId(message);
    if (id === undefined) return;
    this.pending.settle(id, new QAMNoRouteException(`No queue serves server '${this.#settings.serverId}': the broker returned the request as unroutable`));
  }

  #receive(message: ConsumeMessage): void {
    const { id, outcome } = this.#protocol.readReply(message);
    if (id !== undefined && this.pending.settle(id, outcome)) return;
    this.pending.noteUnknownReply();
    const problem = outcome instanceof Error ? ` (${describeError(outcome)})` : '';
    this.#settings.logger.debug(`proxy for server ${this.#settings.serverId} dropped a reply for ${String(id)}${problem}: no call waits for it`);
  }

  /** The broker closed the reply channel (no error: the connection went, or close() closed it). */
  #consumerClosed(channel: Channel): void {
    if (this.#consumer?.channel !== channel) return;
    this.#consumer = undefined;
    const error = this.#channelErrors.get(channel);
    if (error !== undefined) this.#repliesLost(`its reply channel closed (${describeError(error)})`, error);
  }

  /** The broker cancels a consumer whose queue was deleted: replies to the calls in flight are gone. */
  #consumerCancelled(channel: Channel): void {
    if (this.#consumer?.channel === channel) this.#consumer = undefined;
    channel.close().catch(() => undefined);
    this.#repliesLost(`the broker cancelled the consumer of ${this.#protocol.replyQueue} (queue deleted?)`, undefined);
  }

  #repliesLost(reason: string, cause: unknown): void {
    if (this.#closed) return;
    this.pending.settleAll(new QAMConnectionException(`Proxy for server ${this.#settings.serverId}: ${reason}; replies to calls in flight cannot arrive`, cause));
  }

  #disconnected(error: Error): void {
    this.#consumer = undefined;
    this.#publisher = undefined;
    if (!this.#protocol.repliesOutliveConnection) this.#repliesLost(`the connection was lost (${error.message})`, error);
  }

  /** A durable reply queue kept the replies that came while disconnected: consume it again now. */
  #reconnected(): void {
    if (this.#closed || !this.#declared || this.pending.size === 0) return;
    this.#ready().catch((error: unknown) => {
      this.#settings.logger.warn(`proxy for server ${this.#settings.serverId} could not consume its replies again: ${describeError(error)}`);
    });
  }
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
