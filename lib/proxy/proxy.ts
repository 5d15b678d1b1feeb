import { inspect } from 'node:util';
import type { CallTransport, StartedListener } from './call-client.js';
import type { RequestTarget } from '../protocols/client-protocol.js';
import {
  callmeConnectionAliases,
  connectionFor,
  connectionUserRules,
  type CallmeConnectionOptions,
  type ConnectionOptions,
  type QAMConnection,
} from '../amqp/connection.js';
import { checkMethodPath, type ErrorClass } from '../protocols/native/format.js';
import { QAMInvalidCallException } from '../errors.js';
import { checkId, type WireProtocol } from '../protocols/naming.js';
import {
  anyString,
  arrayOf,
  boolean,
  checkOptions,
  oneOf,
  positiveInteger,
  resolveAliases,
  rule,
  seconds,
  type Rules,
} from '../options.js';
import type { CallbackState, Completion, ErrorCallback, ResultCallback } from './pending.js';
import { describeKind, kindMethod, reservedHeaderPrefix } from '../protocols/native/wire.js';
import type { CallMode, ControlName, QAMProxy as QAMProxyType, UntypedApi } from './types.js';
import { serializerNamed, type SerializerName } from '../serializers.js';
import { createTransport } from './transport.js';

/**
 * Options of a {@link QAMProxy}. Connection options apply when no `connection` is given; beside one
 * they are a TypeError, except `logger`. Unknown options are a TypeError.
 */
export interface QAMProxyOptions extends ConnectionOptions, CallmeConnectionOptions {
  /**
   * The id of the server to call. Without it the proxy is callme's unbound proxy: every call fails
   * at once with QAMInvalidCallException until {@link ProxyControls.useServer} names a server.
   */
  serverId?: string;
  /** QAM's name of `serverId`. */
  server_id?: string;
  /** Share an existing connection; the proxy then leaves it open on close. */
  connection?: QAMConnection;
  /** `'json'` (what every peer reads) or `'superjson'` (Date, BigInt, Map, Set, …). @default 'json' */
  serializer?: SerializerName;
  /** Seconds a call waits for its reply before QAMTimeoutException; fractions allowed. @default 30 */
  timeout?: number;
  /** Requests and replies larger than this many bytes are refused with PAYLOAD_TOO_LARGE. @default 16 MiB */
  maxMessageBytes?: number;
  /**
   * Error classes to rebuild: a remote error whose name is one of these classes' names arrives as
   * an instance of that class (constructor not run), so `instanceof` and inheritance work.
   */
  errors?: ErrorClass[];
  /**
   * The wire format. `'native'`: qam's own, for a QAMServer; `'qam'`: Python QAM's JSON format, for
   * a Python QAM server or a QAMServer that serves `'qam'`. Error replies then reject with
   * QAMRemoteException (or QAMMethodNotFoundException) whose `args` are the exception's args.
   * @default 'native'
   * @example new QAMProxy({ serverId: 'legacy', protocol: 'qam' })
   */
  protocol?: WireProtocol;
  /**
   * With `protocol: 'qam'`: the proxy's reply queue is `<clientId>_client_queue`. It must be unique
   * among running proxies (two proxies on one queue take each other's replies). A given id is
   * declared exactly as QAM does (a Python proxy may share the name) and reused by restarts; a
   * generated one also has the broker delete it after an hour unused (`x-expires`), so the queues
   * of crashed proxies do not pile up. Either way {@link ProxyControls.close | close()} deletes it.
   * @default a random id, `qam_<uuid>`
   */
  clientId?: string;
  /** QAM's name of `clientId`. */
  client_id?: string;
  /**
   * With the native protocol: how replies come back. `'direct'`: RabbitMQ's direct reply-to;
   * `'callme'`: callme's permission-friendly names, through the exchange `client_<user>_ex_<uid>`
   * into the queue `client_<user>_queue_<uid>` (auto-delete, non-durable), where `<user>` is the
   * AMQP user; requests go to `server_<id>_ex`, and the proxy declares only its own `client_<user>_`
   * names, so RabbitMQ permissions can confine it to the servers it may call. A call it may not
   * make fails at once with QAMAccessRefusedException.
   * @default 'direct'
   */
  replies?: 'direct' | 'callme';
  /**
   * Requests carry the connection's user as their AMQP `user_id`, which RabbitMQ checks against
   * the user the connection authenticated as, so servers can trust it (`currentCall().userId`).
   * Turn off for brokers whose authenticated name is not the URL's user (OAuth 2 tokens, x509
   * EXTERNAL): RabbitMQ would refuse every request.
   * @default true
   */
  userId?: boolean;
}

