import { QAMConnection, connectionFor, connectionRules, connectionUserRules, type ConnectionOptions } from '../amqp/connection.js';
import type { AmqpChannel, Delivery, IncomingProperties } from '../amqp/port.js';
import { describeError } from '../errors.js';
import { readFingerprint, type Fingerprint } from '../fingerprint.js';
import type { Logger } from '../logger.js';
import { arrayOf, checkOptions, integerBetween, positiveInteger, type Rule, type Rules } from '../options.js';
import { sizeError } from '../size-limit.js';
import { QueueConsumer } from './consumer.js';
import {
  encodeMessage,
  postageContentType,
  readMessage,
  resultMessage,
  type MessageProblem,
  type PostageMessage,
  type RpcResultKind,
} from './postage.js';
import {
  declareExchange,
  declareQueue,
  exchangeName,
  exchangeRule,
  queueName,
  queueRule,
  routingKey,
  type ExchangeDescription,
  type QueueDescription,
} from './topology.js';

/**
 * A queue the processor consumes, with the exchange it binds it to (Postage's `eqk` entries and
 * `queue_bind()`). Without an exchange the queue is consumed unbound: messages reach it through
 * the default exchange, with its name as routing key.
 */
export interface BindingDescription {
  queue: QueueDescription | string;
  exchange?: ExchangeDescription | string;
  /** @default '' */
  key?: string;
}

export interface QAMProcessorOptions extends ConnectionOptions {
  /** A shared connection (else the processor opens its own from the connection options). */
  connection?: QAMConnection;
  /** The queues to consume and their bindings, declared by {@link QAMProcessor.start}. */
  bindings?: readonly BindingDescription[];
  /**
   * Messages handled at a time; with 1 (Postage's) they are handled one after the other, in
   * the order they arrive. @default 1
   */
  prefetch?: number;
  /**
   * The largest message body read, in bytes: a larger one is not parsed, but logged, counted
   * (`tooLarge`), acknowledged and dropped (an RPC message is answered with an error result).
   * @default 16 MiB
   */
  maxMessageBytes?: number;
}

/** What a handler is told about the message besides its content. */
export interface MessageContext {
  /** The whole message. */
  readonly message: PostageMessage;
  /** The fingerprint the message claims in its body (read defensively), never verified identity. */
  readonly fingerprint: Fingerprint | undefined;
  readonly exchange: string;
  readonly routingKey: string;
  readonly redelivered: boolean;
  readonly properties: IncomingProperties;
}

/** Handles the `content` of a message (Postage's `@MessageHandler`). */
export type ContentHandler = (content: Readonly<Record<string, unknown>>, context: MessageContext) => unknown;

/** Handles a whole message, fingerprint included (Postage's `@MessageHandlerFullBody`). */
export type FullBodyHandler = (message: PostageMessage, context: MessageContext) => unknown;

/**
 * Answers an RPC message (Postage's reply function). Call it with a value, or `reply.error()` /
 * `reply.exception()`; the first answer counts. Resolves once the broker took the result.
 */
export interface RpcReply {
  (value: unknown, message?: string): Promise<void>;
  error(message: string): Promise<void>;
  exception(name: string, message: string): Promise<void>;
}

/**
 * Handles an RPC message (Postage's `@RpcHandler`). It may answer through `reply` (and then clean
 * up), or return the value; a throw answers an exception result (the error's name and message).
 */
export type RpcHandler = (content: Readonly<Record<string, unknown>>, reply: RpcReply, context: MessageContext) => unknown;

/** A snapshot of what a processor did. */
export interface QAMProcessorStats {
  /** Messages delivered to the processor. */
  received: number;
  /** Messages given to at least one handler. */
  handled: number;
  /** Result messages sent. */
  replies: number;
  /** Bodies that are not JSON. */
  notJson: number;
  /** JSON bodies that are not Postage messages. */
  wrongShape: number;
  /** Bodies above `maxMessageBytes`, not parsed. */
  tooLarge: number;
  /** Messages no handler is registered for (type, name, category). */
  unhandled: number;
  /** Handlers that threw or rejected. */
  handlerErrors: number;
}

const bindingRules: Rules<BindingDescription> = { queue: queueRule, exchange: exchangeRule, key: routingKey };

