import type { QAMConnection } from '../amqp/connection.js';
import type { AmqpChannel, Delivery } from '../amqp/port.js';
import { describeError } from '../errors.js';
import type { Logger } from '../logger.js';
import { readCancel } from '../protocols/native/notices.js';
import { SingleFlight } from '../util/single-flight.js';

/** What a {@link CancelListener} needs of its server. */
export interface CancelListenerSettings {
  readonly serverId: string;
  /** The queue of this server instance's cancels (`server_<id>_cancel_<hex>`). */
  readonly queue: string;
  /** The server's native exchange, which the queue is bound to under its own name. */
  readonly exchange: string;
  readonly connection: QAMConnection;
  readonly logger: Logger;
  /** True while the server serves: the listener starts again after a reconnect only then. */
  readonly serving: () => boolean;
  /** A caller cancels the call `id`; `userId` is the cancel's verified AMQP `user_id`, if any. */
  readonly cancel: (id: string, userId: string | undefined) => void;
}

/**
 * The per-instance address of a server's cancels: a queue of its own (exclusive, auto-delete),
 * bound to the server's exchange under its name, so a proxy reaches it as it reaches the server,
 * through the default exchange (direct reply-to) or the server's exchange (callme's names). A
 * started notice names the queue while the listener consumes it. Best effort: a listener that
 * cannot start is logged and the calls keep their deadline.
 * @internal
 */
export class CancelListener {
  readonly #settings: CancelListenerSettings;
  readonly #starting = new SingleFlight<void>();
  #channel: AmqpChannel | undefined;
  #closed = false;

  constructor(settings: CancelListenerSettings) {
    this.#settings = settings;
  }

  /** The queue started notices name, while the listener consumes it. */
  get address(): string | undefined {
    return this.#channel === undefined ? undefined : this.#settings.queue;
  }

  /** Consumes the cancel queue, declaring it; a failure is logged, never thrown. */
  start(): Promise<void> {
    return this.#starting
      .run(() => this.#open())
      .catch((error: unknown) => {
        this.#settings.logger.warn(
          `server ${this.#settings.serverId} takes no cancels (calls still end at their deadline): ${describeError(error)}`,
        );
      });
  }

  /** Starts again after a reconnect. */
  restart(): void {
    if (this.#settings.serving() && !this.#closed) void this.start();
  }

  /** Forgets the channel (the connection it was on is gone). */
  forget(): void {
    this.#channel = undefined;
  }

  /** Closes the channel: the queue, auto-delete, goes with its consumer. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#starting.current?.catch(() => undefined);
    const channel = this.#channel;
    this.#channel = undefined;
    await channel?.close();
  }

  async #open(): Promise<void> {
    if (this.#channel !== undefined || this.#closed) return;
    const { connection, queue, exchange } = this.#settings;
    const channel = await connection.openChannel({ confirms: false });
    try {
      // Declared as the native protocol declares it: the listener may start first, after a reconnect.
      await channel.declareExchange(exchange, 'direct', { durable: true, autoDelete: false });
      await channel.declareQueue(queue, { durable: false, exclusive: true, autoDelete: true });
      await channel.bindQueue(queue, exchange, queue);
      await channel.consume(
        queue,
        (message) => this.#receive(message),
        { noAck: true },
        () => this.#lost(channel),
      );
    } catch (error) {
      await channel.close();
      throw error;
    }
    channel.onClose(() => this.#lost(channel));
    if (this.#closed) await channel.close();
    else this.#channel = channel;
  }

  #lost(channel: AmqpChannel): void {
    if (this.#channel === channel) this.#channel = undefined;
  }

  #receive(message: Delivery): void {
    const id = readCancel(message.properties);
    if (id === undefined) return;
    const { userId } = message.properties;
    this.#settings.cancel(id, typeof userId === 'string' ? userId : undefined);
  }
}
