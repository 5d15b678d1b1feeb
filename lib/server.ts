import { AsyncLocalStorage } from 'node:async_hooks';
import type { Channel, ConsumeMessage } from 'amqplib';
import { QAMConnection, type ConnectionOptions } from './connection.js';
import { DispatchTable, type RemoteFunction, type Target } from './dispatch.js';
import { checkMethodPath } from './envelope.js';
import { QAMClosedException, describeError } from './errors.js';
import type { Logger } from './logger.js';
import { checkId, serverNames } from './naming.js';
import { WorkerPool } from './pool.js';
import { nativeProtocol, type CallOutcome, type ServerProtocol } from './protocol.js';
import { serializerNamed, type SerializerName } from './serializers.js';

/** Options of a {@link QAMServer}. Connection options apply when no `connection` is given. */
export interface QAMServerOptions extends ConnectionOptions {
  /** The id proxies call; names the queue `server_<id>_queue` and exchange `server_<id>_ex`. */
  serverId: string;
  /** Share an existing connection instead of opening one; the server then leaves it open on close. */
  connection?: QAMConnection;
  /** Calls run at once at most; the broker prefetch is the same number. @default 16 */
  workers?: number;
  /** Requests and replies larger than this many bytes are refused with PAYLOAD_TOO_LARGE. @default 16 MiB */
  maxMessageBytes?: number;
  /** Send the remote stack trace with error replies. @default false */
  exposeStack?: boolean;
  /**
   * When a request is acknowledged. `'afterReply'`: once its reply is published, so a request whose
   * server dies mid-call is redelivered to another; `'onReceipt'`: at once, as QAM did.
   * @default 'afterReply'
   */
  ack?: 'afterReply' | 'onReceipt';
  /** Serializer for replies to requests whose content type names none qam knows. @default 'json' */
  serializer?: SerializerName;
  /** Seconds {@link QAMServer.close} waits for running calls before closing anyway. @default 30 */
  drainTimeout?: number;
}

/** What a running function can learn about the request it serves (see {@link currentCall}). */
export interface CallContext {
  /** The method path, e.g. `'my_instance.adder_function'`. */
  readonly method: string;
  /** True when the broker delivered this request before (its previous server died mid-call). */
  readonly redelivered: boolean;
  /** The caller's deadline in epoch milliseconds, when it sent one. */
  readonly deadline: number | undefined;
}

const callContext = new AsyncLocalStorage<CallContext>();

/** Inside a function run by a QAMServer: the request being served; elsewhere undefined. */
export function currentCall(): CallContext | undefined {
  return callContext.getStore();
}

/** Counters of a server since it was created. */
export interface QAMServerStats {
  /** Requests answered with a result. */
  served: number;
  /** Requests answered with an error (thrown, not found, malformed, too large). */
  failed: number;
  /** Requests skipped because their caller's deadline had passed. */
  expired: number;
  /** Calls running now. */
  active: number;
}

/**
 * Serves registered functions and instances to QAMProxy callers.
 *
 * @example
 * const server = new QAMServer({ serverId: 'calc' })
 *   .registerFunction((a: number, b: number) => a + b, 'add')
 *   .registerClass(new Calculator(), 'my_instance');
 * await server.serve();
 */
export class QAMServer<Registered extends object = {}> {
  readonly serverId: string;
  /** The connection this server uses (listen here for connect / disconnect events). */
  readonly connection: QAMConnection;
  readonly #ownsConnection: boolean;
  readonly #logger: Logger;
  readonly #table = new DispatchTable();
  readonly #pool: WorkerPool;
  readonly #protocols: ServerProtocol[];
  readonly #ackOnReceipt: boolean;
  readonly #drainTimeoutMs: number;
  readonly #stats = { served: 0, failed: 0, expired: 0 };
  #state: 'idle' | 'serving' | 'closing' | 'closed' = 'idle';
  #detach: (() => void) | undefined;
  readonly #consumers = new Map<ServerProtocol, { channel: Channel; tag: string }>();
  #replyChannel: Promise<Channel> | undefined;
  #starting: Promise<void> | undefined;
  #restartTimer: NodeJS.Timeout | undefined;

  constructor(options: QAMServerOptions) {
    this.serverId = checkId('serverId', options.serverId);
    this.#ownsConnection = options.connection === undefined;
    this.connection = options.connection ?? new QAMConnection(options);
    this.#logger = options.logger ?? this.connection.logger;
    this.#pool = new WorkerPool(options.workers ?? 16);
    const settings = {
      serverId: this.serverId,
      maxBytes: options.maxMessageBytes ?? 16 * 1024 * 1024,
      exposeStack: options.exposeStack ?? false,
      fallbackSerializer: serializerNamed(options.serializer ?? 'json'),
    };
    this.#protocols = [nativeProtocol(settings)];
    this.#ackOnReceipt = options.ack === 'onReceipt';
    this.#drainTimeoutMs = (options.drainTimeout ?? 30) * 1000;
  }