const bindingRule: Rule = (value, at) => {
  checkOptions(at.owner, value, bindingRules, at.path);
  if ((value as Partial<BindingDescription>).queue === undefined)
    throw new TypeError(`Option '${at.path}.queue' of ${at.owner} is required`);
};

const processorRules: Rules<QAMProcessorOptions> = {
  ...connectionRules,
  connection: connectionUserRules.connection,
  bindings: arrayOf(bindingRule, 'an array of bindings'),
  prefetch: integerBetween(1, 65535),
  maxMessageBytes: positiveInteger,
};

type Category = 'message' | 'rpc';

/** Log lines show at most this much of a message. */
const shown = (text: string): string => (text.length > 200 ? `${text.slice(0, 200)}…` : text);

/**
 * Consumes queues bound to exchanges and dispatches each Postage message to the handlers
 * registered for its type and name: content handlers and full-body handlers for messages, one
 * RPC handler per type and name for RPC messages, whose result goes to the message's `reply_to`.
 * A message nothing handles, or that is not a Postage message, is logged, counted and
 * acknowledged; a handler that throws is logged and counted and never keeps the others from
 * running. Messages are acknowledged once their handlers finished.
 *
 * @example
 * const processor = new QAMProcessor({ bindings: [{ exchange: { name: 'jobs', type: 'direct' }, queue: 'worker', key: 'worker' }] })
 *   .on('command', 'quit', () => processor.close())
 *   .onRpc('command', 'square', ({ parameters }) => (parameters as { n: number }).n ** 2);
 * await processor.start();
 */
