import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';
import * as amqp from 'amqplib';
import type { ChannelModel, Options, SocketOptions } from 'amqplib';
import {
  QAMConnectionException,
  QAMClosedException,
  QAMAccessRefusedException,
  QAMConnectFailedException,
  QAMTlsException,
  describeError,
  type ConnectFailedReason,
  type QAMException,
} from '../errors.js';
import { consoleLogger, type Logger } from '../logger.js';
import { anyString, boolean, checkOptions, integerBetween, nested, nonEmptyString, rule, seconds, type Rules } from '../options.js';

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
    (value) => typeof value === 'object' && value !== null && loggerMethods.every((method) => typeof (value as Record<string, unknown>)[method] === 'function'),
  ),
};

const connectionKeys = Object.keys(connectionRules) as Array<keyof ConnectionOptions>;

/** Shows a URL that may not parse without its password. */
function maskPassword(url: string): string {
  return url.replace(/^([^:/?#]+:\/\/[^:@/]*:).*@/, '$1***@');
}

/** Resolves the options into an amqplib URL and socket options. @internal */
export function resolveConnection(options: ConnectionOptions): { url: string | Options.Connect; socket: SocketOptions; label: string; username: string } {
  const socket: SocketOptions = { noDelay: true, timeout: (options.connectTimeout ?? 10) * 1000 };
  if (options.connectionName !== undefined) socket.clientProperties = { connection_name: options.connectionName };
  if (typeof options.ssl === 'object') Object.assign(socket, options.ssl);
  const heartbeat = options.heartbeat ?? 10;
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
      throw new TypeError(`${source} is not a broker URL such as amqp://user:password@host:5672/vhost: ${JSON.stringify(maskPassword(url))}`);
    }
    if (parsed.protocol !== 'amqp:' && parsed.protocol !== 'amqps:') {
      throw new TypeError(`${source} must start with amqp:// or amqps://, got ${parsed.protocol}//`);
    }
    if (parsed.protocol === 'amqp:' && options.ssl !== undefined && options.ssl !== false) {
      throw new TypeError(`The ssl option is set but ${source.replace(/^The/, 'the')} starts with amqp://: use amqps:// for TLS`);
    }
    const username = parsed.username === '' ? 'guest' : decodeURIComponent(parsed.username);
    if (parsed.password !== '') parsed.password = '***';
    return { url: withHeartbeat(url, heartbeat), socket, label: parsed.toString(), username };
  }
  const tls = options.ssl !== undefined && options.ssl !== false;
  const connect: Options.Connect = {
    protocol: tls ? 'amqps' : 'amqp',
    hostname: options.hostname ?? 'localhost',
    port: options.port ?? (tls ? 5671 : 5672),
    username: options.username ?? 'guest',
    password: options.password ?? 'guest',
    vhost: options.vhost ?? '/',
    heartbeat,
  };
  const label = `${connect.protocol}://${connect.username}@${connect.hostname}:${connect.port}/${encodeURIComponent(connect.vhost ?? '/')}`;
  return { url: connect, socket, label, username: connect.username ?? 'guest' };
}

function withHeartbeat(url: string, heartbeat: number): string {
  if (/[?&]heartbeat=/.test(url)) return url;
  return `${url}${url.includes('?') ? '&' : '?'}heartbeat=${heartbeat}`;
}

/** The reply code and text of the connection.close the broker ended a handshake with. */
interface BrokerClose {
  replyCode: number;
  replyText: string;
}

const handshakeCaptureBytes = 64 * 1024;

/**
 * Connects through amqplib, keeping the broker's reason when it refuses the handshake. amqplib
 * reports a broker that answers connection.open by closing the connection (RabbitMQ's
 * `530 NOT_ALLOWED - vhost x not found`) only as "Expected ConnectionOpenOk; got <ConnectionClose
 * channel:0>", without the reply code and text, so what amqplib reads during the handshake is
 * copied and the close is read back from it. amqplib makes its socket inside `connect`; `net.connect`
 * announces every socket it makes, synchronously, on the `net.client.socket` diagnostics channel.
 * TLS sockets are not announced there: over TLS only what amqplib reports is known. Resolves with
 * the error that explains a failure.
 */
async function openModel(url: string | Options.Connect, socketOptions: SocketOptions, label: string): Promise<ChannelModel | QAMException> {
  let socket: Socket | undefined;
  const announced = (message: unknown): void => {
    socket ??= (message as { socket?: Socket }).socket;
  };
  subscribe('net.client.socket', announced);
  let connecting: Promise<ChannelModel>;
  try {
    connecting = amqp.connect(url, socketOptions);
  } finally {
    unsubscribe('net.client.socket', announced);
  }
  const received = socket === undefined ? undefined : copyReads(socket);
  try {
    const model = await connecting;
    received?.stop();
    return model;
  } catch (error) {
    return explainConnectError(error, received?.close(), label, (socketOptions.timeout ?? 0) / 1000);
  }
}

/** Copies the first bytes read from `socket` until `stop()`. */
function copyReads(socket: Socket): { stop(): void; close(): BrokerClose | undefined } {
  const read = socket.read;
  const chunks: Buffer[] = [];
  let size = 0;
  socket.read = function (this: Socket, ...args: Parameters<Socket['read']>): unknown {
    const chunk: unknown = read.apply(this, args);
    if (Buffer.isBuffer(chunk) && size < handshakeCaptureBytes) {
      chunks.push(chunk);
      size += chunk.length;
    }
    return chunk;
  };
  return {
    stop: () => {
      socket.read = read;
      chunks.length = 0;
    },
    close: () => findClose(Buffer.concat(chunks)),
  };
}

/** The connection.close (class 10, method 50) among the AMQP frames at the start of `bytes`. */
function findClose(bytes: Buffer): BrokerClose | undefined {
  // A frame: type (1 byte), channel (2), payload size (4), payload, frame end (1).
  for (let offset = 0; offset + 7 <= bytes.length; ) {
    const type = bytes.readUInt8(offset);
    const size = bytes.readUInt32BE(offset + 3);
    const payload = offset + 7;
    if (payload + size + 1 > bytes.length) return undefined;
    if (type === 1 && size >= 7 && bytes.readUInt16BE(payload) === 10 && bytes.readUInt16BE(payload + 2) === 50) {
      const textEnd = Math.min(payload + 7 + bytes.readUInt8(payload + 6), payload + size);
      return { replyCode: bytes.readUInt16BE(payload + 4), replyText: bytes.toString('utf8', payload + 7, textEnd) };
    }
    offset = payload + size + 1;
  }
  return undefined;
}

/** amqplib quotes a close in answer to the login: `Handshake terminated by server: 403 (ACCESS-REFUSED) with message "…"`. */
function closeInMessage(text: string): BrokerClose | undefined {
  const match = /terminated by server: (\d+) \([^)]*\) with message "(.*)"/s.exec(text);
  return match === null ? undefined : { replyCode: Number(match[1]), replyText: match[2] ?? '' };
}

