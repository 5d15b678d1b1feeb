/**
 * A connection to the embedded broker: the port's {@link AmqpConnection}. It owns its channels and
 * its exclusive queues, and models the socket where it matters: while the broker blocks it (a
 * resource alarm), the first publish stops the broker reading it: that publish is routed (the
 * broker read it), every method after it (on any of its channels, acks included) waits, in order,
 * until the alarm clears, as RabbitMQ's reader does. A held publish returns false, as the amqplib adapter's does while the
 * broker blocks the connection: the caller waits for `whenWritable()`.
 * @internal
 */
import type { AmqpChannel, AmqpConnection, PortError } from '../port.js';
import { MemoryChannel, type ChannelHost, type Command } from './channel.js';
import type { BrokerCore } from './core.js';
import { closedError, encodeError, lostError } from './errors.js';
import type { Queue } from './queue.js';
import { invoke, type Flushable } from './scheduler.js';
import type { Vhost } from './vhost.js';

/** amqplib opens at most RabbitMQ's `channel_max` (2047) channels on a connection. */
const channelMax = 2047;

type ConnectionEvent =
  | { readonly kind: 'blocked'; readonly blocked: boolean; readonly reason: string | undefined }
  | { readonly kind: 'reject'; readonly reject: (error: PortError) => void; readonly error: PortError }
  | { readonly kind: 'close'; readonly error: PortError | undefined };

/** A connection as the broker's listings show it. */
export interface ConnectionInfo {
  /** Unique in its broker. */
  readonly id: number;
  /** The `connectionName` it was opened with. */
  readonly name: string | undefined;
  readonly user: string;
  readonly vhost: string;
  /** Open channels. */
  readonly channels: number;
  /** True while the broker blocks it. */
  readonly blocked: boolean;
}

export interface ConnectionSettings {
  readonly core: BrokerCore;
  readonly vhost: Vhost;
  readonly username: string;
  readonly name: string | undefined;
  /** Told once the connection is gone, so the broker forgets it. */
  readonly gone: (connection: MemoryConnection) => void;
}

export class MemoryConnection implements AmqpConnection, ChannelHost, Flushable {
  readonly id: number;
  readonly core: BrokerCore;
  readonly vhost: Vhost;
  readonly username: string;
  readonly name: string | undefined;
  readonly #gone: (connection: MemoryConnection) => void;
  #state: 'open' | 'closing' | 'closed' = 'open';
  #lost = false;
  #error: PortError | undefined;
  #blocked = false;
  /** The broker stopped reading the connection: methods wait in `#held`. */
  #stopped = false;
  #held: Command[] = [];
  readonly #channels = new Set<MemoryChannel>();
  readonly #exclusive = new Set<Queue>();
  #events: ConnectionEvent[] = [];
  #queued = false;
  readonly #blockedHandlers: Array<(blocked: boolean, reason: string | undefined) => void> = [];
  readonly #closeHandlers: Array<(error: PortError | undefined) => void> = [];
  #closeWaiters: Array<() => void> = [];

  constructor(settings: ConnectionSettings) {
    this.core = settings.core;
    this.vhost = settings.vhost;
    this.username = settings.username;
    this.name = settings.name;
    this.#gone = settings.gone;
    this.id = settings.core.nextId();
  }

  get blocked(): boolean {
    return this.#blocked;
  }

  get reading(): boolean {
    return !this.#stopped;
  }

  get publishing(): boolean {
    return !this.#stopped && !this.#blocked;
  }

  get info(): ConnectionInfo {
    return {
      id: this.id,
      name: this.name,
      user: this.username,
      vhost: this.vhost.name,
      channels: this.#channels.size,
      blocked: this.#blocked,
    };
  }