export class QAMProcessor {
  readonly connection: QAMConnection;
  readonly #logger: Logger;
  readonly #owned: boolean;
  readonly #maxMessageBytes: number;
  readonly #bindings: BindingDescription[];
  readonly #content = new Map<string, ContentHandler[]>();
  readonly #fullBody = new Map<string, FullBodyHandler[]>();
  readonly #rpc = new Map<string, RpcHandler>();
  readonly #consumer: QueueConsumer;
  readonly #inFlight = new Set<Promise<void>>();
  readonly #stats: QAMProcessorStats = {
    received: 0,
    handled: 0,
    replies: 0,
    notJson: 0,
    wrongShape: 0,
    tooLarge: 0,
    unhandled: 0,
    handlerErrors: 0,
  };
  #closed = false;
  #started = false;

  constructor(options: QAMProcessorOptions = {}) {
    checkOptions('QAMProcessor', options, processorRules);
    const { bindings, prefetch, maxMessageBytes, ...where } = options;
    this.#maxMessageBytes = maxMessageBytes ?? 16 * 1024 * 1024;
    this.connection = connectionFor('QAMProcessor', where);
    this.#logger = options.logger ?? this.connection.logger;
    this.#owned = options.connection === undefined;
    this.#bindings = [...(bindings ?? [])];
    this.#consumer = new QueueConsumer({
      owner: `processor ${this.connection.fingerprint.name ?? ''}`.trim(),
      connection: this.connection,
      logger: this.#logger,
      prefetch: prefetch ?? 1,
      declare: (channel) => this.#declare(channel),
      queues: () => [...new Set(this.#bindings.map((binding) => queueName(binding.queue)))],
      receive: (channel, delivery) => this.#receive(channel, delivery),
    });
  }

  /** Runs `handler` with the content of every message (category `message`) of `type` and `name`. */
  on(type: string, name: string, handler: ContentHandler): this {
    return this.#add(this.#content, type, name, handler, 'on');
  }

  /** Runs `handler` with every whole message (category `message`) of `type` and `name`. */
  onFullBody(type: string, name: string, handler: FullBodyHandler): this {
    return this.#add(this.#fullBody, type, name, handler, 'onFullBody');
  }

  /** Answers RPC messages of `type` and `name` with `handler`; one per type and name. */
  onRpc(type: string, name: string, handler: RpcHandler): this {
    checkHandler('onRpc', type, name, handler);
    const key = handlerKey(type, name);
    if (this.#rpc.has(key)) throw new TypeError(`QAMProcessor.onRpc: an RPC handler for ${type} '${name}' is registered already`);
    this.#rpc.set(key, handler);
    return this;
  }

  /** Declares, binds and consumes the queues. Rejects when the broker refuses a declaration (flags that differ, rights). */
  async start(): Promise<void> {
    if (this.#closed) throw new TypeError('QAMProcessor.start: the processor is closed');
    if (this.#bindings.length === 0) throw new TypeError('QAMProcessor.start: give bindings (or call bind()) first');
    this.#started = true;
    try {
      await this.#consumer.start();
    } catch (error) {
      this.#started = false;
      throw error;
    }
  }

  /** Adds a binding (Postage's `queue_bind()`); while started, declares and consumes it at once. */
  async bind(binding: BindingDescription): Promise<void> {
    bindingRule(binding, { owner: 'QAMProcessor.bind', path: 'binding' });
    this.#bindings.push(binding);
    if (this.#started) await this.#consumer.start();
  }

  /** Counters since the processor was made. */
  stats(): QAMProcessorStats {
    return { ...this.#stats };
  }

  /**
   * Stops consuming, lets the handlers running finish, and closes the connection if the processor
   * opened it. With `deleteQueues`, deletes its queues first.
   */
  async close(options: { deleteQueues?: boolean } = {}): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#consumer.stop(() => this.#drain());
    if (options.deleteQueues === true && this.connection.connected) {
      const channel = await this.connection.openChannel({ confirms: false });
      for (const queue of new Set(this.#bindings.map((binding) => queueName(binding.queue)))) {
        await channel.deleteQueue(queue).catch(() => undefined);
      }
      await channel.close();
    }
    if (this.#owned) await this.connection.close();
  }

  async #declare(channel: AmqpChannel): Promise<void> {
    for (const binding of this.#bindings) {
      await declareQueue(channel, binding.queue);
      if (binding.exchange === undefined || exchangeName(binding.exchange) === '') continue;
      await declareExchange(channel, binding.exchange);
      await channel.bindQueue(queueName(binding.queue), exchangeName(binding.exchange), binding.key ?? '');
    }
  }

  async #drain(): Promise<void> {
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
  }

  #add<H>(table: Map<string, H[]>, type: string, name: string, handler: H, method: string): this {
    checkHandler(method, type, name, handler);
    const key = handlerKey(type, name);
    table.set(key, [...(table.get(key) ?? []), handler]);
    return this;
  }

  #receive(channel: AmqpChannel, delivery: Delivery): void {
    const work = this.#process(delivery)
      .catch((error: unknown) => this.#logger.error(`QAMProcessor: a message could not be processed: ${describeError(error)}`))
      .finally(() => {
        this.#inFlight.delete(work);
        channel.ack(delivery);
      });
    this.#inFlight.add(work);
  }

  async #process(delivery: Delivery): Promise<void> {
    this.#stats.received++;
    const tooLarge = sizeError('The message', delivery.content.length, this.#maxMessageBytes, 'processor');
    if (tooLarge !== undefined) {
      this.#bad(delivery, 'too-large', tooLarge.message);
      return;
    }
    const read = readMessage(delivery.content);
    if (!('message' in read)) {
      this.#bad(delivery, read.problem, read.detail);
      return;
    }
    const { message } = read;
    const context: MessageContext = {
      message,
      fingerprint: readFingerprint(message.fingerprint),
      exchange: delivery.exchange,
      routingKey: delivery.routingKey,
      redelivered: delivery.redelivered,
      properties: delivery.properties,
    };
    if (message.category === 'rpc') await this.#answer(delivery, message, context);
    else await this.#dispatch(message, context);
  }

  async #dispatch(message: PostageMessage, context: MessageContext): Promise<void> {
    const key = handlerKey(message.type, message.name);
    const content = this.#content.get(key) ?? [];
    const fullBody = this.#fullBody.get(key) ?? [];
    if (content.length + fullBody.length === 0) {
      this.#unhandled(message, 'message');
      return;
    }
    this.#stats.handled++;
    for (const handler of content) await this.#run(message, () => handler(message.content, context));
    for (const handler of fullBody) await this.#run(message, () => handler(message, context));
  }

  async #answer(delivery: Delivery, message: PostageMessage, context: MessageContext): Promise<void> {
    const handler = this.#rpc.get(handlerKey(message.type, message.name));
    const reply = this.#replier(delivery, message);
    if (handler === undefined) {
      this.#unhandled(message, 'rpc');
      await reply.error(`No RPC handler for ${message.type} '${message.name}'`);
      return;
    }
    this.#stats.handled++;
    try {
      const value: unknown = await handler(message.content, reply, context);
      await reply(value);
    } catch (error) {
      this.#handlerFailed(message, error);
      const { name, text } = errorParts(error);
      await reply.exception(name, text);
    }
  }

  /** The reply function of one RPC message: the first answer is published, later ones are ignored. */
  #replier(delivery: Delivery, request: PostageMessage): RpcReply {
    let answered = false;
    const { replyTo, correlationId } = delivery.properties;
    const send = async (kind: RpcResultKind, value: unknown, text: string): Promise<void> => {
      if (answered) return;
      answered = true;
      if (typeof replyTo !== 'string' || replyTo === '') {
        this.#logger.warn(`QAMProcessor: RPC ${request.type} '${shown(request.name)}' has no reply_to; its result is dropped`);
        return;
      }
      const body = this.#result(kind, value, text);
      const properties =
        typeof correlationId === 'string' ? { contentType: postageContentType, correlationId } : { contentType: postageContentType };
      try {
        // Postage replies through the default exchange to the caller's queue.
        await this.connection.messaging.send('', replyTo, body, properties, false);
        this.#stats.replies++;
      } catch (error) {
        this.#logger.error(
          `QAMProcessor: the result of RPC ${request.type} '${shown(request.name)}' was not sent: ${describeError(error)}`,
        );
      }
    };
    const reply = (value: unknown, message = ''): Promise<void> => send('value', value, String(message));
    reply.error = (message: string): Promise<void> => send('error', null, String(message));
    reply.exception = (name: string, message: string): Promise<void> => send('exception', String(name), String(message));
    return reply;
  }

  /** A result message; a value JSON cannot carry answers an exception result instead. */
  #result(kind: RpcResultKind, value: unknown, text: string): Buffer {
    try {
      return encodeMessage(resultMessage(kind, value, text, this.connection.fingerprint));
    } catch (error) {
      this.#logger.error(`QAMProcessor: an RPC result is not JSON: ${describeError(error)}`);
      return encodeMessage(resultMessage('exception', 'TypeError', 'The result is not JSON', this.connection.fingerprint));
    }
  }

  async #run(message: PostageMessage, handler: () => unknown): Promise<void> {
    try {
      await handler();
    } catch (error) {
      this.#handlerFailed(message, error);
    }
  }

  #handlerFailed(message: PostageMessage, error: unknown): void {
    this.#stats.handlerErrors++;
    this.#logger.error(`QAMProcessor: a handler of ${message.type} '${shown(message.name)}' failed: ${describeError(error)}`);
  }

  #unhandled(message: PostageMessage, category: Category): void {
    this.#stats.unhandled++;
    this.#logger.warn(`QAMProcessor: no handler for ${category} ${shown(message.type)} '${shown(message.name)}'; acknowledged and dropped`);
  }

  #bad(delivery: Delivery, problem: MessageProblem, detail: string): void {
    if (problem === 'not-json') this.#stats.notJson++;
    else if (problem === 'too-large') this.#stats.tooLarge++;
    else this.#stats.wrongShape++;
    this.#logger.warn(
      `QAMProcessor: a message from ${delivery.exchange || '(default)'}/${delivery.routingKey} is not a Postage message (${detail}); acknowledged and dropped`,
    );
    const { replyTo } = delivery.properties;
    if (typeof replyTo === 'string' && replyTo !== '') {
      const body = encodeMessage(resultMessage('error', null, `Not a Postage message: ${detail}`, this.connection.fingerprint));
      const { correlationId } = delivery.properties;
      const properties =
        typeof correlationId === 'string' ? { contentType: postageContentType, correlationId } : { contentType: postageContentType };
      this.connection.messaging.send('', replyTo, body, properties, false).catch(() => undefined);
    }
  }
}

function handlerKey(type: string, name: string): string {
  return JSON.stringify([type, name]);
}

function checkHandler(method: string, type: unknown, name: unknown, handler: unknown): void {
  if (typeof type !== 'string' || type === '') throw new TypeError(`QAMProcessor.${method}: the message type must be a non-empty string`);
  if (typeof name !== 'string') throw new TypeError(`QAMProcessor.${method}: the message name must be a string`);
  if (typeof handler !== 'function') throw new TypeError(`QAMProcessor.${method}: the handler must be a function`);
}

function errorParts(error: unknown): { name: string; text: string } {
  if (error instanceof Error) return { name: error.name, text: error.message };
  return { name: 'Error', text: describeError(error) };
}
