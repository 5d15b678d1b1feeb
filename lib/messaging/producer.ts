import { randomBytes } from 'node:crypto';
import { QAMConnection, connectionFor, connectionRules, connectionUserRules, type ConnectionOptions } from '../amqp/connection.js';
import type { AmqpChannel, Delivery } from '../amqp/port.js';
import { QAMAbortException, QAMBadMessageException, QAMClosedException, QAMTimeoutException } from '../errors.js';
import { readFingerprint, type Fingerprint } from '../fingerprint.js';
import { boolean, checkOptions, integerBetween, rule, seconds, type Rules } from '../options.js';
import {
  encodeMessage,
  postageContentType,
  postageMessage,
  readMessage,
  readResult,
  type PostageMessage,
  type RpcResultKind,
} from './postage.js';
import { declareExchange, eksRule, exchangeName, routingKey, type ExchangeDescription, type ExchangeKey } from './topology.js';

export interface QAMProducerOptions extends ConnectionOptions {
  /** A shared connection (else the producer opens its own from the connection options). */
  connection?: QAMConnection;
  /**
   * Where messages go when a send names no target (Postage's `eks`): [exchange, routing key]
   * pairs. A fire-and-forget message goes to every pair, an RPC message to the first; `key` in a
   * send uses the first pair's exchange. Described exchanges are declared before the first
   * message to them. @default none: every send names its target (`key` alone means the default exchange '')
   * @example [[{ name: 'ping-exchange', type: 'direct' }, 'ping']]
   */
  eks?: readonly ExchangeKey[];
  /** Seconds an RPC attempt waits for its result (Postage's `_timeout`). @default 30 */
  timeout?: number;
  /** Times an RPC message is sent again after an attempt timed out (Postage's `_max_retry`). @default 4 */
  maxRetry?: number;
  /** An unroutable message rejects with NO_ROUTE. @default true */
  mandatory?: boolean;
}

/** The target of one send: Postage's `_key` (with the default exchange) or `_eks` (which wins). */
export interface SendTarget {
  key?: string;
  eks?: readonly ExchangeKey[];
}

export interface RpcOptions extends SendTarget {
  /** @default the producer's `timeout` */
  timeout?: number;
  /** @default the producer's `maxRetry` */
  maxRetry?: number;
  /** Cancels the call (QAMAbortException). */
  signal?: AbortSignal;
}

/** The answer to an RPC message: one of Postage's three result kinds. */
export interface RpcResult {
  /** `'value'` (Postage's success), `'error'` (no value) or `'exception'` (the value is the exception's name). */
  readonly kind: RpcResultKind;
  readonly value: unknown;
  /** Postage's description of the result. */
  readonly message: string;
  /** The whole result message. */
  readonly body: PostageMessage;
  /** The fingerprint the result message claims (its body's). */
  readonly fingerprint: Fingerprint | undefined;
}

const targetRules: Rules<SendTarget> = { key: routingKey, eks: eksRule };

const rpcRules: Rules<RpcOptions> = {
  ...targetRules,
  timeout: seconds,
  maxRetry: integerBetween(0, 100),
  signal: rule('an AbortSignal', (value) => value instanceof AbortSignal),
};

const producerRules: Rules<QAMProducerOptions> = {
  ...connectionRules,
  connection: connectionUserRules.connection,
  eks: eksRule,
  timeout: seconds,
  maxRetry: integerBetween(0, 100),
  mandatory: boolean,
};

const contentRule = rule('an object', (value) => typeof value === 'object' && value !== null && !Array.isArray(value));

function checkContent(owner: string, content: unknown): asserts content is Record<string, unknown> {
  contentRule(content, { owner, path: 'content' });
}

function checkName(owner: string, what: string, value: unknown): asserts value is string {
  if (typeof value !== 'string' || value === '') throw new TypeError(`The ${what} given to ${owner} must be a non-empty string`);
}

/**
 * Sends Postage's typed messages (JSON dictionaries with type, name, category, version, the
 * sender's fingerprint and content) to any exchange and routing key: fire-and-forget messages
 * resolve once the broker confirmed them; RPC messages resolve with the result message, retried
 * after a timeout as Postage does.
 *
 * @example
 * const producer = new QAMProducer({ eks: [[{ name: 'jobs', type: 'direct' }, 'worker']] });
 * await producer.command('quit');
 * const result = await producer.rpc('square', { n: 7 }); // { kind: 'value', value: 49, … }
 */