interface CallSettings {
  readonly timeoutMs: number;
  readonly retries: number;
  readonly signal: AbortSignal | undefined;
  readonly callbacks: { ok: ResultCallback; err: ErrorCallback | undefined } | undefined;
  /** Calls expect no reply: they end once the broker confirmed the request. */
  readonly oneWay: boolean;
  /** Where calls go; undefined until useServer names a server. */
  readonly target: RequestTarget | undefined;
  /** True when calls ask for a started notice (kept across useServer). */
  readonly startNotice: boolean;
  readonly onStarted: StartedListener | undefined;
  /** AMQP headers every call carries (`withHeaders`). */
  readonly headers: Readonly<Record<string, string>> | undefined;
}

const controlNames: ReadonlySet<string> = new Set<ControlName>([
  'callback',
  'setTimeout',
  'withSignal',
  'retry',
  'noReply',
  'withHeaders',
  'invoke',
  'cancel',
  'getCallbackState',
  'getNumWaitingCallbacks',
  'withStartNotice',
  'getRemoteState',
  'startedBy',
  'useServer',
  'use_server',
  'set_timeout',
  'get_callback_state',
  'get_num_waiting_callbacks',
  'getStats',
  'getRemoteMethods',
  'close',
]);

/**
 * Property names JavaScript itself, Node and test frameworks probe on any object (promise
 * resolution, matcher, React and DOM checks). They must never become remote calls: `await proxy`
 * would otherwise publish a request for `then` and wait on it. Names starting with `_` or `@@`
 * are absent too (servers never expose `_` names).
 */
const absentNames: ReadonlySet<string> = new Set([
  'then',
  'constructor',
  'asymmetricMatch',
  '$$typeof',
  'nodeType',
  'tagName',
  'hasAttribute',
]);

/** Conversions that print the proxy's label instead of calling anything. */
const labelNames: ReadonlySet<string> = new Set(['toJSON', 'toString', 'valueOf']);

const childCacheLimit = 256;

/** Node timers and AMQP `expiration` take whole milliseconds below 2^31. */
const maxTimeoutMs = 2 ** 31 - 1;

function toTimeoutMs(seconds: unknown): number {
  if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds <= 0 || seconds * 1000 > maxTimeoutMs) {
    throw new QAMInvalidCallException(`Timeout must be a positive number of seconds up to ${maxTimeoutMs / 1000}, got ${String(seconds)}`);
  }
  return Math.ceil(seconds * 1000);
}

/**
 * Builds the ES Proxy for one path. The target is an arrow function so the proxy is callable and
 * has no non-configurable own properties to contradict.
 */
function remoteProxy(client: CallTransport, settings: CallSettings, path: readonly string[], label: string): object {
  let children: Map<string, object> | undefined;
  let controls: Record<string, unknown> | undefined;
  const describe = (): string => label;
  const target = (): void => undefined;
  // util.inspect looks through proxies at their target, so the label must live on the target too.
  Object.defineProperty(target, inspect.custom, { value: describe });
  const isRoot = path.length === 0;
  const method = path.join('.');
  const callable = checkMethodPath(method);

  return new Proxy(target, {
    get(_target, property) {
      if (typeof property === 'symbol') {
        if (property === Symbol.toPrimitive || property === inspect.custom) return describe;
        if (property === Symbol.toStringTag) return 'QAMProxy';
        return undefined;
      }
      if (isRoot && controlNames.has(property)) {
        controls ??= rootControls(client, settings, label);
        return controls[property];
      }
      if (absentNames.has(property) || property.startsWith('_') || property.startsWith('@@')) return undefined;
      if (labelNames.has(property)) return describe;
      children ??= new Map();
      let child = children.get(property);
      if (child === undefined) {
        const childPath = [...path, property];
        child = remoteProxy(client, settings, childPath, `QAMProxy(${childPath.join('.')})`);
        if (children.size < childCacheLimit) children.set(property, child);
      }
      return child;
    },
    apply(_target, _this, params: unknown[]) {
      return call(client, settings, method, callable, params);
    },
    set() {
      return false;
    },
    defineProperty() {
      return false;
    },
    deleteProperty() {
      return false;
    },
  });
}

/** Sends one call; a bad path ends the call the way any failure would, never by throwing. */
function call(
  client: CallTransport,
  settings: CallSettings,
  method: string,
  callable: boolean,
  params: unknown[],
): Promise<unknown> | string {
  const callbacks = settings.callbacks;
  if (callbacks === undefined) {
    return new Promise((resolve, reject) => send(client, settings, method, callable, params, { kind: 'promise', resolve, reject }));
  }
  return send(client, settings, method, callable, params, { kind: 'callback', ok: callbacks.ok, err: callbacks.err });
}