  openChannel(options: { confirms: boolean }): Promise<AmqpChannel> {
    if (this.#state !== 'open') return Promise.reject(closedError('Connection', this.#error));
    return new Promise<AmqpChannel>((resolve, reject) => {
      this.submit({
        run: () => {
          if (this.#state !== 'open') {
            this.#rejectLater(reject, closedError('Connection', this.#error));
          } else if (this.#channels.size >= channelMax) {
            reject(encodeError(`No channels left to allocate (channel_max ${channelMax})`));
          } else {
            const channel = new MemoryChannel(this, options.confirms);
            this.#channels.add(channel);
            resolve(channel);
          }
        },
        abandon: () => this.#rejectLater(reject, closedError('Connection')),
      });
    });
  }

  onBlocked(handler: (blocked: boolean, reason: string | undefined) => void): void {
    this.#blockedHandlers.push(handler);
  }

  onClose(handler: (error: PortError | undefined) => void): void {
    this.#closeHandlers.push(handler);
  }

  /** Nothing to do: an in-process connection has no socket, and never keeps the process alive. */
  keepAlive(): void {}

  /** Closes at once, even while blocked: what the broker had not read yet is dropped, as a socket closed under it would be. */
  close(): Promise<void> {
    if (this.#state === 'closed') return Promise.resolve();
    const closed = new Promise<void>((resolve) => this.#closeWaiters.push(resolve));
    if (this.#state === 'open') this.#shutdown(undefined, false);
    return closed;
  }

  submit(command: Command): void {
    if (this.#stopped) this.#held.push(command);
    else command.run();
  }

  hold(command: Command): void {
    this.#stopped = true;
    this.#held.push(command);
  }

  stopReading(): void {
    this.#stopped = true;
  }

  fail(error: PortError): void {
    if (this.#state === 'open') this.#shutdown(error, false);
  }

  own(queue: Queue): void {
    for (const owned of this.#exclusive) if (owned.deleted) this.#exclusive.delete(owned);
    this.#exclusive.add(queue);
  }

  released(channel: MemoryChannel): void {
    this.#channels.delete(channel);
  }

  /** The network under the connection failed: nothing in flight arrives, the client sees a closed connection. @internal */
  lose(): void {
    if (this.#state === 'open') this.#shutdown(lostError(), true);
  }

  /** The broker blocks the connection (`connection.blocked`) or lets it go (`connection.unblocked`). @internal */
  setBlocked(blocked: boolean, reason: string): void {
    if (this.#state !== 'open' || blocked === this.#blocked) return;
    this.#blocked = blocked;
    this.#push({ kind: 'blocked', blocked, reason: blocked ? reason : undefined });
    if (blocked) return;
    this.#stopped = false;
    const held = this.#held;
    this.#held = [];
    for (const command of held) command.run();
    for (const channel of this.#channels) channel.drained();
  }

  flush(): void {
    this.#queued = false;
    const events = this.#events;
    this.#events = [];
    for (const event of events) {
      switch (event.kind) {
        case 'blocked':
          if (!this.#lost) for (const handler of this.#blockedHandlers) invoke(handler, event.blocked, event.reason);
          break;
        case 'reject':
          event.reject(event.error);
          break;
        case 'close': {
          this.#state = 'closed';
          for (const handler of this.#closeHandlers) invoke(handler, event.error);
          const waiters = this.#closeWaiters;
          this.#closeWaiters = [];
          for (const resolve of waiters) resolve();
          break;
        }
      }
    }
  }

  /**
   * The broker's side of a closing connection, at once: channels close (their unacknowledged
   * deliveries requeued), exclusive queues go, held methods are dropped. The client hears of it in
   * the next pass: each channel's close, then the connection's.
   */
  #shutdown(error: PortError | undefined, lost: boolean): void {
    this.#state = 'closing';
    this.#error = error;
    this.#lost = lost;
    const held = this.#held;
    this.#held = [];
    this.#stopped = false;
    this.#blocked = false;
    for (const channel of [...this.#channels]) channel.connectionClosed(lost);
    this.#channels.clear();
    for (const queue of this.#exclusive) this.vhost.remove(queue);
    this.#exclusive.clear();
    this.#gone(this);
    this.#push({ kind: 'close', error });
    for (const command of held) command.abandon();
  }

  #rejectLater(reject: (error: PortError) => void, error: PortError): void {
    if (this.#state === 'closed') reject(error);
    else this.#push({ kind: 'reject', reject, error });
  }

  #push(event: ConnectionEvent): void {
    this.#events.push(event);
    if (this.#queued) return;
    this.#queued = true;
    this.core.scheduler.flush(this);
  }
}
