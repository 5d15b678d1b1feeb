import { EventEmitter } from 'node:events';
import {
  QAMConnectionException,
  QAMClosedException,
  QAMAccessRefusedException,
  QAMConnectFailedException,
  QAMTlsException,
  describeError,
  type QAMException,
} from '../errors.js';
import { processFingerprint, type Fingerprint, type FingerprintOptions } from '../fingerprint.js';
import { RawMessaging, type RawCallOptions, type RawPublishOptions, type RawReply } from '../messaging/raw.js';
import { connectionHeaders } from '../protocols/native/wire.js';
import { consoleLogger, type Logger } from '../logger.js';
import {
  anyString,
  arrayOf,
  boolean,
  checkOptions,
  integerBetween,
  nested,
  nonEmptyString,
  rule,
  seconds,
  type Rules,
} from '../options.js';
import { backoffDelayMs, type BackoffBounds } from '../util/backoff.js';
import { SingleFlight } from '../util/single-flight.js';
import { amqplibPort } from './amqplib.js';
import { memoryPort } from './memory/index.js';
import { PortError, failureKind, type AmqpChannel, type AmqpConnection, type AmqpPort, type ConnectTarget } from './port.js';

/** TLS material for `amqps://` connections (QAM's and callme's `ssl`). */
export interface TlsOptions {
  /** Certificate authorities to trust (PEM). */
  ca?: string | Buffer | Array<string | Buffer>;
  /** Client certificate (PEM), for brokers that verify peers. */
  cert?: string | Buffer;
  /** Client private key (PEM). */
  key?: string | Buffer;
  /** Passphrase of the key. */
  passphrase?: string;
  /** Name to verify the broker's certificate against (SNI). @default the hostname */
  servername?: string;
  /** Refuse brokers whose certificate does not verify. @default true */
  rejectUnauthorized?: boolean;
}

/**
 * How to reach the broker. Precedence: `url`; else the discrete fields when any is given
 * (QAM's `hostname`, `port`, `username`, `password`, `vhost`, `ssl`); else the `QAM_URL`
 * environment variable (one URL, or several separated by commas); else
 * `amqp://guest:guest@localhost:5672/`. An unknown option, a value of the wrong type, or a `url` or
 * `QAM_URL` that is not an `amqp://` or `amqps://` URL is a TypeError that names it, thrown by the
 * constructor. A broker that cannot be reached fails the first `serve()` or call with
 * {@link QAMConnectFailedException}.
 */
export interface ConnectionOptions {
  /**
   * One broker URL, or the URLs of several nodes of one cluster, each with its own credentials.
   * The connection tries them in the order given, and after a loss the next ones round from the
   * node it lost, until one answers (see "Several brokers" in the README).
   * @example 'amqp://user:pass@host:5672/vhost' or 'amqps://…'
   * @example ['amqp://app:pw@rabbit-1', 'amqp://app:pw@rabbit-2', 'amqp://app:pw@rabbit-3']
   */
  url?: string | readonly string[];
  /** @default 'localhost' */
  hostname?: string;
  /** @default 5672, or 5671 with `ssl` */
  port?: number;
  /** @default 'guest' */
  username?: string;
  /** @default 'guest' */
  password?: string;
  /** @default '/' */
  vhost?: string;
  /**
   * `true` for TLS with the system's CAs, or TLS material. With `url`, the URL must be `amqps://`
   * (an `amqp://` URL with `ssl` is refused rather than connecting in plain text).
   * @default false
   * @example { ca: readFileSync('ca.pem'), cert: readFileSync('client.pem'), key: readFileSync('client.key'), servername: 'broker.example.com' }
   */
  ssl?: boolean | TlsOptions;
  /** Heartbeat interval in seconds; 0 disables. @default 10 */
  heartbeat?: number;
  /** Seconds to wait for the TCP/TLS connection and AMQP handshake. @default 10 */
  connectTimeout?: number;
  /** Shown in the broker's management UI and `rabbitmqctl list_connections client_properties`. */
  connectionName?: string;
  /** Reconnect backoff bounds in seconds: the delay doubles from `min` up to `max`, with jitter. @default { min: 0.1, max: 10 } */
  reconnectDelay?: { min: number; max: number };
  logger?: Logger;
  /**
   * The name and type in the fingerprint every native request, reply and message on this
   * connection carries (the header `x-qam-fingerprint`); pid, host, OS user and vhost come from the
   * process and the connection. @default { name: the main script's file name, type: null }
   */
  fingerprint?: FingerprintOptions;
}

