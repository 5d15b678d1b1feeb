import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import {
  callmeConnectionAliases,
  connectionFor,
  connectionUserRules,
  type CallmeConnectionOptions,
  type ConnectionOptions,
  type QAMConnection,
} from '../amqp/connection.js';
import { failureKind, type AmqpChannel, type Delivery } from '../amqp/port.js';
import { ServedCall, currentCall, expirationMs, runCall, type Middleware } from './call-context.js';
import { CallerClocks } from './caller-clocks.js';
import { CallMemory, dedupeDefaults, dedupeKey, type DedupeOptions } from './dedupe.js';
import { Consumers } from './consumers.js';
import { drain } from './drain.js';
import { DispatchTable, methodInfo, type RemoteFunction, type ServerDescription, type Target } from './dispatch.js';
import { ServerObserver } from './observe.js';
import type { MethodStats } from '../metrics.js';
import { paramsValidator, type ParamsSchema, type ParamsValidator } from './validation.js';
import { checkMethodPath } from '../protocols/native/format.js';
import {
  QAMAccessRefusedException,
  QAMClosedException,
  QAMException,
  QAMMethodNotFoundException,
  describeError,
  isInstance,
  isServerRaised,
  serverRaised,
} from '../errors.js';
import { connectionHeaders, describeKind } from '../protocols/native/wire.js';
import { RateLimitedLog, clip, escapingLogger, quote } from '../log-guard.js';
import {
  anyString,
  arrayOf,
  boolean,
  checkOptions,
  nested,
  nonEmptyString,
  oneOf,
  paramsSchema,
  positiveInteger,
  record,
  resolveAliases,
  seconds,
  secondsOrZero,
  type Rule,
  type Rules,
} from '../options.js';
import type { Logger } from '../logger.js';
import { cancelQueue, checkId, serverNames, type WireProtocol } from '../protocols/naming.js';
import { WorkerPool } from './pool.js';
import {
  nativeProtocol,
  type CallOutcome,
  type IncomingCall,
  type OutgoingReply,
  type ProtocolSettings,
  type ServerProtocol,
} from '../protocols/native/server.js';
import { qamProtocol } from '../protocols/qam/server.js';
import { ReplyPublisher } from './replies.js';
import { serializerNamed, type SerializerName } from '../serializers.js';
import { isThenable } from '../util/thenable.js';
import { ThreadPool, workerModuleHref, type WorkerExport } from './thread-pool.js';
import { TopologyWatch } from './topology.js';
import { CancelListener } from './cancels.js';
import { CallbackState } from '../proxy/pending.js';

export { currentCall, type CallContext } from './call-context.js';

/**
 * Options of a {@link QAMServer}. Connection options apply when no `connection` is given; beside one
 * they are a TypeError, except `logger`. Unknown options are a TypeError.
 */
