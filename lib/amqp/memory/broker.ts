/**
 * The embedded in-process broker: RabbitMQ's semantics (as 3.10 has them) for what qam uses, with
 * no network. Brokers are named and live as long as the process: `memoryBroker('x')` and the URL
 * `memory://x` reach the same one. Each starts as RabbitMQ does: a vhost `/` and a user
 * `guest`/`guest` with every permission on it.
 *
 * Beside the port, a broker has the hooks tests need: users, vhosts and permissions
 * (`rabbitmqctl`), listings, cutting connections (a network failure) and blocking them (a memory
 * alarm).
 *
 * Fidelity. Checks run in RabbitMQ's order with its reply codes and texts (they were compared with
 * RabbitMQ 3.10.8 on the wire). Where the two differ:
 * - Prefetch is per channel, as the port says (RabbitMQ's `basic.qos` with `global`); RabbitMQ's
 *   `global: false` limits each consumer started after it, which is the same with one consumer
 *   per channel.
 * - Queue arguments other than `x-expires` and `x-message-ttl` (dead-lettering, `x-max-length`,
 *   priorities, queue types, single active consumer, …) are kept and compared on redeclaration,
 *   but have no effect; so is an exchange's `alternate-exchange`. Headers exchanges route every
 *   message (the port binds without arguments, and `x-match: all` over none matches all).
 * - Nothing is persisted: `durable` is recorded and compared only.
 * - A malformed direct reply-to address (two dot-separated parts, the first not a channel
 *   reference) closes the publisher's connection with 541 INTERNAL_ERROR, as RabbitMQ 3.10 does;
 *   other malformed or unknown addresses are dropped, as there. A mandatory reply is both
 *   delivered and returned (312), as in RabbitMQ 3.10.
 * - Message TTLs have millisecond resolution (`Date.now()`), RabbitMQ's microsecond.
 * - Deliveries run on the real event loop (`setImmediate` of `node:timers`), so fake timers do not
 *   stop them; message TTLs and `x-expires` use the global `Date` and `setTimeout`, so fake timers
 *   drive them.
 * - Not there because the port does not use them: `basic.get`, purge, unbind, exchange-to-exchange
 *   bindings, transactions, topic permissions, user tags, heartbeats.
 */
import { PortError, type AmqpConnection } from '../port.js';
import { BrokerCore } from './core.js';
import { MemoryConnection, type ConnectionInfo } from './connection.js';
import { amqpError } from './errors.js';
import type { Permissions } from './users.js';
import type { Vhost } from './vhost.js';

export type { ConnectionInfo } from './connection.js';
export type { Permissions } from './users.js';

/** Who connects, and where. */
export interface MemoryConnectOptions {
  /** @default 'guest' */
  username?: string;
  /** @default 'guest' */
  password?: string;
  /** @default '/' */
  vhost?: string;
  /** Shown in {@link MemoryBroker.connections}. */
  connectionName?: string;
}

/** A queue as `rabbitmqctl list_queues` shows it. */
export interface QueueInfo {
  readonly name: string;
  /** Messages ready for delivery (`messages_ready`). */
  readonly ready: number;
  /** Delivered and not yet acknowledged (`messages_unacknowledged`). */
  readonly unacked: number;
  readonly consumers: number;
  readonly durable: boolean;
  readonly exclusive: boolean;
  readonly autoDelete: boolean;
  readonly arguments: Readonly<Record<string, unknown>>;
}

/** An exchange as `rabbitmqctl list_exchanges` shows it (the default exchange's name is `''`). */
export interface ExchangeInfo {
  readonly name: string;
  readonly type: string;
  readonly durable: boolean;
  readonly autoDelete: boolean;
  readonly internal: boolean;
}

/** A binding of a queue to an exchange. */
export interface BindingInfo {
  readonly exchange: string;
  readonly queue: string;
  readonly routingKey: string;
}

/** Codes of {@link MemoryBrokerError}. */
export type MemoryBrokerErrorCode = 'NO_SUCH_VHOST' | 'VHOST_EXISTS' | 'NO_SUCH_USER' | 'USER_EXISTS' | 'BAD_PERMISSIONS';

/** A hook of the broker was misused (an unknown user, a vhost that exists already, …). */
export class MemoryBrokerError extends Error {
  override name = 'MemoryBrokerError';
  readonly code: MemoryBrokerErrorCode;