/** The events a {@link QAMConnection} emits. */
export interface QAMConnectionEvents {
  /** Connected (first time and after each reconnect), to the broker `label` names (its URL without the password). */
  connect: [label: string];
  /** The connection was lost; qam reconnects unless it was closed. */
  disconnect: [error: Error];
  /** A reconnect attempt failed (to the broker the error's message names); another follows after `delayMs`. */
  'reconnect-failed': [error: Error, attempt: number, delayMs: number];
  /** The broker stopped reading what this connection publishes (a resource alarm such as low memory); calls wait, within their timeouts. */
  blocked: [reason: string];
  /** The broker reads this connection's publishes again. */
  unblocked: [];
}

/** @internal Something that opens channels on the connection and must redo so after a reconnect. */
export interface ConnectionUser {
  onConnect(): void;
  onDisconnect(error: Error): void;
}

const pem = (value: unknown): boolean => typeof value === 'string' || Buffer.isBuffer(value);

const tlsRules: Rules<TlsOptions> = {
  ca: rule('PEM text, a Buffer, or an array of them', (value) => pem(value) || (Array.isArray(value) && value.every(pem))),
  cert: rule('PEM text or a Buffer', pem),
  key: rule('PEM text or a Buffer', pem),
  passphrase: anyString,
  servername: nonEmptyString,
  rejectUnauthorized: boolean,
};
const tlsOptions = nested(tlsRules);

const reconnectDelayRules: Rules<{ min: number; max: number }> = { min: seconds, max: seconds };

const loggerMethods = ['debug', 'info', 'warn', 'error'] as const;

/** @internal The rules of {@link ConnectionOptions}. */
export const connectionRules: Rules<ConnectionOptions> = {
  url: (value, at) => {
    if (!Array.isArray(value)) return nonEmptyString(value, at);
    if (value.length === 0) throw new TypeError(`Option '${at.path}' of ${at.owner} must name at least one URL, got an empty array`);
    arrayOf(nonEmptyString, 'an array of URLs')(value, at);
  },
  hostname: nonEmptyString,
  port: integerBetween(1, 65535),
  username: anyString,
  password: anyString,
  vhost: anyString,
  ssl: (value, at) => {
    if (typeof value !== 'boolean') tlsOptions(value, at);
  },
  heartbeat: integerBetween(0, 65535),
  connectTimeout: seconds,
  connectionName: anyString,
  fingerprint: nested<FingerprintOptions>({ name: anyString, type: anyString }),
  reconnectDelay: (value, at) => {
    checkOptions(at.owner, value, reconnectDelayRules, at.path);
    if (value.min === undefined || value.max === undefined || value.min > value.max) {
      throw new TypeError(`Option '${at.path}' of ${at.owner} must give both min and max, min at most max`);
    }
  },
  logger: rule(
    'an object with debug, info, warn and error methods',
    (value) =>
      typeof value === 'object' &&
      value !== null &&
      loggerMethods.every((method) => typeof (value as Record<string, unknown>)[method] === 'function'),
  ),
};

const connectionKeys = Object.keys(connectionRules) as Array<keyof ConnectionOptions>;