function send(
  client: CallTransport,
  settings: CallSettings,
  method: string,
  callable: boolean,
  params: unknown[],
  completion: Completion,
): string {
  const target = settings.target;
  if (target === undefined) {
    return client.fail(
      method,
      completion,
      new QAMInvalidCallException(`This proxy has no server: call useServer(serverId) first, then ${method} on the proxy it returns`),
    );
  }
  if (!callable) {
    return client.fail(
      method,
      completion,
      new QAMInvalidCallException(`'${method}' is not a callable path: call a function or instance.method`),
    );
  }
  return client.call({
    method,
    params,
    timeoutMs: settings.timeoutMs,
    signal: settings.signal,
    completion,
    retries: settings.retries,
    oneWay: settings.oneWay,
    target,
    onStarted: settings.onStarted,
    headers: settings.headers,
  });
}

function rootControls(client: CallTransport, settings: CallSettings, label: string): Record<string, unknown> {
  const configured = (next: CallSettings): object => remoteProxy(client, next, [], label);
  const setTimeout = (seconds: unknown): object => configured({ ...settings, timeoutMs: toTimeoutMs(seconds) });
  const getCallbackState = (uid: unknown): CallbackState => client.state(String(uid));
  const getNumWaitingCallbacks = (): number => client.waitingCallbacks;
  const useServer = (serverId: unknown): object => {
    const id = checkId('serverId', serverId);
    return remoteProxy(client, { ...settings, target: client.target(id, settings.startNotice) }, [], `QAMProxy(server ${id})`);
  };
  return {
    callback: (ok: unknown, err?: unknown) => {
      if (typeof ok !== 'function' || (err !== undefined && typeof err !== 'function')) {
        throw new QAMInvalidCallException('callback(ok, err) expects functions');
      }
      return configured({ ...settings, callbacks: { ok: ok as ResultCallback, err: err as ErrorCallback | undefined } });
    },
    setTimeout,
    set_timeout: setTimeout,
    withSignal: (signal: unknown) => {
      if (!(signal instanceof AbortSignal)) throw new QAMInvalidCallException('withSignal expects an AbortSignal');
      return configured({ ...settings, signal });
    },
    retry: (times: unknown) => {
      if (typeof times !== 'number' || !Number.isInteger(times) || times < 0) {
        throw new QAMInvalidCallException(`retry expects a non-negative integer, got ${String(times)}`);
      }
      return configured({ ...settings, retries: times });
    },
    noReply: () => {
      if (!client.oneWay) {
        throw new QAMInvalidCallException("noReply() needs the native protocol: a QAM server (protocol 'qam') answers every request");
      }
      return configured({ ...settings, oneWay: true, callbacks: undefined });
    },
    withHeaders: (headers: unknown) =>
      configured({ ...settings, headers: Object.freeze({ ...settings.headers, ...checkHeaders(headers) }) }),
    invoke: (method: unknown, ...params: unknown[]) => call(client, settings, String(method), checkMethodPath(method), params),
    cancel: (uid: unknown) => typeof uid === 'string' && client.cancel(uid),
    getCallbackState,
    get_callback_state: getCallbackState,
    getNumWaitingCallbacks,
    get_num_waiting_callbacks: getNumWaitingCallbacks,
    useServer,
    use_server: useServer,
    withStartNotice: (onStarted?: unknown) => {
      if (onStarted !== undefined && typeof onStarted !== 'function') {
        throw new QAMInvalidCallException('withStartNotice(onStarted) expects a function or nothing');
      }
      const target = settings.target === undefined ? undefined : client.target(settings.target.serverId, true);
      return configured({ ...settings, target, startNotice: true, onStarted: onStarted as StartedListener | undefined });
    },
    getRemoteState: (uid: unknown) => client.remoteState(String(uid)),
    startedBy: (uid: unknown) => client.startedBy(String(uid)),
    getStats: () => client.stats(),
    getRemoteMethods: () => describeServer(client, settings),
    close: () => client.close(),
  };
}