export interface QAMServerOptions extends ConnectionOptions, CallmeConnectionOptions {
  /** The id proxies call; names the queue `server_<id>_queue` and exchange `server_<id>_ex`. */
  serverId: string;
  /** QAM's name of `serverId`: give one of the two (see {@link QAMServerSpelling}). */
  server_id?: never;
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
  /**
   * The serializers whose requests the server decodes (native protocol); a request in another is
   * answered with BAD_MESSAGE. Refuse `'superjson'` when no proxy needs it: decoding it rebuilds
   * classes, Maps, Sets and shared references, more work than JSON. The QAM protocol is JSON only.
   * @default ['json', 'superjson']
   * @example new QAMServer({ serverId: 'calc', acceptSerializers: ['json'] })
   */
  acceptSerializers?: SerializerName[];
  /** Seconds {@link QAMServer.close} waits for running calls before closing anyway. @default 30 */
  drainTimeout?: number;
  /**
   * Worker threads for functions registered with {@link QAMServer.registerWorkerFunction}: at most
   * this many run at once. Started at the first such call, stopped by `close()`.
   * @default os.availableParallelism()
   */
  threads?: number;
  /**
   * The wire format(s) served. `'native'`: qam's own (`server_<id>_queue`); `'qam'`: Python QAM's
   * JSON format (`<id>_server_queue`), for QAM proxies. An array serves each on its own queue at
   * once, all calls sharing the one worker pool, so one service answers both kinds of proxy.
   * @default 'native'
   * @example new QAMServer({ serverId: 'calc', protocol: ['native', 'qam'] })
   */
  protocol?: WireProtocol | WireProtocol[];
  /**
   * The type of the native protocol's queue `server_<id>_queue`. `'quorum'`: RabbitMQ's
   * Raft-replicated queue, which survives the loss of a minority of a cluster's nodes (see
   * "Scaling" in the README). Every server of an id must declare the same type: a queue that
   * exists with another fails `serve()` with `PRECONDITION_FAILED`. The QAM protocol's queue keeps
   * QAM's classic declaration.
   * @default 'classic'
   */
  queueType?: 'classic' | 'quorum';
  /**
   * With `queueType: 'quorum'`: RabbitMQ's `x-delivery-limit`, the redeliveries a request may have
   * (a request whose servers die or lose their connection running it comes back each time). The
   * broker would drop a request over the limit silently; on its last delivery the server answers
   * it with an error (`remoteCode` `DELIVERY_LIMIT`) without running it, or, with
   * `deadLetterExchange`, rejects it to that exchange. Every server of an id must declare the same.
   */
  deliveryLimit?: number;
  /** With `deliveryLimit`: the exchange (`x-dead-letter-exchange`) requests at the limit are dead-lettered to, instead of answered. */
  deadLetterExchange?: string;
  /**
   * At most once within a window: the server keeps each finished call's outcome (result or error)
   * for `window` seconds (at most `maxEntries` of them) and answers a request that comes again
   * under the same uid (redelivered by the broker, or re-sent by a proxy's `retry`) from it,
   * without running the function again; a request whose uid is still running waits for that run
   * and gets its outcome. Within this server object only: competing servers share nothing. `true`
   * takes the defaults. See "At most once within a window" in the README.
   * @default off
   * @example new QAMServer({ serverId: 'billing', dedupe: { window: 600, maxEntries: 50_000 } })
   */
  dedupe?: boolean | DedupeOptions;
  /**
   * Answer introspection requests (`proxy.getRemoteMethods()`, `qam methods`) with the methods
   * served, their parameter counts and descriptions. Introspection does not pass through
   * middleware: turn it off when the list of methods is not for every caller to see; callers then
   * get METHOD_NOT_FOUND, as from a server that predates it. Native protocol only.
   * @default true
   */
  introspection?: boolean;
}

/** QAM's spelling of the server options: `server_id` instead of `serverId`. */
export type QAMServerSpelling = Omit<QAMServerOptions, 'serverId' | 'server_id'> & { server_id: string; serverId?: never };

/** Counters of a server since it was created. */
export interface QAMServerStats {
  /** Requests answered with a result. */
  served: number;
  /** Requests answered with an error (thrown, not found, malformed, too large). */
  failed: number;
  /** Requests skipped because their caller's deadline had passed. */
  expired: number;
  /** Requests without a reply address (`proxy.noReply()` calls) that ran; counted in `served` or `failed` too. */
  oneWay: number;
  /** Calls running now. */
  active: number;
  /**
   * Requests with `dedupe` answered with the outcome of an earlier run under their uid (finished,
   * or running when they came) instead of running again; counted in `served` or `failed` too.
   */
  deduplicated: number;
  /** Calls run, by method: count, errors by code, latency histogram (from the start of the call to its reply). */
  methods: Record<string, MethodStats>;
}

const protocolName = oneOf('native', 'qam');
const dedupeRules: Rules<DedupeOptions> = { window: seconds, maxEntries: positiveInteger };
const dedupeRule: Rule = (value, at) => {
  if (typeof value !== 'boolean') nested(dedupeRules)(value, at);
};
const protocolNames = arrayOf(protocolName, "an array of 'native' and 'qam'");

const serverRules: Rules<Omit<QAMServerOptions, 'server_id'> & { server_id?: string }> = {
  ...connectionUserRules,
  serverId: anyString,
  server_id: anyString,
  workers: positiveInteger,
  maxMessageBytes: positiveInteger,
  exposeStack: boolean,
  ack: oneOf('afterReply', 'onReceipt'),
  serializer: oneOf('json', 'superjson'),
  acceptSerializers: arrayOf(oneOf('json', 'superjson'), "an array of 'json' and 'superjson'"),
  drainTimeout: secondsOrZero,
  threads: positiveInteger,
  protocol: (value, at) => (Array.isArray(value) ? protocolNames : protocolName)(value, at),
  queueType: oneOf('classic', 'quorum'),
  deliveryLimit: positiveInteger,
  deadLetterExchange: nonEmptyString,
  dedupe: dedupeRule,
  introspection: boolean,
};