/** Node's codes for the network failures that keep a connection from being made. */
const networkReasons: Readonly<Record<string, ConnectFailedReason>> = {
  ECONNREFUSED: 'refused',
  ENOTFOUND: 'unknown-host',
  EAI_AGAIN: 'unknown-host',
  EAI_NONAME: 'unknown-host',
  EAI_FAIL: 'unknown-host',
  EAI_NODATA: 'unknown-host',
  EHOSTUNREACH: 'unreachable',
  ENETUNREACH: 'unreachable',
  EHOSTDOWN: 'unreachable',
  ENETDOWN: 'unreachable',
  ETIMEDOUT: 'timeout',
};

/** The error code of a network failure; Node reports a host with several addresses as an AggregateError. */
function networkCode(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const { code, errors } = error as { code?: unknown; errors?: unknown };
  if (typeof code === 'string') return code;
  return Array.isArray(errors) ? networkCode(errors[0]) : undefined;
}

/** Describes a failure to connect in terms a user can act on. */
function explainConnectError(error: unknown, captured: BrokerClose | undefined, label: string, timeoutSeconds: number): QAMException {
  const text = describeError(error);
  const tls = explainTlsError(error, label, text);
  if (tls !== undefined) return tls;
  const close = captured ?? closeInMessage(text);
  if (close !== undefined) {
    const words = `${close.replyCode} ${close.replyText}`;
    // RabbitMQ refuses a login with 403 ACCESS_REFUSED, and a vhost with 530 NOT_ALLOWED: `vhost x
    // not found`, `access to vhost 'x' refused for user 'u'` (permissions), the same followed by
    // `: connection limit (n) is reached`, or `vhost x is down`.
    if (close.replyCode === 403 || (close.replyCode === 530 && /refused for user '[^']*'$/.test(close.replyText))) {
      return new QAMAccessRefusedException(`Broker at ${label} refused the login or vhost: ${words}`, error);
    }
    if (close.replyCode === 530 && /vhost .* not found/i.test(close.replyText)) {
      return new QAMConnectFailedException(`Broker at ${label} has no such vhost: ${words}`, 'unknown-vhost', error);
    }
    return new QAMConnectFailedException(`Broker at ${label} refused the connection: ${words}`, 'handshake', error);
  }
  // amqplib's own connectTimeout error has a message and no code.
  const reason = error instanceof Error && error.message === 'connect ETIMEDOUT' ? 'timeout' : networkReasons[networkCode(error) ?? ''];
  switch (reason) {
    case 'refused':
      return new QAMConnectFailedException(`Cannot connect to the broker at ${label}: nothing accepts connections there (is the broker running, on this port?): ${text}`, reason, error);
    case 'unknown-host':
      return new QAMConnectFailedException(`Cannot connect to the broker at ${label}: its host name does not resolve: ${text}`, reason, error);
    case 'unreachable':
      return new QAMConnectFailedException(`Cannot connect to the broker at ${label}: its host or network is unreachable: ${text}`, reason, error);
    case 'timeout':
      return new QAMConnectFailedException(`Cannot connect to the broker at ${label}: the connection and AMQP handshake did not complete within connectTimeout (${timeoutSeconds} s): ${text}`, reason, error);
    default:
      if (/ConnectionOpenOk; got <ConnectionClose/.test(text)) {
        return new QAMConnectFailedException(
          `Broker at ${label} refused to open the vhost, for a reason amqplib does not pass on over TLS (does the vhost exist, may the user use it?): ${text}`,
          'handshake',
          error,
        );
      }
      return new QAMConnectFailedException(`Cannot connect to the broker at ${label}: the connection ended before the AMQP handshake completed (is this an AMQP 0-9-1 port?): ${text}`, 'handshake', error);
  }
}