export class QAMProducer {
  readonly connection: QAMConnection;
  readonly #owned: boolean;
  readonly #eks: readonly ExchangeKey[] | undefined;
  readonly #timeout: number;
  readonly #maxRetry: number;
  readonly #mandatory: boolean;
  /** Exchanges declared on the current connection. */
  readonly #declared = new Set<string>();
  readonly #detach: () => void;
  #closed = false;

  constructor(options: QAMProducerOptions = {}) {
    checkOptions('QAMProducer', options, producerRules);
    const { eks, timeout, maxRetry, mandatory, ...where } = options;
    this.connection = connectionFor('QAMProducer', where);
    this.#owned = options.connection === undefined;
    this.#eks = eks;
    this.#timeout = timeout ?? 30;
    this.#maxRetry = maxRetry ?? 4;
    this.#mandatory = mandatory ?? true;
    this.#detach = this.connection.attach({ onConnect: () => undefined, onDisconnect: () => this.#declared.clear() });
  }

  /** What this producer's messages say of their sender. */
  get fingerprint(): Fingerprint {
    return this.connection.fingerprint;
  }

  /** Sends a fire-and-forget message of any type (Postage's `message()` / `forward()`). */
  async send(type: string, name: string, content: Record<string, unknown> = {}, target?: SendTarget): Promise<void> {
    checkName('QAMProducer.send', 'type', type);
    checkName('QAMProducer.send', 'name', name);
    checkContent('QAMProducer.send', content);
    await this.#publish(postageMessage(type, name, 'message', this.fingerprint, content), target);
  }

  /** Sends a fire-and-forget command (Postage's `message_NAME(parameters)`, a MessageCommand). */
  async command(name: string, parameters: Record<string, unknown> = {}, target?: SendTarget): Promise<void> {
    checkName('QAMProducer.command', 'command name', name);
    checkContent('QAMProducer.command', parameters);
    await this.#publish(postageMessage('command', name, 'message', this.fingerprint, { parameters }), target);
  }

  /** Broadcasts this component's status (Postage's MessageStatus): a message of type `status` named by the status. */
  async status(status: string, target?: SendTarget): Promise<void> {
    checkName('QAMProducer.status', 'status', status);
    await this.#publish(postageMessage('status', status, 'message', this.fingerprint, {}), target);
  }

