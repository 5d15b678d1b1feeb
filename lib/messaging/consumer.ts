import type { QAMConnection } from '../amqp/connection.js';
import type { AmqpChannel, Delivery } from '../amqp/port.js';
import { describeError } from '../errors.js';
import type { Logger } from '../logger.js';
import { backoffDelayMs } from '../util/backoff.js';
import { SingleFlight } from '../util/single-flight.js';

/** What a {@link QueueConsumer} needs of its owner (a processor, an event subscription). */
export interface ConsumerSettings {
  /** Names the owner in log lines: `processor p1`. */
  readonly owner: string;
  readonly connection: QAMConnection;
  readonly logger: Logger;
  readonly prefetch: number;
  /** Declares the exchanges, queues and bindings (again after a reconnect). */
  readonly declare: (channel: AmqpChannel) => Promise<void>;
  /** The queues to consume. */
  readonly queues: () => readonly string[];
  readonly receive: (channel: AmqpChannel, delivery: Delivery) => void;
}

/** The backoff of a consumer that could not consume, in seconds. */
const restartBackoff = { min: 1, max: 30 };

/**
 * Consumes a few queues on one channel with a prefetch, declaring their topology first; starts
 * again after a reconnect, a channel error or a cancelled consumer (with the library's backoff).
 * @internal
 */
export class QueueConsumer {
  readonly #settings: ConsumerSettings;
  readonly #starting = new SingleFlight<void>();
  #channel: AmqpChannel | undefined;
  readonly #consumed = new Map<string, string>();
  #running = false;
  #restartTimer: NodeJS.Timeout | undefined;
  #attempts = 0;
  #detach: (() => void) | undefined;

  constructor(settings: ConsumerSettings) {
    this.#settings = settings;
  }

  /** Declares and consumes every queue not consumed yet; concurrent calls share one run. */
  async start(): Promise<void> {
    const first = !this.#running;
    if (first) {
      this.#running = true;
      this.#settings.connection.retain();
      this.#detach = this.#settings.connection.attach({
        onConnect: () => this.#restart(),
        onDisconnect: () => this.#forget(),
      });
    }
    try {
      await this.#starting.run(() => this.#open());
    } catch (error) {
      if (first) await this.stop(() => Promise.resolve());
      throw error;
    }
  }

  /** Stops consuming: cancels the consumers, then closes the channel (unacknowledged messages go back to their queues). */
  async stop(drain: () => Promise<void>): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    clearTimeout(this.#restartTimer);
    this.#detach?.();
    await this.#starting.current?.catch(() => undefined);
    const channel = this.#channel;
    await Promise.all([...this.#consumed.values()].map((tag) => channel?.cancel(tag).catch(() => undefined)));
    await drain();
    this.#consumed.clear();
    this.#channel = undefined;
    await channel?.close();
    this.#settings.connection.release();
  }

  async #open(): Promise<void> {
    const { connection, prefetch, declare, queues, receive } = this.#settings;
    let channel = this.#channel;
    if (channel === undefined) {
      const opened = await connection.openChannel({ confirms: false });
      opened.onClose((error) => this.#closed(opened, error));
      await opened.prefetch(prefetch);
      this.#channel = channel = opened;
    }
    await declare(channel);
    for (const queue of queues()) {
      if (this.#consumed.has(queue)) continue;
      const consuming = channel;
      const tag = await consuming.consume(
        queue,
        (delivery) => receive(consuming, delivery),
        { noAck: false },
        () => this.#cancelled(consuming, queue),
      );
      this.#consumed.set(queue, tag);
      this.#settings.logger.info(`${this.#settings.owner} consumes ${queue}`);
    }
    this.#attempts = 0;
  }

  #restart(): void {
    if (!this.#running) return;
    this.#starting
      .run(() => this.#open())
      .catch((error: unknown) => {
        this.#settings.logger.error(`${this.#settings.owner} could not consume: ${describeError(error)}`);
        this.#scheduleRestart();
      });
  }

  #forget(): void {
    this.#channel = undefined;
    this.#consumed.clear();
  }

  #scheduleRestart(): void {
    if (!this.#running || this.#restartTimer !== undefined) return;
    this.#restartTimer = setTimeout(
      () => {
        this.#restartTimer = undefined;
        if (this.#settings.connection.connected) this.#restart();
      },
      backoffDelayMs(++this.#attempts, restartBackoff),
    );
  }

  #closed(channel: AmqpChannel, error: Error | undefined): void {
    if (this.#channel !== channel) return;
    this.#forget();
    if (error !== undefined) this.#settings.logger.error(`${this.#settings.owner}: its channel closed: ${describeError(error)}`);
    if (this.#running && this.#settings.connection.connected) this.#scheduleRestart();
  }

  #cancelled(channel: AmqpChannel, queue: string): void {
    if (this.#channel !== channel) return;
    this.#settings.logger.error(
      `${this.#settings.owner}: the broker cancelled the consumer of ${queue} (queue deleted?); declaring it again shortly`,
    );
    this.#consumed.delete(queue);
    this.#scheduleRestart();
  }
}