/**
 * Node names a failed certificate check with OpenSSL's verify code (`SELF_SIGNED_CERT_IN_CHAIN`,
 * `UNABLE_TO_VERIFY_LEAF_SIGNATURE`, …) or `ERR_TLS_CERT_ALTNAME_INVALID`, and an alert the broker
 * sent with `ERR_SSL_…_ALERT_…`. A TLS endpoint that rejects the client certificate after the
 * handshake (TLS 1.3 verifies it late) just closes the socket, before the AMQP handshake ends.
 */
function explainTlsError(error: unknown, label: string, text: string): QAMTlsException | undefined {
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  if (typeof code === 'string' && /^ERR_SSL_.*ALERT/.test(code)) {
    return new QAMTlsException(`The broker at ${label} refused the TLS handshake (${code}); check the client certificate and key (ssl.cert, ssl.key): ${text}`, error);
  }
  if (typeof code === 'string' && /CERT|^UNABLE_TO_/.test(code)) {
    return new QAMTlsException(
      `The certificate of the broker at ${label} was not accepted (${code}); pass the CA that signed it as ssl.ca and a servername it is issued for: ${text}`,
      error,
    );
  }
  if (typeof code === 'string' && /^ERR_(SSL|TLS)_/.test(code)) {
    return new QAMTlsException(`The TLS handshake with ${label} failed (${code}); is that port a TLS listener? ${text}`, error);
  }
  if (label.startsWith('amqps:') && /closed abruptly during opening handshake/.test(text)) {
    return new QAMTlsException(
      `The TLS endpoint at ${label} closed the connection during the handshake; it probably refused the client certificate (ssl.cert, ssl.key): ${text}`,
      error,
    );
  }
  return undefined;
}

/** The parts of amqplib's connection object (its `connection` under the ChannelModel) used here. */
interface AmqplibConnection {
  stream?: unknown;
  channels?: Array<{ buffer: { write(frame: Buffer): boolean } } | null>;
  freshChannel?: (channel: unknown, options?: unknown) => number;
}

/**
 * Two changes to how amqplib writes, both keeping every frame in the order it was made:
 *
 * - Direct: amqplib queues each channel's frames in a stream of its own and moves them to the
 *   socket from a `setImmediate` callback (its round-robin muxer), several stream operations per
 *   message. Here each channel writes its frames to the socket as it makes them.
 * - Coalesced: every write is its own system call, and with TCP_NODELAY its own TCP segment.
 *   Corking the socket for the rest of the current tick gathers everything written in it (a
 *   burst of requests, a reply and its ack) into one write.
 *
 * Backpressure is unchanged in effect: frames the socket cannot take yet wait in the socket's
 * buffer instead of the channel's. Where amqplib's internals are not as expected, writes stay as
 * they were.
 */