/** The native queue's declaration arguments for the queue options, or undefined for a classic queue (declared as before). */
function queueArguments(options: QAMServerOptions): Record<string, unknown> | undefined {
  if (options.deliveryLimit !== undefined && options.queueType !== 'quorum')
    throw new TypeError("Option 'deliveryLimit' of QAMServer needs queueType: 'quorum' (RabbitMQ applies it to quorum queues only)");
  if (options.deadLetterExchange !== undefined && options.deliveryLimit === undefined)
    throw new TypeError("Option 'deadLetterExchange' of QAMServer needs 'deliveryLimit': it names where requests at the limit go");
  if (options.queueType !== 'quorum') return undefined;
  const args: Record<string, unknown> = { 'x-queue-type': 'quorum' };
  if (options.deliveryLimit !== undefined) args['x-delivery-limit'] = options.deliveryLimit;
  if (options.deadLetterExchange !== undefined) args['x-dead-letter-exchange'] = options.deadLetterExchange;
  return args;
}

const closeRules: Rules<{ deleteQueue?: boolean }> = { deleteQueue: boolean };

/** Options of {@link QAMServer.registerFunction}. */
export interface FunctionOptions<P extends readonly unknown[] = unknown[]> {
  /**
   * Validates the params before the function runs, with any Standard Schema library (zod,
   * valibot, ArkType, …): one schema for the params array (a tuple) or one per param. Params it
   * refuses are answered with QAMInvalidParamsException (`INVALID_PARAMS`, with the issues) and
   * nothing runs; its output (coerced, defaulted) is what the function gets.
   * @example server.registerFunction(add, 'add', { params: [z.number(), z.number()] })
   */
  params?: ParamsSchema<P>;
  /** What the function does, for introspection (`proxy.getRemoteMethods()`, `qam methods`). */
  description?: string;
}

/** Options of {@link QAMServer.registerClass}. */
export interface InstanceOptions<T> {
  /** Params schemas by method name (see {@link FunctionOptions.params}); methods without one are not validated. */
  params?: { readonly [M in keyof T]?: T[M] extends (...args: infer P) => unknown ? ParamsSchema<P> : never };
  /** Descriptions by method name, for introspection (see {@link FunctionOptions.description}). */
  descriptions?: { readonly [M in keyof T]?: T[M] extends (...args: any[]) => unknown ? string : never };
}

