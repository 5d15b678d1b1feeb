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
import { consoleLogger, type Logger } from '../logger.js';
import { anyString, boolean, checkOptions, integerBetween, nested, nonEmptyString, rule, seconds, type Rules } from '../options.js';
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
 * environment variable; else `amqp://guest:guest@localhost:5672/`. An unknown option, a value of
 * the wrong type, or a `url` or `QAM_URL` that is not an `amqp://` or `amqps://` URL is a TypeError
 * that names it, thrown by the constructor. A broker that cannot be reached fails the first
 * `serve()` or call with {@link QAMConnectFailedException}.
 */
export interface ConnectionOptions {
  /** @example 'amqp://user:pass@host:5672/vhost' or 'amqps://…' */
  url?: string;
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
}

/** The events a {@link QAMConnection} emits. */
export interface QAMConnectionEvents {
  /** Connected (first time and after each reconnect). */
  connect: [];
  /** The connection was lost; qam reconnects unless it was closed. */
  disconnect: [error: Error];
  /** A reconnect attempt failed; another follows after `delayMs`. */
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
  url: nonEmptyString,
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
 * Resolves the options into what a port connects with: one URL (from `url`, the discrete fields,
 * `QAM_URL` or the default), a label without the password, and the socket settings. `memory://`
 * URLs name an embedded broker. @internal
 */
export function resolveConnection(options: ConnectionOptions, logger: Logger): ConnectTarget {
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
  const fromEnvironment = options.url === undefined && !discrete ? process.env['QAM_URL'] : undefined;
  const url = options.url ?? fromEnvironment;
  if (url !== undefined) {
    const source = options.url === undefined ? 'The QAM_URL environment variable' : "The option 'url'";
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new TypeError(
        `${source} is not a broker URL such as amqp://user:password@host:5672/vhost: ${JSON.stringify(maskPassword(url))}`,
      );
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
  const tls = options.ssl !== undefined && options.ssl !== false;
  const protocol = tls ? 'amqps' : 'amqp';
  const hostname = options.hostname ?? 'localhost';
  const port = options.port ?? (tls ? 5671 : 5672);
  const username = options.username ?? 'guest';
  const vhost = encodeURIComponent(options.vhost ?? '/');
  const host = hostname.includes(':') ? `[${hostname}]` : hostname;
  return {
    ...base,
    url: `${protocol}://${encodeURIComponent(username)}:${encodeURIComponent(options.password ?? 'guest')}@${host}:${port}/${vhost}`,
    label: `${protocol}://${username}@${host}:${port}/${vhost}`,
    username,
  };
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
  /** The broker address with the password masked. */
  readonly label: string;
  /** The AMQP user this connection logs in as (callme's reply names include it). */
  readonly username: string;
  readonly logger: Logger;
  readonly #target: ConnectTarget;
  readonly #port: AmqpPort;
  readonly #delay: BackoffBounds;
  readonly #options: ConnectionOptions;
  readonly #users = new Set<ConnectionUser>();
  readonly #connecting = new SingleFlight<AmqpConnection>();
  #link: AmqpConnection | undefined;
  #everConnected = false;
  #closed = false;
  #wakeBackoff: (() => void) | undefined;

  constructor(options: ConnectionOptions = {}) {
    super();
    checkOptions('QAMConnection', options, connectionRules);
    this.logger = options.logger ?? consoleLogger;
    this.#target = resolveConnection(options, this.logger);
    this.#port = portFor(this.#target.url);
    this.label = this.#target.label;
    this.username = this.#target.username;
    this.#delay = options.reconnectDelay ?? { min: 0.1, max: 10 };
    this.#options = options;
  }

  /** @internal A new connection to the same broker with the same settings (not yet connected). */
  sibling(): QAMConnection {
    return new QAMConnection({ ...this.#options, logger: this.logger });
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

  /** @internal Registers a user told of every (re)connect and loss; returns the unregister function. */
  attach(user: ConnectionUser): () => void {
    this.#users.add(user);
    return () => this.#users.delete(user);
  }

  /** Closes the connection and stops reconnecting. Channels of its users close with it. Returns promptly even while the broker blocks the connection. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#wakeBackoff?.();
    const link = this.#link ?? (await this.#connecting.current?.catch(() => undefined));
    this.#link = undefined;
    await link?.close();
  }

  #open(): Promise<AmqpConnection> {
    if (this.#closed) return Promise.reject(new QAMClosedException(`Connection to ${this.label} is closed`));
    if (this.#link !== undefined) return Promise.resolve(this.#link);
    return this.#connecting.run(() => this.#connect());
  }

  async #connect(): Promise<AmqpConnection> {
    for (let attempt = 1; ; attempt++) {
      let link: AmqpConnection | undefined;
      let failure: QAMException | undefined;
      try {
        link = await this.#port.connect(this.#target);
      } catch (error) {
        failure = connectError(error, this.label);
      }
      if (this.#closed) {
        await link?.close();
        throw new QAMClosedException(`Connection to ${this.label} is closed`);
      }
      if (link !== undefined) {
        this.#adopt(link);
        return link;
      }
      if (!this.#everConnected || failure === undefined) throw failure;
      const delayMs = backoffDelayMs(attempt, this.#delay);
      this.logger.warn(`reconnect attempt ${attempt} to ${this.label} failed, next in ${delayMs} ms: ${failure.message}`);
      this.emit('reconnect-failed', failure, attempt, delayMs);
      await this.#sleep(delayMs);
    }
  }

  #adopt(link: AmqpConnection): void {
    this.#link = link;
    this.#everConnected = true;
    link.onClose((error) => this.#lost(link, error));
    link.onBlocked((blocked, reason) => {
      if (blocked) this.logger.warn(`the broker at ${this.label} blocks publishing${reason === undefined ? '' : `: ${reason}`}`);
      else this.logger.info(`the broker at ${this.label} no longer blocks publishing`);
      if (blocked) this.emit('blocked', reason ?? '');
      else this.emit('unblocked');
    });
    this.logger.info(`connected to ${this.label}`);
    this.emit('connect');
    for (const user of this.#users) user.onConnect();
  }

  #lost(link: AmqpConnection, error: PortError | undefined): void {
    if (this.#link !== link) return;
    this.#link = undefined;
    const reason = new QAMConnectionException(
      `Connection to ${this.label} was lost${error === undefined ? '' : `: ${error.message}`}`,
      error,
    );
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
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.#wakeBackoff = wake;
    });
  }
}

/** @internal The rules of the options of every server and proxy: connection options or a shared connection. */
export const connectionUserRules: Rules<ConnectionOptions & { connection?: QAMConnection }> = {
  ...connectionRules,
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