function streamlineWrites(model: ChannelModel): void {
  const connection = (model as unknown as { connection?: AmqplibConnection }).connection;
  const socket = connection?.stream;
  if (connection === undefined || !(socket instanceof Duplex)) return;
  const { freshChannel } = connection;
  if (Array.isArray(connection.channels) && typeof freshChannel === 'function') {
    connection.freshChannel = function (this: AmqplibConnection, ...args: Parameters<typeof freshChannel>): number {
      const number = freshChannel.apply(this, args);
      const entry = this.channels?.[number];
      if (entry !== null && entry !== undefined) entry.buffer.write = (frame: Buffer): boolean => socket.write(frame);
      return number;
    };
  }
  const write = socket.write;
  let corked = false;
  const uncork = (): void => {
    corked = false;
    socket.uncork();
  };
  socket.write = function (this: Duplex, ...args: Parameters<Duplex['write']>): boolean {
    if (!corked) {
      corked = true;
      socket.cork();
      process.nextTick(uncork);
    }
    return write.apply(this, args);
  } as Duplex['write'];
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
  readonly #url: string | Options.Connect;
  readonly #socket: SocketOptions;
  readonly #delay: { min: number; max: number };
  readonly #options: ConnectionOptions;
  readonly #users = new Set<ConnectionUser>();
  #model: ChannelModel | undefined;
  #connecting: Promise<ChannelModel> | undefined;
  #everConnected = false;
  #closed = false;
  #wakeBackoff: (() => void) | undefined;

  constructor(options: ConnectionOptions = {}) {
    super();
    checkOptions('QAMConnection', options, connectionRules);
    const resolved = resolveConnection(options);
    this.label = resolved.label;
    this.username = resolved.username;
    this.#url = resolved.url;
    this.#socket = resolved.socket;
    this.#delay = options.reconnectDelay ?? { min: 0.1, max: 10 };
    this.logger = options.logger ?? consoleLogger;
    this.#options = options;
  }

  /** @internal A new connection to the same broker with the same settings (not yet connected). */
  sibling(): QAMConnection {
    return new QAMConnection({ ...this.#options, logger: this.logger });
  }

  /** True while an AMQP connection is open. */
  get connected(): boolean {
    return this.#model !== undefined;
  }

  /** True once {@link close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** @internal The open connection, connecting (once, shared) if needed. */
  model(): Promise<ChannelModel> {
    if (this.#closed) return Promise.reject(new QAMClosedException(`Connection to ${this.label} is closed`));
    if (this.#model !== undefined) return Promise.resolve(this.#model);
    this.#connecting ??= this.#connect().finally(() => {
      this.#connecting = undefined;
    });
    return this.#connecting;
  }

  /** @internal Registers a user told of every (re)connect and loss; returns the unregister function. */
  attach(user: ConnectionUser): () => void {
    this.#users.add(user);
    return () => this.#users.delete(user);
  }

  /** Closes the connection and stops reconnecting. Channels of its users close with it. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#wakeBackoff?.();
    const model = this.#model ?? (await this.#connecting?.catch(() => undefined));
    this.#model = undefined;
    if (model !== undefined) await model.close().catch(() => undefined);
  }

  async #connect(): Promise<ChannelModel> {
    for (let attempt = 1; ; attempt++) {
      const opened = await openModel(this.#url, this.#socket, this.label);
      if (this.#closed) {
        if (!(opened instanceof Error)) await opened.close().catch(() => undefined);
        throw new QAMClosedException(`Connection to ${this.label} is closed`);
      }
      if (!(opened instanceof Error)) {
        this.#adopt(opened);
        return opened;
      }
      if (!this.#everConnected) throw opened;
      const delayMs = this.#nextDelay(attempt);
      this.logger.warn(`reconnect attempt ${attempt} to ${this.label} failed, next in ${delayMs} ms: ${opened.message}`);
      this.emit('reconnect-failed', opened, attempt, delayMs);
      await this.#sleep(delayMs);
    }
  }

  #adopt(model: ChannelModel): void {
    this.#model = model;
    this.#everConnected = true;
    streamlineWrites(model);
    model.on('error', (error: Error) => this.logger.warn(`connection to ${this.label}: ${describeError(error)}`));
    model.on('close', (error?: Error) => this.#lost(model, error));
    this.logger.info(`connected to ${this.label}`);
    this.emit('connect');
    for (const user of this.#users) user.onConnect();
  }

  #lost(model: ChannelModel, error: Error | undefined): void {
    if (this.#model !== model) return;
    this.#model = undefined;
    const reason = new QAMConnectionException(
      `Connection to ${this.label} was lost${error === undefined ? '' : `: ${describeError(error)}`}`,
      error,
    );
    if (!this.#closed) this.logger.warn(reason.message);
    this.emit('disconnect', reason);
    for (const user of this.#users) user.onDisconnect(reason);
    if (!this.#closed) {
      this.model().catch((failure: unknown) => this.logger.error(`giving up reconnecting: ${describeError(failure)}`));
    }
  }

  #nextDelay(attempt: number): number {
    const ceiling = Math.min(this.#delay.max, this.#delay.min * 2 ** (attempt - 1)) * 1000;
    return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
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
  if (ignored !== undefined) throw new TypeError(`Option '${ignored}' of ${owner} has no effect beside 'connection': set it on the QAMConnection`);
  return options.connection;
}
