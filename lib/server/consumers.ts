import type { QAMConnection } from '../amqp/connection.js';
import { failureKind, type AmqpChannel, type Delivery } from '../amqp/port.js';
import { QAMException, describeError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { ServerProtocol } from '../protocols/native/server.js';
import { backoffDelayMs } from '../util/backoff.js';
import { SingleFlight } from '../util/single-flight.js';

/** What the {@link Consumers} of a server need of it. */
export interface ConsumerSettings {
  readonly serverId: string;
  readonly connection: QAMConnection;
  readonly logger: Logger;
  readonly protocols: readonly ServerProtocol[];
  /** The prefetch of each consuming channel: the number of the server's workers. */
  readonly prefetch: number;
  /** True while the server serves: consumers are restarted only then. */
  readonly serving: () => boolean;
  /** Takes one delivery of `protocol`'s queue. */
  readonly receive: (protocol: ServerProtocol, channel: AmqpChannel, message: Delivery) => void;
}

/** The backoff of a server that could not consume, in seconds. */
const restartBackoff = { min: 1, max: 30 };

/**
 * The consumer lifecycle of a server: one channel per protocol that declares its queue and
 * exchange and consumes with the workers' prefetch; started again (with the library's backoff)
 * after a reconnect, a channel error or a consumer the broker cancelled.
 * @internal
 */
export class Consumers {
  readonly #settings: ConsumerSettings;
  readonly #consumers = new Map<ServerProtocol, { channel: AmqpChannel; tag: string }>();
  readonly #starting = new SingleFlight<void>();
  #restartTimer: NodeJS.Timeout | undefined;
  #restartAttempts = 0;
  /** The consumers {@link stop} found, which {@link cancel} and {@link close} end. */
  #stopping: Array<{ channel: AmqpChannel; tag: string }> = [];

  constructor(settings: ConsumerSettings) {
    this.#settings = settings;
  }

  /** True while consumers are being started. */
  get starting(): boolean {
    return this.#starting.running;
  }

  /** The start under way, if any. */
  get current(): Promise<void> | undefined {
    return this.#starting.current;
  }

  /** Consumes every protocol's queue that has no consumer yet; concurrent calls share one run. */
  start(): Promise<void> {
    return this.#starting.run(() => this.#open());
  }

  /** Starts again after a reconnect; on failure, retries with backoff. */
  restart(): void {
    if (!this.#settings.serving()) return;
    this.start().catch((error: unknown) => {
      this.#settings.logger.error(`server ${this.#settings.serverId} could not restart consuming: ${describeError(error)}`);
      this.#scheduleRestart();
    });
  }

  /** Forgets the consumers (the connection they were on is gone). */
  forget(): void {
    this.#consumers.clear();
  }

  /** Starts nothing more and waits for a start under way; then {@link cancel} and {@link close} end what it found. */
  async stop(): Promise<void> {
    clearTimeout(this.#restartTimer);
    await this.#starting.current?.catch(() => undefined);
    this.#stopping = [...this.#consumers.values()];
  }

  /** Cancels the consumers; settles once the broker answered each (or failed). */
  async cancel(): Promise<void> {
    await Promise.all(this.#stopping.map(({ channel, tag }) => channel.cancel(tag).catch(() => undefined)));
  }

  /** Closes the consumers' channels. */
  async close(): Promise<void> {
    const stopping = this.#stopping;
    this.#stopping = [];
    this.#consumers.clear();
    await Promise.all(stopping.map(({ channel }) => channel.close()));
  }

  async #open(): Promise<void> {
    const { serverId, connection, logger, protocols, prefetch, receive } = this.#settings;
    for (const protocol of protocols) {
      if (this.#consumers.has(protocol)) continue;
      const channel = await connection.openChannel({ confirms: false });
      channel.onClose((error) => this.#channelClosed(protocol, channel, error));
      await channel.prefetch(prefetch);
      try {
        await protocol.declare(channel);
      } catch (error) {
        throw topologyError(serverId, protocol, error);
      }
      const tag = await channel.consume(
        protocol.queue,
        (message) => receive(protocol, channel, message),
        { noAck: false },
        () => this.#consumerCancelled(protocol, channel),
      );
      this.#consumers.set(protocol, { channel, tag });
      logger.info(`server ${serverId} consumes ${protocol.queue}`);
    }
    this.#restartAttempts = 0;
  }

  /** Retries consuming with the library's backoff (about 1 s, doubling up to 30 s), so a lasting fault is not a busy loop. */
  #scheduleRestart(): void {
    if (!this.#settings.serving() || this.#restartTimer !== undefined) return;
    const delayMs = backoffDelayMs(++this.#restartAttempts, restartBackoff);
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = undefined;
      if (this.#settings.connection.connected) this.restart();
    }, delayMs);
  }

  #channelClosed(protocol: ServerProtocol, channel: AmqpChannel, error: Error | undefined): void {
    const { serverId, connection, logger, serving } = this.#settings;
    if (error !== undefined) logger.error(`server ${serverId} channel error: ${describeError(error)}`);
    if (this.#consumers.get(protocol)?.channel !== channel) return;
    this.#consumers.delete(protocol);
    if (serving() && connection.connected) {
      logger.error(`server ${serverId}: its channel closed; consuming again shortly`);
      this.#scheduleRestart();
    }
  }

  #consumerCancelled(protocol: ServerProtocol, channel: AmqpChannel): void {
    this.#settings.logger.error(
      `server ${this.#settings.serverId}: the broker cancelled the consumer of ${protocol.queue} (queue deleted?); redeclaring it shortly`,
    );
    if (this.#consumers.get(protocol)?.channel === channel) this.#consumers.delete(protocol);
    void channel.close();
    this.#scheduleRestart();
  }
}

/**
 * Declaring a queue or exchange that exists with other flags fails with 406 PRECONDITION_FAILED
 * (and closes the channel); the broker's text names the argument that differs.
 */
function topologyError(serverId: string, protocol: ServerProtocol, error: unknown): Error {
  const kind = failureKind(error);
  if (kind === 'access-refused') return error as Error;
  return new QAMException(
    `Server ${serverId} cannot declare ${protocol.queue} for the ${protocol.name} protocol: ${describeError(error)}`,
    {
      code: kind === 'precondition-failed' ? 'PRECONDITION_FAILED' : 'TOPOLOGY_FAILED',
      cause: error,
    },
  );
}