const functionRules: Rules<FunctionOptions> = { params: paramsSchema, description: anyString };
const instanceRules: Rules<InstanceOptions<object>> = {
  params: record(paramsSchema, 'an object of params schemas by method name'),
  descriptions: record(anyString, 'an object of descriptions by method name'),
};

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
  /**
   * This server object's own id, `<serverId>.<16 hex digits>`, random per instance: several
   * servers with one `serverId` compete for its queue, and this tells them apart. Started notices
   * name it (see {@link QAMProxy} `withStartNotice`).
   */
  readonly instanceId: string;
  /** The connection this server uses (listen here for connect / disconnect events). */
  readonly connection: QAMConnection;
  readonly #ownsConnection: boolean;
  #retained = false;
  readonly #logger: Logger;
  readonly #table = new DispatchTable();
  readonly #pool: WorkerPool;
  readonly #threads: ThreadPool;
  readonly #protocols: ServerProtocol[];
  readonly #ackOnReceipt: boolean;
  /** The native queue's `x-delivery-limit`, when set. */
  readonly #deliveryLimit: number | undefined;
  /** True when requests at the delivery limit are dead-lettered rather than answered. */
  readonly #deadLettering: boolean;
  readonly #drainTimeoutMs: number;
  readonly #stats = { served: 0, failed: 0, expired: 0, oneWay: 0, deduplicated: 0 };
  /** The calls run and their outcomes, by {@link dedupeKey}, with `dedupe`. */
  readonly #memory: CallMemory | undefined;
  readonly #middleware: Middleware[] = [];
  /**
   * The state of each call received and not finished, by uid: waiting for a worker or running.
   * Finished calls leave it, so it holds at most what the prefetch lets in.
   */
  readonly #calls = new Map<string, CallbackState>();
  readonly #observer: ServerObserver;
  #state: 'idle' | 'serving' | 'closing' | 'closed' = 'idle';
  #detach: (() => void) | undefined;
  readonly #consumers: Consumers;
  readonly #topology: TopologyWatch;
  readonly #replies: ReplyPublisher;
  readonly #clocks = new CallerClocks();
  /** Refused and dropped requests: at most {@link refusalLines} lines a minute, then one line counting the rest. */
  readonly #refusals: RateLimitedLog;
  readonly #introspection: boolean;
  /** The listener of this instance's cancels, when it serves the native protocol. */
  readonly #cancels: CancelListener | undefined;
  /** The running calls that asked for a started notice, which their callers may cancel, by id. */
  readonly #cancellable = new Map<string, ServedCall>();

  constructor(given: QAMServerOptions | QAMServerSpelling) {
    checkOptions('QAMServer', given, serverRules);
    const options = resolveAliases('QAMServer', given, serverAliases) as QAMServerOptions;
    this.serverId = checkId('serverId', options.serverId);
    const instanceSuffix = randomBytes(8).toString('hex');
    this.instanceId = `${this.serverId}.${instanceSuffix}`;
    this.#ownsConnection = options.connection === undefined;
    this.connection = connectionFor('QAMServer', options);
    this.#logger = escapingLogger(options.logger ?? this.connection.logger);
    this.#refusals = new RateLimitedLog(
      this.#logger,
      (suppressed, seconds) =>
        `server ${this.serverId}: ${suppressed} more refused or dropped requests in the last ${seconds} s were not logged`,
      refusalLines,
      refusalIntervalMs,
    );
    this.#replies = new ReplyPublisher({
      serverId: this.serverId,
      connection: this.connection,
      logger: this.#logger,
      refusals: this.#refusals,
      serving: () => this.#state === 'serving',
    });
    this.#pool = new WorkerPool(options.workers ?? 16, (error) =>
      this.#logger.error(`server ${this.serverId}: a call failed outside its handler: ${describeError(error)}`),
    );
    this.#threads = new ThreadPool(options.threads ?? availableParallelism(), `server ${this.serverId}`, this.#logger);
    const settings = {
      serverId: this.serverId,
      maxBytes: options.maxMessageBytes ?? 16 * 1024 * 1024,
      exposeStack: options.exposeStack ?? false,
      fallbackSerializer: serializerNamed(options.serializer ?? 'json'),
      accepted: acceptedSerializers(options.acceptSerializers ?? ['json', 'superjson']),
      headers: connectionHeaders(this.connection.fingerprintJson),
      warn: (message: string) => this.#logger.warn(`server ${this.serverId}: ${message}`),
      queueArguments: queueArguments(options),
    };
    this.#deliveryLimit = options.deliveryLimit;
    this.#deadLettering = options.deadLetterExchange !== undefined;
    this.#protocols = protocolsFor(options.protocol ?? 'native', settings);
    this.#cancels = this.#protocols.some((protocol) => protocol.name === 'native')
      ? new CancelListener({
          serverId: this.serverId,
          queue: cancelQueue(this.serverId, instanceSuffix),
          exchange: serverNames(this.serverId).exchange,
          connection: this.connection,
          logger: this.#logger,
          serving: () => this.#state === 'serving',
          cancel: (id, userId) => this.#cancelCall(id, userId),
        })
      : undefined;
    const serving = (): boolean => this.#state === 'serving';
    const common = { serverId: this.serverId, connection: this.connection, logger: this.#logger, protocols: this.#protocols, serving };
    this.#consumers = new Consumers({
      ...common,
      prefetch: this.#pool.size,
      receive: (protocol, channel, message) => this.#receive(protocol, channel, message),
    });
    this.#topology = new TopologyWatch({ ...common, starting: () => this.#consumers.starting });
    this.#ackOnReceipt = options.ack === 'onReceipt';
    this.#observer = new ServerObserver(this.serverId, this.#logger);
    this.#drainTimeoutMs = (options.drainTimeout ?? 30) * 1000;
    const dedupe = options.dedupe === true ? dedupeDefaults : options.dedupe;
    this.#memory = dedupe === undefined || dedupe === false ? undefined : new CallMemory(dedupe);
    this.#introspection = options.introspection ?? true;
  }

  /**
   * Registers a function under `name` (default: the function's own name). Returns the server with
   * the function added to its type, so `ServerApi<typeof server>` can type a proxy.
   */
  registerFunction<F extends RemoteFunction, N extends string>(
    fn: F,
    name: N,
    options?: FunctionOptions<Parameters<F>>,
  ): QAMServer<Registered & Record<N, F>>;
  registerFunction(fn: RemoteFunction): this;
  registerFunction(fn: RemoteFunction, name?: string, options: FunctionOptions = {}): this {
    checkOptions('registerFunction', options, functionRules);
    const validate = options.params === undefined ? undefined : paramsValidator(options.params);
    this.#table.registerFunction(
      fn,
      name ?? fn.name,
      validate,
      methodInfo(typeof fn === 'function' ? fn.length : undefined, options.description),
    );
    return this;
  }

  /**
   * Registers an instance under `name`: its methods become callable as `name.method`, collected
   * now. Exposed: its own function-valued properties (arrow-function fields), the methods its own
   * class chain defines up to the first built-in prototype (Object, Map, Set, Array, Promise,
   * Error, EventEmitter, streams, …, whose methods are never remote), and that chain's accessors
   * whose getter, read once now, returns a function — what the proxy's types promise. Never
   * `constructor`, native or bound functions, other data properties or names starting with `_`.
   */
  registerClass<T extends object, N extends string>(
    instance: T,
    name: N,
    options: InstanceOptions<T> = {},
  ): QAMServer<Registered & Record<N, T>> {
    checkOptions('registerClass', options, instanceRules);
    const validators = new Map<string, ParamsValidator>();
    for (const [method, schema] of Object.entries(options.params ?? {})) {
      if (schema !== undefined) validators.set(method, paramsValidator(schema as ParamsSchema));
    }
    const descriptions = new Map<string, string>();
    for (const [method, description] of Object.entries(options.descriptions ?? {})) {
      if (description !== undefined) descriptions.set(method, description as string);
    }
    this.#table.registerInstance(instance, name, validators, descriptions);
    return this as unknown as QAMServer<Registered & Record<N, T>>;
  }

  /** QAM's name of {@link registerFunction}. */
  register_function<F extends RemoteFunction, N extends string>(fn: F, name: N): QAMServer<Registered & Record<N, F>>;
  register_function(fn: RemoteFunction): this;
  register_function(fn: RemoteFunction, name?: string): this {
    return this.registerFunction(fn, name ?? fn.name) as unknown as this;
  }

  /** QAM's name of {@link registerClass}. */
  register_class<T extends object, N extends string>(instance: T, name: N): QAMServer<Registered & Record<N, T>> {
    return this.registerClass(instance, name);
  }

  /**
   * The state of the call with this uid on this server object: 0 (`waiting`) received and waiting
   * for a worker, 1 (`processing`) its function runs, 2 (`finished`) it finished, or this server
   * never received it (another instance took it, it is still in the broker's queue, or it never
   * came). The uid is the one a callback-mode proxy call returns (the request's correlation id;
   * for the QAM protocol its body id, unique per proxy only). Only calls in flight are kept.
   */
  getCallbackState(uid: string): CallbackState {
    return this.#calls.get(uid) ?? CallbackState.finished;
  }

  /**
   * Adds middleware run around every call of a registered function (see {@link Middleware}): the
   * first added is outermost; params schemas are checked inside, right before the function.
   * Requests refused before anything runs (not found, malformed) do not reach it.
   */
  use(middleware: Middleware): this {
    if (typeof middleware !== 'function') throw new TypeError('use() expects a function (call, next) => result');
    this.#middleware.push(middleware);
    return this;
  }

  /**
   * Registers the function `exportName` of a JavaScript module to run on the server's worker
   * threads, under `name` (default: `exportName`): for CPU-bound work, which on the main thread
   * would hold up every other call. `module` is a path (relative to the working directory) or a
   * `file:` URL; each thread imports it, this thread never does. The params and the result are
   * structured-cloned between threads; what the function throws keeps its name, message, code and
   * cause. The call takes one of the `workers` like any other while it waits for one of the
   * `threads`. A thread that dies fails its call with code WORKER_CRASHED and is replaced; a call
   * still running at its caller's deadline has its thread stopped. `currentCall()` is undefined on
   * a worker thread. Give the module's type (a type-only import) to type the proxy.
   *
   * @example
   * server.registerWorkerFunction<typeof import('./cpu.js'), 'fib'>(new URL('./cpu.js', import.meta.url), 'fib');
   */
  registerWorkerFunction<M extends object, K extends WorkerExport<M>, N extends string = K>(
    module: string | URL,
    exportName: K,
    name?: N,
  ): QAMServer<Registered & Record<N, M[K]>>;
  registerWorkerFunction<E extends string, N extends string = E>(
    module: string | URL,
    exportName: E,
    name?: N,
  ): QAMServer<Registered & Record<N, RemoteFunction>>;
  registerWorkerFunction(module: string | URL, exportName: string, name: string = exportName): this {
    const href = workerModuleHref(module);
    const run = (...params: unknown[]): Promise<unknown> => this.#threads.run({ href, exportName, params }, currentCall()?.deadline);
    // This thread never imports the module, so the function's parameter count is unknown.
    this.#table.registerFunction(run, name, undefined, methodInfo(undefined, undefined));
    return this;
  }

  /** Counters since creation. */
  stats(): QAMServerStats {
    return { ...this.#stats, active: this.#pool.active, methods: this.#observer.stats() };
  }

  /**
   * callme's name of {@link serve}. Unlike callme's `start()`, which blocks its thread, it resolves
   * once the server consumes; the server then runs until {@link close}.
   */
  start(): Promise<void> {
    return this.serve();
  }

  /** Declares the server's exchange and queue and starts consuming; resolves once it consumes. */
  async serve(): Promise<void> {
    if (this.#state === 'serving') return this.#consumers.current;
    if (this.#state !== 'idle') throw new QAMClosedException(`Server ${this.serverId} is closed`);
    this.#state = 'serving';
    // A serving server keeps the process alive, until close().
    this.connection.retain();
    this.#retained = true;
    this.#detach = this.connection.attach({
      onConnect: () => {
        this.#consumers.restart();
        this.#cancels?.restart();
      },
      onDisconnect: () => this.#forgetChannels(),
    });
    try {
      await this.#consumers.start();
      await this.#cancels?.start();
    } catch (error) {
      await this.close();
      if (failureKind(error) === 'access-refused') {
        throw new QAMAccessRefusedException(`Server ${this.serverId} may not declare or consume its queue: ${describeError(error)}`, error);
      }
      throw error;
    }
    this.#topology.start();
  }

  /**
   * Stops consuming, lets running calls finish and reply (up to `drainTimeout`), then closes its
   * channels, and its connection when it opened it. Requests not yet delivered stay in the queue,
   * unless `deleteQueue` is set: then the server's queue and exchange are deleted (for ephemeral
   * servers, demos and tests; requests still queued are lost).
   */
  async close(options: { deleteQueue?: boolean } = {}): Promise<void> {
    checkOptions('QAMServer.close', options, closeRules);
    if (this.#state === 'closing' || this.#state === 'closed') return;
    this.#state = 'closing';
    this.#topology.stop();
    await this.#consumers.stop();
    const cancelled = this.#consumers.cancel();
    // While the broker blocks the connection it reads nothing from it, so no cancel would be answered.
    if (!this.connection.blocked) await cancelled;
    const drained = await drain(this.#pool, this.connection, this.#drainTimeoutMs);
    if (!drained) this.#logger.warn(`server ${this.serverId} closed with ${this.#pool.active} calls still running`);
    await this.#threads.close();
    this.#detach?.();
    // While the broker is down or blocks the connection, nothing can be deleted: close without waiting.
    const reachable = this.connection.connected && !this.connection.blocked;
    if (options.deleteQueue === true && reachable) await this.#topology.remove();
    await Promise.all([this.#consumers.close(), this.#topology.close(reachable), this.#replies.close(), this.#cancels?.close()]);
    this.#refusals.flush();
    if (this.#retained) this.connection.release();
    this.#retained = false;
    if (this.#ownsConnection) await this.connection.close();
    this.#state = 'closed';
  }

  #forgetChannels(): void {
    this.#cancels?.forget();
    this.#consumers.forget();
    this.#replies.forget();
    this.#topology.forget();
  }

  #receive(protocol: ServerProtocol, channel: AmqpChannel, message: Delivery): void {
    if (this.#replies.isPoisoned(message)) {
      const replyTo = quote(String(message.properties.replyTo), 100);
      this.#refusals.warn(
        `server ${this.serverId} dropped a redelivered request without running it again: its reply to ${replyTo} made the broker close the connection`,
      );
      channel.ack(message);
      return;
    }
    if (this.#replies.isRefused(message)) {
      const replyTo = quote(String(message.properties.replyTo), 100);
      this.#refusals.warn(
        `server ${this.serverId} dropped a request without running it: the broker refused a reply to its address ${replyTo} before (a channel whose node is down?)`,
      );
      channel.ack(message);
      return;
    }
    if (
      this.#deliveryLimit !== undefined &&
      protocol.name === 'native' &&
      this.#atDeliveryLimit(protocol, channel, message, this.#deliveryLimit)
    )
      return;
    const read = protocol.read(message);
    if ('error' in read) {
      this.#refuse(protocol, channel, message, read.error);
      return;
    }
    const { call } = read;
    if (call.kind === describeKind) {
      this.#describe(protocol, channel, message);
      return;
    }
    const target = checkMethodPath(call.method) ? this.#table.resolve(call.method) : undefined;
    if (target === undefined) {
      this.#refuse(protocol, channel, message, protocol.notFound(call.method));
      return;
    }
    const id = call.id;
    const key = this.#memory === undefined || id === undefined ? undefined : dedupeKey(protocol.name, message, { ...call, id });
    this.#admit(protocol, channel, message, target, call, key);
  }

  /**
   * Runs a call on the pool; with `dedupe`, answers a request whose call ran already (or runs) with
   * that run's outcome instead. A duplicate of a call that ended without running is run itself.
   */
  #admit(
    protocol: ServerProtocol,
    channel: AmqpChannel,
    message: Delivery,
    target: Target,
    call: IncomingCall,
    key: string | undefined,
  ): void {
    const memory = this.#memory;
    if (memory !== undefined && key !== undefined) {
      const seen = memory.admit(key, Date.now());
      if (seen.state === 'finished') {
        this.#answerAgain(protocol, channel, message, seen.outcome);
        return;
      }
      if (seen.state === 'running') {
        memory.attach(key, (outcome) => {
          if (outcome === undefined) this.#admit(protocol, channel, message, target, call, key);
          else this.#answerAgain(protocol, channel, message, outcome);
        });
        return;
      }
    }
    const { id, method, params, deadline, startedNotice } = call;
    const callerDeadline = this.#clocks.deadline(message.properties.replyTo, expirationMs(message), deadline, Date.now());
    const context = new ServedCall(message, method, params, callerDeadline);
    if (id !== undefined) this.#calls.set(id, CallbackState.waiting);
    this.#pool.run((done) => this.#run(protocol, channel, message, target, context, id, key, startedNotice, done));
  }

  /** Answers a duplicate with the outcome of its call's run, then acknowledges it (in either `ack` mode: it never runs). */
  #answerAgain(protocol: ServerProtocol, channel: AmqpChannel, message: Delivery, outcome: CallOutcome): void {
    this.#stats.deduplicated++;
    this.#answer(protocol, message, outcome, undefined, () => channel.ack(message));
  }

  /**
   * Runs one call on a worker. With ack on receipt (QAM's way) the request is acknowledged as its
   * worker takes it, not as it arrives: acknowledging earlier would lift the prefetch bound and
   * pull the whole backlog in. Otherwise it is acknowledged once its reply is out: confirmed by
   * the broker, or just published for a direct reply-to address the broker took a reply to before.
   * A function that returns a plain value is answered in the same turn, without a promise.
   */
  #run(
    protocol: ServerProtocol,
    channel: AmqpChannel,
    message: Delivery,
    target: Target,
    context: ServedCall,
    id: string | undefined,
    key: string | undefined,
    startedNotice: boolean,
    done: () => void,
  ): void {
    const ackOnReceipt = this.#ackOnReceipt;
    if (ackOnReceipt) channel.ack(message);
    if (id !== undefined) this.#calls.set(id, CallbackState.processing);
    const finish = (): void => {
      if (id !== undefined) this.#calls.delete(id);
      if (!ackOnReceipt) channel.ack(message);
      done();
    };
    if (context.deadline !== undefined && context.deadline <= Date.now()) {
      this.#stats.expired++;
      this.#logger.debug(`server ${this.serverId} skips ${context.method}: its caller's deadline passed`);
      if (key !== undefined) this.#memory?.end(key, undefined, Date.now());
      finish();
      return;
    }
    if (startedNotice) {
      if (id !== undefined && this.#cancels !== undefined && !this.#cancellable.has(id)) this.#cancellable.set(id, context);
      this.#notifyStarted(protocol, message);
    }
    const observation = this.#observer.start(context.method, message);
    const answer = (outcome: CallOutcome): void => {
      context.finish();
      if (startedNotice && id !== undefined && this.#cancellable.get(id) === context) this.#cancellable.delete(id);
      if (key !== undefined) this.#memory?.end(key, outcome, Date.now());
      this.#observer.end(observation, context.method, message, outcome);
      this.#answer(protocol, message, outcome, context.method, finish);
    };
    const failed = (error: unknown): void => answer(isServerRaised(error) ? { error, fromServer: true } : { error });
    try {
      const result =
        observation.context === undefined
          ? runCall(context, target, this.#middleware)
          : this.#observer.within(observation, () => runCall(context, target, this.#middleware));
      if (isThenable(result)) {
        Promise.resolve(result).then((value) => answer({ result: value }), failed);
      } else {
        answer({ result });
      }
    } catch (error) {
      failed(error);
    }
  }

  /**
   * True when the quorum queue delivers `message` for the last time (its `x-delivery-count` reached
   * the limit: one more return and the broker drops it silently), having answered it with an error
   * or dead-lettered it instead of running it again.
   */
  #atDeliveryLimit(protocol: ServerProtocol, channel: AmqpChannel, message: Delivery, limit: number): boolean {
    const count = (message.properties.headers as Record<string, unknown> | undefined)?.['x-delivery-count'];
    if (typeof count !== 'number' || count < limit) return false;
    const what = `a request delivered ${count + 1} times without being answered (its servers died or lost their connection running it)`;
    if (this.#deadLettering) {
      this.#refusals.warn(`server ${this.serverId} dead-lettered ${what}`);
      channel.nack(message, false);
      return true;
    }
    const error = new QAMException(
      `Server ${this.serverId} did not run ${what}: it reached the queue's delivery limit of ${limit} redeliveries`,
      { code: 'DELIVERY_LIMIT' },
    );
    this.#refuse(protocol, channel, message, serverRaised(error));
    return true;
  }

  /** Tells the caller that asked for it that this instance took its request; the reply follows on the same path. */
  #notifyStarted(protocol: ServerProtocol, message: Delivery): void {
    const notice = protocol.started(message, this.instanceId, this.#cancels?.address);
    if (notice !== undefined) this.#replies.publish(message, notice, noop);
  }

  /**
   * A caller cancelled a call that asked for a started notice: its signal aborts. A cancel of a call
   * this instance does not run (it ended) is dropped; one from another broker user than the
   * request's is refused and logged.
   */
  #cancelCall(id: string, userId: string | undefined): void {
    const context = this.#cancellable.get(id);
    if (context === undefined) return;
    if (context.userId !== undefined && context.userId !== userId) {
      this.#refusals.warn(`server ${this.serverId} ignored a cancel of a ${clip(context.method)} call from another user than its caller`);
      return;
    }
    this.#logger.debug(`server ${this.serverId}: the caller of ${context.method} cancelled it`);
    context.cancel();
  }

  /**
   * Answers an introspection request at once, without a worker or middleware: the methods served,
   * or METHOD_NOT_FOUND when introspection is off (what a server that predates it answers).
   */
  #describe(protocol: ServerProtocol, channel: AmqpChannel, message: Delivery): void {
    if (!this.#introspection) {
      this.#refuse(
        protocol,
        channel,
        message,
        new QAMMethodNotFoundException(`Server ${this.serverId} does not answer introspection (its option introspection is false)`),
      );
      return;
    }
    const description: ServerDescription = { serverId: this.serverId, instanceId: this.instanceId, methods: this.#table.list() };
    this.#answer(protocol, message, { result: description }, undefined, () => channel.ack(message));
  }

  #refuse(protocol: ServerProtocol, channel: AmqpChannel, message: Delivery, error: QAMException): void {
    this.#refusals.warn(`server ${this.serverId} refused a request: ${clip(error.message, 512)}`);
    this.#answer(protocol, message, { error, fromServer: true }, undefined, () => channel.ack(message));
  }

  /** Publishes the reply, then calls `after`; an outcome that cannot be sent becomes an error reply saying why. */
  #answer(protocol: ServerProtocol, message: Delivery, outcome: CallOutcome, method: string | undefined, after: () => void): void {
    const reply = this.#replyFor(protocol, message, outcome, method);
    if (reply === undefined) after();
    else this.#replies.publish(message, reply, after);
  }

  #replyFor(protocol: ServerProtocol, message: Delivery, outcome: CallOutcome, method: string | undefined): OutgoingReply | undefined {
    let reply;
    try {
      reply = protocol.reply(message, outcome);
    } catch (problem) {
      this.#logger.warn(`server ${this.serverId}: ${method ?? 'a request'}: ${describeError(problem)}`);
      outcome = isInstance(problem, QAMException) ? { error: problem, fromServer: true } : { error: problem };
      try {
        reply = protocol.reply(message, outcome);
      } catch (again) {
        this.#logger.error(`server ${this.serverId}: ${method ?? 'a request'}: cannot send even an error reply: ${describeError(again)}`);
        return undefined;
      }
    }
    if ('error' in outcome) this.#stats.failed++;
    else this.#stats.served++;
    // A call that ran without a reply address: a one-way call, whose failure nobody else hears of.
    if (reply === undefined && method !== undefined) {
      this.#stats.oneWay++;
      if ('error' in outcome) {
        this.#refusals.warn(`server ${this.serverId}: one-way call ${clip(method)} failed: ${clip(describeError(outcome.error), 512)}`);
      }
    }
    return reply;
  }
}