  /**
   * Registers a function under `name` (default: the function's own name). Returns the server with
   * the function added to its type, so `ServerApi<typeof server>` can type a proxy.
   */
  registerFunction<F extends RemoteFunction, N extends string>(fn: F, name: N): QAMServer<Registered & Record<N, F>>;
  registerFunction(fn: RemoteFunction): this;
  registerFunction(fn: RemoteFunction, name?: string): this {
    this.#table.registerFunction(fn, name ?? fn.name);
    return this;
  }

  /**
   * Registers an instance under `name`: its class's methods become callable as `name.method`.
   * Only methods of the class chain are exposed; never `constructor`, `Object.prototype` members,
   * accessors, data properties (including arrow-function class fields) or names starting with `_`.
   */
  registerClass<T extends object, N extends string>(instance: T, name: N): QAMServer<Registered & Record<N, T>> {
    this.#table.registerInstance(instance, name);
    return this as unknown as QAMServer<Registered & Record<N, T>>;
  }

  /** Counters since creation. */
  stats(): QAMServerStats {
    return { ...this.#stats, active: this.#pool.active };
  }

  /** Declares the server's exchange and queue and starts consuming; resolves once it consumes. */
  async serve(): Promise<void> {
    if (this.#state === 'serving') return this.#starting;
    if (this.#state !== 'idle') throw new QAMClosedException(`Server ${this.serverId} is closed`);
    this.#state = 'serving';
    this.#detach = this.connection.attach({
      onConnect: () => this.#restart(),
      onDisconnect: () => this.#forgetChannels(),
    });
    try {
      await this.#start();
    } catch (error) {
      await this.close();
      throw error;
    }
  }

  /**
   * Stops consuming, lets running calls finish and reply (up to `drainTimeout`), then closes its
   * channels, and its connection when it opened it. Requests not yet delivered stay in the queue,
   * unless `deleteQueue` is set: then the server's queue and exchange are deleted (for ephemeral
   * servers, demos and tests; requests still queued are lost).
   */
  async close(options: { deleteQueue?: boolean } = {}): Promise<void> {
    if (this.#state === 'closing' || this.#state === 'closed') return;
    this.#state = 'closing';
    clearTimeout(this.#restartTimer);
    await this.#starting?.catch(() => undefined);
    const consumers = [...this.#consumers.values()];
    for (const { channel, tag } of consumers) await channel.cancel(tag).catch(() => undefined);
    let timer: NodeJS.Timeout | undefined;
    const drained = await Promise.race([
      this.#pool.idle().then(() => true),
      new Promise<boolean>((resolve) => (timer = setTimeout(resolve, this.#drainTimeoutMs, false))),
    ]);
    clearTimeout(timer);
    if (!drained) this.#logger.warn(`server ${this.serverId} closed with ${this.#pool.active} calls still running`);
    this.#detach?.();
    if (options.deleteQueue === true) await this.#deleteTopology();
    const channels = [...consumers.map(({ channel }) => channel), await this.#replyChannel?.catch(() => undefined)];
    this.#forgetChannels();
    for (const channel of channels) await channel?.close().catch(() => undefined);
    if (this.#ownsConnection) await this.connection.close();
    this.#state = 'closed';
  }

  async #deleteTopology(): Promise<void> {
    try {
      const channel = await (await this.connection.model()).createChannel();
      const { queue, exchange } = serverNames(this.serverId);
      await channel.deleteQueue(queue);
      await channel.deleteExchange(exchange);
      await channel.close();
    } catch (error) {
      this.#logger.warn(`server ${this.serverId} could not delete its queue and exchange: ${describeError(error)}`);
    }
  }

  #start(): Promise<void> {
    this.#starting ??= this.#open().finally(() => {
      this.#starting = undefined;
    });
    return this.#starting;
  }

  async #open(): Promise<void> {
    const model = await this.connection.model();
    for (const protocol of this.#protocols) {
      if (this.#consumers.has(protocol)) continue;
      const channel = await model.createChannel();
      channel.on('error', (error: Error) => this.#logger.error(`server ${this.serverId} channel error: ${describeError(error)}`));
      channel.on('close', () => this.#channelClosed(protocol, channel));
      await channel.prefetch(this.#pool.size);
      await protocol.declare(channel);
      const { consumerTag } = await channel.consume(protocol.queue, (message) => {
        if (message === null) this.#consumerCancelled(protocol, channel);
        else this.#receive(protocol, channel, message);
      });
      this.#consumers.set(protocol, { channel, tag: consumerTag });
      this.#logger.info(`server ${this.serverId} consumes ${protocol.queue}`);
    }
  }

  #restart(): void {
    if (this.#state !== 'serving') return;
    this.#start().catch((error: unknown) => {
      this.#logger.error(`server ${this.serverId} could not restart consuming: ${describeError(error)}`);
      this.#scheduleRestart();
    });
  }

  #scheduleRestart(): void {
    if (this.#state !== 'serving' || this.#restartTimer !== undefined) return;
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = undefined;
      if (this.connection.connected) this.#restart();
    }, 1000);
  }

  #forgetChannels(): void {
    this.#consumers.clear();
    this.#replyChannel = undefined;
  }

  #channelClosed(protocol: ServerProtocol, channel: Channel): void {
    if (this.#consumers.get(protocol)?.channel !== channel) return;
    this.#consumers.delete(protocol);
    if (this.#state === 'serving' && this.connection.connected) {
      this.#logger.error(`server ${this.serverId}: its channel closed; consuming again in 1 s`);
      this.#scheduleRestart();
    }
  }

  #consumerCancelled(protocol: ServerProtocol, channel: Channel): void {
    this.#logger.error(`server ${this.serverId}: the broker cancelled the consumer of ${protocol.queue} (queue deleted?); redeclaring in 1 s`);
    if (this.#consumers.get(protocol)?.channel === channel) this.#consumers.delete(protocol);
    channel.close().catch(() => undefined);
    this.#scheduleRestart();
  }

  #replies(): Promise<Channel> {
    this.#replyChannel ??= this.connection.model().then(async (model) => {
      const channel = await model.createChannel();
      channel.on('error', (error: Error) => this.#logger.error(`server ${this.serverId} reply channel error: ${describeError(error)}`));
      channel.on('close', () => {
        if (this.#replyChannel === opened) this.#replyChannel = undefined;
      });
      return channel;
    });
    const opened = this.#replyChannel;
    opened.catch(() => {
      if (this.#replyChannel === opened) this.#replyChannel = undefined;
    });
    return opened;
  }

  #receive(protocol: ServerProtocol, channel: Channel, message: ConsumeMessage): void {
    if (this.#ackOnReceipt) ack(channel, message);
    const settle = this.#ackOnReceipt ? noop : () => ack(channel, message);
    const read = protocol.read(message);
    if ('error' in read) {
      this.#refuse(protocol, message, read.error, settle);
      return;
    }
    const { method, params, deadline } = read.call;
    const target = checkMethodPath(method) ? this.#table.resolve(method) : undefined;
    if (target === undefined) {
      this.#refuse(protocol, message, protocol.notFound(method), settle);
      return;
    }
    const context: CallContext = { method, redelivered: message.fields.redelivered, deadline };
    this.#pool.run(() => this.#run(protocol, message, target, params, context, settle));
  }

  async #run(protocol: ServerProtocol, message: ConsumeMessage, target: Target, params: unknown[], context: CallContext, settle: () => void): Promise<void> {
    if (context.deadline !== undefined && context.deadline <= Date.now()) {
      this.#stats.expired++;
      this.#logger.debug(`server ${this.serverId} skips ${context.method}: its caller's deadline passed`);
      settle();
      return;
    }
    let outcome: CallOutcome;
    try {
      outcome = { result: await callContext.run(context, () => target.fn.apply(target.thisArg, params)) };
    } catch (error) {
      outcome = { error };
    }
    await this.#answer(protocol, message, outcome, context.method);
    settle();
  }

  #refuse(protocol: ServerProtocol, message: ConsumeMessage, error: Error, settle: () => void): void {
    this.#logger.warn(`server ${this.serverId} refused a request: ${error.message}`);
    this.#answer(protocol, message, { error }, undefined).then(settle, settle);
  }

  /** Publishes the reply; an outcome that cannot be sent becomes an error reply saying why. */
  async #answer(protocol: ServerProtocol, message: ConsumeMessage, outcome: CallOutcome, method: string | undefined): Promise<void> {
    let reply;
    try {
      reply = protocol.reply(message, outcome);
    } catch (problem) {
      this.#logger.warn(`server ${this.serverId}: ${method ?? 'a request'}: ${describeError(problem)}`);
      outcome = { error: problem };
      reply = protocol.reply(message, outcome);
    }
    if ('error' in outcome) this.#stats.failed++;
    else this.#stats.served++;
    if (reply === undefined) {
      this.#logger.debug(`server ${this.serverId}: request without a reply address, reply dropped`);
      return;
    }
    try {
      const channel = await this.#replies();
      channel.publish(reply.exchange, reply.routingKey, reply.body, reply.properties);
    } catch (error) {
      this.#logger.error(`server ${this.serverId} could not publish the reply to ${reply.exchange || reply.routingKey}: ${describeError(error)}`);
    }
  }
}

function ack(channel: Channel, message: ConsumeMessage): void {
  try {
    channel.ack(message);
  } catch {
    // The channel closed under the call: the broker redelivers the request to another consumer.
  }
}

function noop(): void {}

/** The API type a server was built with by chained registration, for typing a proxy. */
export type ServerApi<S> = S extends QAMServer<infer A> ? A : never;