  constructor(code: MemoryBrokerErrorCode, message: string, options?: { cause: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** RabbitMQ's default user and its rights on the default vhost. */
const everything: Permissions = { configure: '.*', write: '.*', read: '.*' };

const brokers = new Map<string, MemoryBroker>();

export class MemoryBroker {
  readonly name: string;
  #core: BrokerCore;
  readonly #connections = new Set<MemoryConnection>();
  #blocked: string | undefined;
  #closed = false;

  private constructor(name: string) {
    this.name = name;
    this.#core = MemoryBroker.#fresh(name);
  }

  /** The broker of this name, made when first asked for. */
  static named(name: string): MemoryBroker {
    let broker = brokers.get(name);
    if (broker === undefined) brokers.set(name, (broker = new MemoryBroker(name)));
    return broker;
  }

  static #fresh(name: string): BrokerCore {
    const core = new BrokerCore(name);
    core.addVhost('/');
    core.users.add('guest', 'guest');
    core.users.grant('guest', '/', everything);
    return core;
  }

  /** True while {@link setBlocked} blocks connections. */
  get blocked(): boolean {
    return this.#blocked !== undefined;
  }

  /**
   * Opens a connection, as the port does for a `memory://` URL. Fails as RabbitMQ does: a wrong
   * user or password with `'access-refused'` (403), a vhost that does not exist with
   * `'unknown-vhost'` (530), one the user has no permissions on with `'access-refused'` (530).
   */
  connect(options: MemoryConnectOptions = {}): Promise<AmqpConnection> {
    if (this.#closed)
      return Promise.reject(new PortError('connect-failed', `The embedded broker '${this.name}' was closed`, { reason: 'refused' }));
    const username = options.username ?? 'guest';
    const vhostName = options.vhost ?? '/';
    const core = this.#core;
    if (!core.users.authenticate(username, options.password ?? 'guest')) {
      return Promise.reject(amqpError(403, 'Login was refused using authentication mechanism PLAIN. For details see the broker logfile.'));
    }
    const vhost = core.vhosts.get(vhostName);
    if (vhost === undefined)
      return Promise.reject(
        new PortError(
          'connect-failed',
          `Embedded broker '${this.name}' has no such vhost: 530 NOT_ALLOWED - vhost ${vhostName} not found`,
          { replyCode: 530, reason: 'unknown-vhost' },
        ),
      );
    if (!core.users.canEnter(username, vhostName)) {
      return Promise.reject(amqpError(530, `access to vhost '${vhostName}' refused for user '${username}'`, 'access-refused'));
    }
    const connection = new MemoryConnection({
      core,
      vhost,
      username,
      name: options.connectionName,
      gone: (gone) => this.#connections.delete(gone),
    });
    this.#connections.add(connection);
    if (this.#blocked !== undefined) connection.setBlocked(true, this.#blocked);
    return Promise.resolve(connection);
  }

  /** Adds a vhost (with RabbitMQ's standard exchanges), as `rabbitmqctl add_vhost`. */
  addVhost(name: string): void {
    if (this.#core.vhosts.has(name)) throw new MemoryBrokerError('VHOST_EXISTS', `The vhost '${name}' exists already`);
    this.#core.addVhost(name);
  }

  /** Deletes a vhost and everything in it; its connections are closed with 320 CONNECTION_FORCED. */
  deleteVhost(name: string): void {
    const vhost = this.#vhost(name);
    this.#force((connection) => connection.vhost === vhost, `vhost '${name}' is down`);
    vhost.destroy();
    this.#core.vhosts.delete(name);
    this.#core.users.revokeVhost(name);
  }

  vhosts(): string[] {
    return [...this.#core.vhosts.keys()];
  }

  /** Adds a user with no permissions, as `rabbitmqctl add_user`. */
  addUser(name: string, password: string): void {
    if (this.#core.users.has(name)) throw new MemoryBrokerError('USER_EXISTS', `The user '${name}' exists already`);
    this.#core.users.add(name, password);
  }

  /** Deletes a user; its connections are closed with 320 CONNECTION_FORCED, as RabbitMQ 3.10 does. */
  deleteUser(name: string): void {
    if (!this.#core.users.delete(name)) throw new MemoryBrokerError('NO_SUCH_USER', `No user '${name}'`);
    this.#force((connection) => connection.username === name, `user '${name}' is deleted`);
  }

  changePassword(name: string, password: string): void {
    this.#user(name);
    this.#core.users.setPassword(name, password);
  }

  users(): string[] {
    return this.#core.users.names();
  }

  /**
   * Sets a user's permissions on a vhost, as `rabbitmqctl set_permissions -p vhost user conf write read`.
   * @example broker.setPermissions('app', '/', { configure: '^app\\.', write: '.*', read: '.*' })
   */
  setPermissions(user: string, vhost: string, permissions: Permissions): void {
    this.#user(user);
    this.#vhost(vhost);
    try {
      this.#core.users.grant(user, vhost, permissions);
    } catch (error) {
      throw new MemoryBrokerError('BAD_PERMISSIONS', `Invalid permission expression for '${user}' on '${vhost}'`, { cause: error });
    }
  }

  clearPermissions(user: string, vhost: string): void {
    this.#user(user);
    this.#vhost(vhost);
    this.#core.users.revoke(user, vhost);
  }

  queues(vhost = '/'): QueueInfo[] {
    return [...this.#vhost(vhost).queues.values()].map((queue) => ({
      name: queue.name,
      ready: queue.ready,
      unacked: queue.unacked,
      consumers: queue.consumers.length,
      durable: queue.durable,
      exclusive: queue.owner !== undefined,
      autoDelete: queue.autoDelete,
      arguments: { ...queue.arguments },
    }));
  }

  exchanges(vhost = '/'): ExchangeInfo[] {
    return [...this.#vhost(vhost).exchanges.values()].map((exchange) => ({
      name: exchange.name,
      type: exchange.type,
      durable: exchange.durable,
      autoDelete: exchange.autoDelete,
      internal: exchange.internal,
    }));
  }

  bindings(vhost = '/'): BindingInfo[] {
    return [...this.#vhost(vhost).exchanges.values()].flatMap((exchange) =>
      exchange.bindings.map((binding) => ({ exchange: exchange.name, queue: binding.queue.name, routingKey: binding.routingKey })),
    );
  }

  connections(): ConnectionInfo[] {
    return [...this.#connections].map((connection) => connection.info);
  }

  /**
   * Cuts connections (all, or those `filter` picks) as a network failure would: each closes with
   * a PortError of kind `'closed'`; what the broker had not delivered yet never arrives, confirms
   * still pending fail, unacknowledged deliveries are requeued, exclusive queues go.
   * @returns how many connections were cut
   * @example broker.cut((connection) => connection.name === 'server')
   */
  cut(filter: (connection: ConnectionInfo) => boolean = () => true): number {
    const cut = [...this.#connections].filter((connection) => filter(connection.info));
    for (const connection of cut) connection.lose();
    return cut.length;
  }

  /**
   * Raises (true) or clears (false) a resource alarm. Every connection is told
   * (`connection.blocked` with `reason`, then `connection.unblocked`); while blocked, the broker
   * stops reading a connection at its first publish: that publish is routed, everything after it waits,
   * `publish()` returns false (as the amqplib adapter's does on a blocked connection),
   * `whenWritable()` waits for the alarm to clear, and `channel.close()` resolves without waiting.
   * Clearing it runs what waited, in order.
   */
  setBlocked(blocked: boolean, reason = 'low on memory'): void {
    this.#blocked = blocked ? reason : undefined;
    for (const connection of [...this.#connections]) connection.setBlocked(blocked, reason);
  }

  /** Back to a fresh broker: connections closed with 320 CONNECTION_FORCED, only vhost `/` and user guest left. */
  reset(): void {
    this.#force(() => true, "broker forced connection closure with reason 'shutdown'");
    for (const vhost of this.#core.vhosts.values()) vhost.destroy();
    this.#core = MemoryBroker.#fresh(this.name);
    this.#blocked = undefined;
  }

  /** Resets the broker and forgets it: the name then reaches a new one; this one refuses connections. */
  close(): void {
    this.reset();
    this.#closed = true;
    if (brokers.get(this.name) === this) brokers.delete(this.name);
  }

  #force(filter: (connection: MemoryConnection) => boolean, text: string): void {
    for (const connection of [...this.#connections]) if (filter(connection)) connection.fail(amqpError(320, text));
  }

  #vhost(name: string): Vhost {
    const vhost = this.#core.vhosts.get(name);
    if (vhost === undefined) throw new MemoryBrokerError('NO_SUCH_VHOST', `No vhost '${name}'`);
    return vhost;
  }

  #user(name: string): void {
    if (!this.#core.users.has(name)) throw new MemoryBrokerError('NO_SUCH_USER', `No user '${name}'`);
  }
}

/** The process-wide embedded broker of this name, made when first asked for. */
export function memoryBroker(name = 'default'): MemoryBroker {
  return MemoryBroker.named(name);
}