/** Refusal lines a server writes in {@link refusalIntervalMs} before it only counts them. */
const refusalLines = 10;
const refusalIntervalMs = 60_000;

function noop(): void {}

/** QAM's and callme's names of server options and the names they stand for. */
const serverAliases: Readonly<Record<string, string>> = { ...callmeConnectionAliases, server_id: 'serverId' };

function acceptedSerializers(names: SerializerName[]): ReadonlySet<SerializerName> {
  if (!Array.isArray(names) || names.length === 0) throw new TypeError('acceptSerializers must name at least one of json, superjson');
  return new Set(names.map((name) => serializerNamed(name).name));
}

function protocolsFor(wanted: WireProtocol | WireProtocol[], settings: ProtocolSettings): ServerProtocol[] {
  const names = new Set(Array.isArray(wanted) ? wanted : [wanted]);
  if (names.size === 0) throw new TypeError('protocol must name at least one of native, qam');
  return [...names].map((name) => {
    if (name === 'native') return nativeProtocol(settings);
    if (name === 'qam') return qamProtocol(settings);
    throw new TypeError(`Unknown protocol '${String(name)}': expected 'native' or 'qam'`);
  });
}

/** The API type a server was built with by chained registration, for typing a proxy. */
export type ServerApi<S> = S extends QAMServer<infer A> ? A : never;