  /**
   * Sends an RPC command (Postage's `rpc_NAME(parameters)`) to the target's first exchange and key
   * and resolves with the result message. An attempt waits `timeout` seconds; then the message is
   * sent again, up to `maxRetry` times, after which the call rejects with QAMTimeoutException.
   * The request carries an AMQP expiration of the attempt's timeout, so nobody runs it after its
   * attempt gave up. A reply that is not a result message rejects with QAMBadMessageException.
   */
  async rpc(name: string, parameters: Record<string, unknown> = {}, options: RpcOptions = {}): Promise<RpcResult> {
    checkName('QAMProducer.rpc', 'command name', name);
    checkContent('QAMProducer.rpc', parameters);
    checkOptions('QAMProducer.rpc', options, rpcRules);
    const { signal } = options;
    const [exchange, key] = this.#targets(options)[0] as ExchangeKey;
    const where = `${exchangeName(exchange) || '(default)'}/${key}`;
    if (signal?.aborted === true) throw new QAMAbortException(`RPC ${name} to ${where} was cancelled`);
    this.#checkOpen();
    const timeoutMs = Math.ceil((options.timeout ?? this.#timeout) * 1000);
    const tries = (options.maxRetry ?? this.#maxRetry) + 1;
    const body = encodeMessage(postageMessage('command', name, 'rpc', this.fingerprint, { parameters }));
    await this.#declare([[exchange, key]]);
    // Postage's reply address: a queue of the call's own, so a reply needs no correlation id.
    const replyQueue = `qam_rpc_${randomBytes(9).toString('base64url')}`;
    let arrived!: (delivery: Delivery) => void;
    const reply = new Promise<Delivery>((resolve) => (arrived = resolve));
    // The reply queue is exclusive, so it goes with a lost connection: an attempt after a
    // reconnect declares and consumes it again before sending.
    let listening: AmqpChannel | undefined;
    const listen = async (): Promise<void> => {
      const channel = await this.connection.openChannel({ confirms: false });
      channel.onClose(() => {
        if (listening === channel) listening = undefined;
      });
      listening = channel;
      await channel.declareQueue(replyQueue, { durable: false, exclusive: true, autoDelete: false });
      await channel.consume(replyQueue, (delivery) => arrived(delivery), { noAck: true });
    };
    this.connection.retain();
    try {
      const properties = { contentType: postageContentType, replyTo: replyQueue, correlationId: replyQueue, expiration: String(timeoutMs) };
      for (let attempt = 1; attempt <= tries; attempt++) {
        if (listening === undefined) await listen();
        await this.connection.messaging.send(exchangeName(exchange), key, body, properties, this.#mandatory);
        const delivery = await waitFor(reply, timeoutMs, signal);
        if (delivery === 'aborted') throw new QAMAbortException(`RPC ${name} to ${where} was cancelled`);
        if (delivery !== 'timeout') return readReply(delivery, name, where);
      }
      throw new QAMTimeoutException(`No result for RPC ${name} from ${where}: ${tries} attempt(s) of ${timeoutMs} ms each timed out`);
    } finally {
      this.connection.release();
      // After a channel error the queue outlives its channel until the connection closes.
      const channel = listening ?? (await this.connection.openChannel({ confirms: false }).catch(() => undefined));
      listening = undefined;
      if (channel !== undefined) await deleteQuietly(channel, replyQueue);
    }
  }

  /** Stops sending; closes the connection if the producer opened it. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#detach();
    if (this.#owned) await this.connection.close();
  }

  async #publish(message: PostageMessage, target: SendTarget | undefined): Promise<void> {
    if (target !== undefined) checkOptions('QAMProducer target', target, targetRules);
    const eks = this.#targets(target ?? {});
    this.#checkOpen();
    const body = encodeMessage(message);
    await this.#declare(eks);
    await Promise.all(
      eks.map(([exchange, key]) =>
        this.connection.messaging.send(exchangeName(exchange), key, body, { contentType: postageContentType }, this.#mandatory),
      ),
    );
  }

  /** Postage's `_get_eks`: `eks` wins, then `key` with the default exchange, then the producer's `eks`. */
  #targets(target: SendTarget): readonly ExchangeKey[] {
    if (target.eks !== undefined) return target.eks;
    if (target.key !== undefined) return [[this.#eks?.[0]?.[0] ?? '', target.key]];
    if (this.#eks !== undefined) return this.#eks;
    throw new TypeError('QAMProducer: this producer has no eks, so each send must name its target: { key } or { eks }');
  }

  async #declare(eks: readonly ExchangeKey[]): Promise<void> {
    const missing = eks
      .map(([exchange]) => exchange)
      .filter((exchange): exchange is ExchangeDescription => typeof exchange !== 'string' && !this.#declared.has(exchange.name));
    if (missing.length === 0) return;
    const channel = await this.connection.openChannel({ confirms: false });
    try {
      for (const exchange of missing) {
        await declareExchange(channel, exchange);
        this.#declared.add(exchange.name);
      }
    } finally {
      await channel.close();
    }
  }

  #checkOpen(): void {
    if (this.#closed) throw new QAMClosedException('This QAMProducer is closed');
  }
}

function waitFor(reply: Promise<Delivery>, timeoutMs: number, signal: AbortSignal | undefined): Promise<Delivery | 'timeout' | 'aborted'> {
  return new Promise((resolve) => {
    const onAbort = (): void => end('aborted');
    const timer = setTimeout(() => end('timeout'), timeoutMs);
    const end = (outcome: Delivery | 'timeout' | 'aborted'): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      resolve(outcome);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    void reply.then(end);
  });
}

function readReply(delivery: Delivery, name: string, where: string): RpcResult {
  const read = readMessage(delivery.content);
  const result = 'message' in read ? readResult(read.message) : undefined;
  if (!('message' in read) || result === undefined) {
    const why = 'message' in read ? 'it is not a result message' : read.detail;
    throw new QAMBadMessageException(`The reply to RPC ${name} from ${where} is not a Postage result: ${why}`);
  }
  return { ...result, body: read.message, fingerprint: readFingerprint(read.message.fingerprint) };
}

async function deleteQuietly(channel: AmqpChannel, queue: string): Promise<void> {
  await channel.deleteQueue(queue).catch(() => undefined);
  await channel.close();
}