/** Shows a URL that may not parse without its password. */
function maskPassword(url: string): string {
  return url.replace(/^([^:/?#]+:\/\/[^:@/]*:).*@/, '$1***@');
}

/**
 * Resolves the options into what a port connects with: the brokers' URLs (from `url`, the discrete
 * fields, `QAM_URL` or the default), each with a label without the password, and the socket
 * settings. `memory://` URLs name an embedded broker. @internal
 */
export function resolveConnection(options: ConnectionOptions, logger: Logger): [ConnectTarget, ...ConnectTarget[]] {
  const base = {
    heartbeatSeconds: options.heartbeat ?? 10,
    connectTimeoutMs: (options.connectTimeout ?? 10) * 1000,
    connectionName: options.connectionName,
    tls: typeof options.ssl === 'object' ? { ...options.ssl } : undefined,
    logger,
  };
  const discrete = ['hostname', 'port', 'username', 'password', 'vhost'].some(
    (key) => options[key as keyof ConnectionOptions] !== undefined,
  );
  const environment = options.url === undefined ? discreteEnvironment() : {};
  const environmentFields = Object.keys(environment);
  if (environmentFields.length > 0 && nonEmpty(process.env['QAM_URL']) !== undefined) {
    throw new TypeError(
      `The environment sets both QAM_URL and ${environmentFields.map((field) => envNames[field]).join(', ')}: set one or the other`,
    );
  }
  const fromEnvironment = options.url === undefined && !discrete && environmentFields.length === 0 ? process.env['QAM_URL'] : undefined;
  if (options.url !== undefined || fromEnvironment !== undefined) {
    const source = options.url === undefined ? 'The QAM_URL environment variable' : "The option 'url'";
    const urls = options.url ?? (fromEnvironment as string).split(',').map((url) => url.trim());
    const list = typeof urls === 'string' ? [urls] : urls;
    return list.map((url, index) =>
      fromUrl(url, list.length === 1 ? source : `${source} (URL ${index + 1} of ${list.length})`, options, base),
    ) as [ConnectTarget, ...ConnectTarget[]];
  }
  const tls = options.ssl !== undefined && options.ssl !== false;
  const protocol = tls ? 'amqps' : 'amqp';
  const hostname = options.hostname ?? environment.hostname ?? 'localhost';
  const port = options.port ?? environment.port ?? (tls ? 5671 : 5672);
  const username = options.username ?? environment.username ?? 'guest';
  const password = options.password ?? environment.password ?? 'guest';
  const vhost = encodeURIComponent(options.vhost ?? environment.vhost ?? '/');
  const host = hostname.includes(':') ? `[${hostname}]` : hostname;
  return [
    {
      ...base,
      url: `${protocol}://${encodeURIComponent(username)}:${encodeURIComponent(password)}@${host}:${port}/${vhost}`,
      label: `${protocol}://${username}@${host}:${port}/${vhost}`,
      username,
    },
  ];
}

/** The environment variable of each discrete connection field. */
const envNames: Readonly<Record<string, string>> = {
  hostname: 'QAM_HOST',
  port: 'QAM_PORT',
  username: 'QAM_USER',
  password: 'QAM_PASSWORD',
  vhost: 'QAM_VHOST',
};

/** A variable's value, or undefined when it is unset or empty (an empty variable counts as unset). */
function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

/**
 * The connection fields the environment sets: QAM_HOST, QAM_PORT, QAM_USER, QAM_PASSWORD and
 * QAM_VHOST. A QAM_PORT that is not a port number is a TypeError naming it.
 */
function discreteEnvironment(): { hostname?: string; port?: number; username?: string; password?: string; vhost?: string } {
  const fields: { hostname?: string; port?: number; username?: string; password?: string; vhost?: string } = {};
  const hostname = nonEmpty(process.env['QAM_HOST']);
  if (hostname !== undefined) fields.hostname = hostname;
  const port = nonEmpty(process.env['QAM_PORT']);
  if (port !== undefined) {
    const number = /^\d{1,5}$/.test(port) ? Number(port) : NaN;
    if (!(number >= 1 && number <= 65535)) {
      throw new TypeError(
        `The QAM_PORT environment variable must be a port number from 1 to 65535, got ${JSON.stringify(port.slice(0, 40))}`,
      );
    }
    fields.port = number;
  }
  const username = nonEmpty(process.env['QAM_USER']);
  if (username !== undefined) fields.username = username;
  const password = nonEmpty(process.env['QAM_PASSWORD']);
  if (password !== undefined) fields.password = password;
  const vhost = nonEmpty(process.env['QAM_VHOST']);
  if (vhost !== undefined) fields.vhost = vhost;
  return fields;
}

/** The target of one broker URL; `source` says where the URL came from, for the error. */
function fromUrl(
  url: string,
  source: string,
  options: ConnectionOptions,
  base: Omit<ConnectTarget, 'url' | 'label' | 'username'>,
): ConnectTarget {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new TypeError(`${source} is not a broker URL such as amqp://user:password@host:5672/vhost: ${JSON.stringify(maskPassword(url))}`);
  }
  if (
    parsed.protocol !== 'amqp:' &&
    parsed.protocol !== 'amqps:' &&
    parsed.protocol !== 'memory:' &&
    !registeredPorts.has(parsed.protocol)
  ) {
    throw new TypeError(`${source} must start with amqp://, amqps:// or memory://, got ${parsed.protocol}//`);
  }
  if (parsed.protocol !== 'amqps:' && options.ssl !== undefined && options.ssl !== false) {
    throw new TypeError(
      `The ssl option is set but ${source.replace(/^The/, 'the')} starts with ${parsed.protocol}//: use amqps:// for TLS`,
    );
  }
  const username = parsed.username === '' ? 'guest' : decodeURIComponent(parsed.username);
  if (parsed.password !== '') parsed.password = '***';
  return { ...base, url, label: parsed.toString(), username };
}

/** Ports for URL schemes other than `amqp:`, `amqps:` and `memory:` (see {@link registerPort}). */
const registeredPorts = new Map<string, AmqpPort>();

/**
 * Makes connections to URLs of `scheme` (such as `'fake:'`) go through `port`: how tests put a
 * scripted fake of the port under a real server or proxy.
 * @internal
 */
export function registerPort(scheme: string, port: AmqpPort): void {
  registeredPorts.set(scheme, port);
}

/** The port that reaches the broker a URL names. */
function portFor(url: string): AmqpPort {
  const scheme = new URL(url).protocol;
  return registeredPorts.get(scheme) ?? (scheme === 'memory:' ? memoryPort : amqplibPort);
}

/** A port failure as the exception a user sees. */
function connectError(error: unknown, label: string): QAMException {
  if (!(error instanceof PortError))
    return new QAMConnectFailedException(`Cannot connect to the broker at ${label}: ${describeError(error)}`, 'handshake', error);
  switch (error.kind) {
    case 'access-refused':
      return new QAMAccessRefusedException(error.message, error.cause);
    case 'tls':
      return new QAMTlsException(error.message, error.cause);
    default:
      return new QAMConnectFailedException(error.message, error.reason ?? 'handshake', error.cause);
  }
}

/**
 * One AMQP connection, shared by any number of servers and proxies, each on channels of its own.
 * It reconnects with jittered exponential backoff after a loss, and tells its users so they
 * redeclare their topology and restart their consumers before publishing again. The first
 * connection is not retried: a wrong URL or password fails at once.
 *
 * @example
 * const connection = new QAMConnection({ url: process.env.QAM_URL });
 * connection.on('disconnect', (error) => console.warn('lost broker', error.message));
 * const server = new QAMServer({ serverId: 'calc', connection });
 */
export class QAMConnection extends EventEmitter<QAMConnectionEvents> {
  readonly logger: Logger;
  /** What this connection's messages say of their sender (see {@link ConnectionOptions.fingerprint}). */
  readonly fingerprint: Fingerprint;
  /** @internal The fingerprint's JSON text, encoded once. */
  readonly fingerprintJson: string;
  /** The brokers, in the order given; at least one. */
  readonly #targets: readonly [ConnectTarget, ...ConnectTarget[]];
  /** The index in #targets of the broker connected to, or of the next one to try. */
  #at = 0;
  readonly #delay: BackoffBounds;
  readonly #options: ConnectionOptions;
  readonly #users = new Set<ConnectionUser>();
  readonly #connecting = new SingleFlight<AmqpConnection>();
  #link: AmqpConnection | undefined;
  #everConnected = false;
  #closed = false;
  #wakeBackoff: (() => void) | undefined;
  #backoffTimer: NodeJS.Timeout | undefined;
  /** Users that need the process kept alive now: servers serving, proxies with calls pending. */
  #holds = 0;
  #raw: RawMessaging | undefined;

  constructor(options: ConnectionOptions = {}) {
    super();
    checkOptions('QAMConnection', options, connectionRules);
    this.logger = options.logger ?? consoleLogger;
    this.#targets = resolveConnection(options, this.logger);
    this.fingerprint = processFingerprint(options.fingerprint ?? {}, vhostOf(this.#targets[0].url));
    this.fingerprintJson = JSON.stringify(this.fingerprint);
    this.#delay = options.reconnectDelay ?? { min: 0.1, max: 10 };
    this.#options = options;
  }

  /** @internal A new connection to the same broker with the same settings (not yet connected). */
  sibling(): QAMConnection {
    return new QAMConnection({ ...this.#options, logger: this.logger });
  }

  /**
   * The AMQP user this connection is logged in as: that of the URL it is connected to (else of the
   * next one it will try; the first URL's before it first connects). Requests carry it as their
   * `user_id`, which RabbitMQ checks against the login; callme's reply names take it when a proxy is made.
   */
  get username(): string {
    return this.#link?.username ?? (this.#targets[this.#at] ?? this.#targets[0]).username;
  }

  /** The address of the broker connected to (else of the next one to try), with the password masked. */
  get label(): string {
    return (this.#targets[this.#at] ?? this.#targets[0]).label;
  }

  /** The addresses of all the brokers this connection may use, in the order given, with the passwords masked. */
  get labels(): string[] {
    return this.#targets.map((target) => target.label);
  }

  /** True while an AMQP connection is open. */
  get connected(): boolean {
    return this.#link !== undefined;
  }

  /** True once {@link close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** True while the broker blocks publishing on this connection (a resource alarm such as low memory). */
  get blocked(): boolean {
    return this.#link?.blocked ?? false;
  }

  /** @internal Opens a channel, connecting (once, shared) first if needed. */
  async openChannel(options: { confirms: boolean }): Promise<AmqpChannel> {
    const link = await this.#open();
    try {
      return await link.openChannel(options);
    } catch (error) {
      // The socket died before the connection said so: its channels close first. Once it has
      // closed, the next open waits for the reconnect.
      if (failureKind(error) !== 'closed') throw error;
      await new Promise((resolve) => setImmediate(resolve));
      return (await this.#open()).openChannel(options);
    }
  }

  /** @internal The open port connection, connecting (once, shared) if needed. */
  link(): Promise<AmqpConnection> {
    return this.#open();
  }

  /**
   * @internal Keeps the Node process alive until the matching {@link release}: a serving server,
   * a proxy with calls pending. With no holds, the connection's socket, heartbeats and reconnect
   * backoff are unref'ed, so a program that forgot `close()` still exits when it has nothing
   * left to do.
   */
  retain(): void {
    if (this.#holds++ === 0) this.#keepAlive(true);
  }

  /** @internal Ends a {@link retain}. */
  release(): void {
    if (this.#holds > 0 && --this.#holds === 0) this.#keepAlive(false);
  }

  #keepAlive(alive: boolean): void {
    this.#link?.keepAlive(alive);
    if (alive) this.#backoffTimer?.ref();
    else this.#backoffTimer?.unref();
  }

  /** @internal Registers a user told of every (re)connect and loss; returns the unregister function. */
  attach(user: ConnectionUser): () => void {
    this.#users.add(user);
    return () => this.#users.delete(user);
  }

  /**
   * Publishes a raw message (Buffer or string body, any AMQP properties) to any exchange and
   * routing key; resolves once the broker confirmed it. Rejects with QAMNoRouteException when no
   * queue took a `mandatory` message (the default), QAMPublishException when the broker refused it.
   * Header names starting with `x-qam-` are reserved (TypeError).
   */
  publish(exchange: string, routingKey: string, body: Buffer | string, options?: RawPublishOptions): Promise<void> {
    return this.#rawMessaging().publish(exchange, routingKey, body, options);
  }

  /**
   * Calls any RPC service: publishes a raw request and resolves with the reply's body, properties
   * and fields. Replies come through direct reply-to, or through `replyQueue`, a queue the caller
   * declared and bound, matched by correlation id. Rejects with QAMTimeoutException (`timeout`,
   * default 30 s), QAMAbortException (`signal`), QAMNoRouteException (nothing took the request).
   */
  rpc(exchange: string, routingKey: string, body: Buffer | string, options?: RawCallOptions): Promise<RawReply> {
    return this.#rawMessaging().call(exchange, routingKey, body, options);
  }

  /** @internal Raw publishing and RPC on this connection (the typed producer, processor and events publish through it). */
  get messaging(): RawMessaging {
    return this.#rawMessaging();
  }

  #rawMessaging(): RawMessaging {
    this.#raw ??= new RawMessaging(this, connectionHeaders(this.fingerprintJson));
    return this.#raw;
  }

  /** Closes the connection and stops reconnecting. Channels of its users close with it. Returns promptly even while the broker blocks the connection. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#wakeBackoff?.();
    this.#raw?.close();
    const link = this.#link ?? (await this.#connecting.current?.catch(() => undefined));
    this.#link = undefined;
    await link?.close();
  }

  #open(): Promise<AmqpConnection> {
    if (this.#closed) return Promise.reject(new QAMClosedException(`Connection to ${this.label} is closed`));
    if (this.#link !== undefined) return Promise.resolve(this.#link);
    return this.#connecting.run(() => this.#connect());
  }

  /**
   * Connects to the brokers in turn from the current one until one answers. The first connection
   * tries each once and fails with the first broker's error; reconnects go round without end,
   * waiting the backoff after each round in which none answered.
   */
  async #connect(): Promise<AmqpConnection> {
    const count = this.#targets.length;
    let firstFailure: QAMException | undefined;
    for (let attempt = 1; ; attempt++) {
      const target = this.#targets[this.#at] ?? this.#targets[0];
      let outcome: AmqpConnection | QAMException;
      try {
        outcome = await portFor(target.url).connect(target);
      } catch (error) {
        outcome = connectError(error, target.label);
      }
      const failure = outcome instanceof Error ? outcome : undefined;
      if (this.#closed) {
        if (failure === undefined) await (outcome as AmqpConnection).close();
        throw new QAMClosedException(`Connection to ${target.label} is closed`);
      }
      if (failure === undefined) {
        this.#adopt(outcome as AmqpConnection);
        return outcome as AmqpConnection;
      }
      firstFailure ??= failure;
      this.#at = (this.#at + 1) % count;
      const roundEnds = attempt % count === 0;
      if (!this.#everConnected) {
        if (roundEnds) throw firstFailure;
        this.logger.warn(`cannot connect to ${target.label}, trying ${this.label}: ${failure.message}`);
        continue;
      }
      const delayMs = roundEnds ? backoffDelayMs(attempt / count, this.#delay) : 0;
      const next = count === 1 ? `next in ${delayMs} ms` : `next ${this.label} in ${delayMs} ms`;
      this.logger.warn(`reconnect attempt ${attempt} to ${target.label} failed, ${next}: ${failure.message}`);
      this.emit('reconnect-failed', failure, attempt, delayMs);
      if (delayMs > 0) await this.#sleep(delayMs);
    }
  }

  #adopt(link: AmqpConnection): void {
    this.#link = link;
    if (this.#holds === 0) link.keepAlive(false);
    this.#everConnected = true;
    link.onClose((error) => this.#lost(link, error));
    link.onBlocked((blocked, reason) => {
      if (blocked) this.logger.warn(`the broker at ${this.label} blocks publishing${reason === undefined ? '' : `: ${reason}`}`);
      else this.logger.info(`the broker at ${this.label} no longer blocks publishing`);
      if (blocked) this.emit('blocked', reason ?? '');
      else this.emit('unblocked');
    });
    this.logger.info(`connected to ${this.label}`);
    this.emit('connect', this.label);
    for (const user of this.#users) user.onConnect();
  }

  #lost(link: AmqpConnection, error: PortError | undefined): void {
    if (this.#link !== link) return;
    this.#link = undefined;
    const reason = new QAMConnectionException(
      `Connection to ${this.label} was lost${error === undefined ? '' : `: ${error.message}`}`,
      error,
    );
    // Its node may have gone: the reconnect starts with the next one.
    this.#at = (this.#at + 1) % this.#targets.length;
    if (!this.#closed) this.logger.warn(reason.message);
    this.emit('disconnect', reason);
    for (const user of this.#users) user.onDisconnect(reason);
    if (!this.#closed) {
      this.#open().catch((failure: unknown) => this.logger.error(`giving up reconnecting: ${describeError(failure)}`));
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.#wakeBackoff = undefined;
        this.#backoffTimer = undefined;
        resolve();
      };
      const timer = setTimeout(wake, ms);
      if (this.#holds === 0) timer.unref();
      this.#backoffTimer = timer;
      this.#wakeBackoff = wake;
    });
  }
}

/** callme's names of the connection options, accepted by servers and proxies. */
export interface CallmeConnectionOptions {
  /** callme's name of `hostname`. */
  amqp_host?: string;
  /** callme's name of `port`. */
  amqp_port?: number;
  /** callme's name of `username`. */
  amqp_user?: string;
  /** callme's name of `password`. */
  amqp_password?: string;
  /** callme's name of `vhost`. */
  amqp_vhost?: string;
}

/** @internal callme's connection option names and the names they stand for. */
export const callmeConnectionAliases: Readonly<Record<keyof CallmeConnectionOptions, keyof ConnectionOptions>> = {
  amqp_host: 'hostname',
  amqp_port: 'port',
  amqp_user: 'username',
  amqp_password: 'password',
  amqp_vhost: 'vhost',
};

/** @internal The rules of the options of every server and proxy: connection options or a shared connection. */
export const connectionUserRules: Rules<ConnectionOptions & CallmeConnectionOptions & { connection?: QAMConnection }> = {
  ...connectionRules,
  amqp_host: connectionRules.hostname,
  amqp_port: connectionRules.port,
  amqp_user: connectionRules.username,
  amqp_password: connectionRules.password,
  amqp_vhost: connectionRules.vhost,
  connection: rule('a QAMConnection', (value) => value instanceof QAMConnection),
};

/**
 * The connection of a server or proxy: the shared one it was given, or a new one made from its
 * connection options. Beside a shared connection those options would be ignored, so they are
 * refused; only `logger` applies, to the server or proxy alone.
 * @internal
 */
export function connectionFor(owner: string, options: ConnectionOptions & { connection?: QAMConnection }): QAMConnection {
  const given = connectionKeys.filter((key) => options[key] !== undefined);
  if (options.connection === undefined) return new QAMConnection(Object.fromEntries(given.map((key) => [key, options[key]])));
  const ignored = given.find((key) => key !== 'logger');
  if (ignored !== undefined)
    throw new TypeError(`Option '${ignored}' of ${owner} has no effect beside 'connection': set it on the QAMConnection`);
  return options.connection;
}

/** The virtual host a broker URL names: `/` when it names none. */
function vhostOf(url: string): string {
  try {
    const path = new URL(url).pathname;
    return path === '' || path === '/' ? '/' : decodeURIComponent(path.slice(1));
  } catch {
    return '/';
  }
}