/** Sends the introspection request of `getRemoteMethods()`: a request of kind `describe`, answered by the server itself. */
function describeServer(client: CallTransport, settings: CallSettings): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const completion: Completion = { kind: 'promise', resolve, reject };
    const method = kindMethod(describeKind);
    const target = settings.target === undefined ? undefined : client.kindTarget(settings.target, describeKind);
    if (target === undefined) {
      const why =
        settings.target === undefined
          ? 'This proxy has no server: call useServer(serverId) first'
          : "getRemoteMethods() needs the native protocol: QAM's format has no introspection";
      client.fail(method, completion, new QAMInvalidCallException(why));
      return;
    }
    client.call({
      method,
      params: [],
      timeoutMs: settings.timeoutMs,
      signal: settings.signal,
      completion,
      retries: settings.retries,
      target,
      onStarted: undefined,
      headers: settings.headers,
    });
  });
}

/**
 * The headers of `withHeaders`: an object of strings, whose names are not under the library's
 * reserved prefix `x-qam-` (any case) and fit an AMQP field name.
 */
function checkHeaders(headers: unknown): Record<string, string> {
  if (typeof headers !== 'object' || headers === null || Array.isArray(headers)) {
    throw new TypeError('withHeaders expects an object of header names and string values');
  }
  const checked: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (name.toLowerCase().startsWith(reservedHeaderPrefix)) {
      throw new TypeError(`Header '${name}' is under the prefix '${reservedHeaderPrefix}', which qam reserves for its own headers`);
    }
    if (name === '' || Buffer.byteLength(name) > 128) throw new TypeError(`Header name '${name}' must have 1 to 128 bytes`);
    if (typeof value !== 'string') throw new TypeError(`Header '${name}' must be a string, got ${typeof value}`);
    checked[name] = value;
  }
  return checked;
}

/** The constructor of {@link QAMProxy}: `new QAMProxy<Api>(options)`. */
export interface QAMProxyConstructor {
  new <Api = UntypedApi, S extends SerializerName = 'json'>(options: QAMProxyOptions & { serializer?: S }): QAMProxyType<Api, 'promise', S>;
}

const proxyRules: Rules<QAMProxyOptions> = {
  ...connectionUserRules,
  serverId: anyString,
  server_id: anyString,
  client_id: anyString,
  serializer: oneOf('json', 'superjson'),
  timeout: seconds,
  maxMessageBytes: positiveInteger,
  errors: arrayOf(
    rule('an Error class', (value) => typeof value === 'function'),
    'an array of Error classes',
  ),
  protocol: oneOf('native', 'qam'),
  clientId: anyString,
  replies: oneOf('direct', 'callme'),
  userId: boolean,
};

/** QAM's names of proxy options and the names they stand for. */
const proxyAliases: Readonly<Record<string, string>> = { ...callmeConnectionAliases, server_id: 'serverId', client_id: 'clientId' };

class ProxyFactory {
  constructor(given: QAMProxyOptions) {
    checkOptions('QAMProxy', given, proxyRules);
    const options = resolveAliases('QAMProxy', given, proxyAliases);
    const serverId = options.serverId === undefined ? undefined : checkId('serverId', options.serverId);
    const connection = connectionFor('QAMProxy', options);
    const client = createTransport({
      serverId,
      connection,
      ownsConnection: options.connection === undefined,
      serializer: serializerNamed(options.serializer ?? 'json'),
      maxBytes: options.maxMessageBytes ?? 16 * 1024 * 1024,
      errorClasses: new Map((options.errors ?? []).map((errorClass) => [errorClass.name, errorClass])),
      logger: options.logger ?? connection.logger,
      protocol: options.protocol,
      replies: options.replies,
      clientId: options.clientId,
      userId: options.userId ?? true,
    });
    const settings: CallSettings = {
      timeoutMs: toTimeoutMs(options.timeout ?? 30),
      retries: 0,
      signal: undefined,
      callbacks: undefined,
      oneWay: false,
      headers: undefined,
      target: serverId === undefined ? undefined : client.target(serverId, false),
      startNotice: false,
      onStarted: undefined,
    };
    return remoteProxy(
      client,
      settings,
      [],
      serverId === undefined ? 'QAMProxy(no server)' : `QAMProxy(server ${serverId})`,
    ) as ProxyFactory;
  }
}

/**
 * Calls a QAMServer's functions as if they were local: `await proxy.add(2, 3)`,
 * `await proxy.my_instance.adder_function(2, 4)`. Typed with the server's API, calls are checked
 * at compile time.
 *
 * @example
 * const proxy = new QAMProxy<typeof api>({ serverId: 'calc', timeout: 10 });
 * const sum = await proxy.add(2, 3);
 * await proxy.close();
 */
export const QAMProxy = ProxyFactory as unknown as QAMProxyConstructor;
export type QAMProxy<Api = UntypedApi, Mode extends CallMode = 'promise', S extends SerializerName = 'json', Expected = any> = QAMProxyType<
  Api,
  Mode,
  S,
  Expected
>;
