import type { QAMConnection } from '../amqp/connection.js';
import { failureKind, type AmqpChannel } from '../amqp/port.js';
import { QAMClosedException, describeError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { ServerProtocol } from '../protocols/native/server.js';

/** What a {@link TopologyWatch} needs of its server. */
export interface TopologyWatchSettings {
  readonly serverId: string;
  readonly connection: QAMConnection;
  readonly logger: Logger;
  readonly protocols: readonly ServerProtocol[];
  /** True while the server serves; checks stop and a channel opened late is closed otherwise. */
  readonly serving: () => boolean;
  /** True while the server (re)starts consuming, which declares everything anyway: no check then. */
  readonly starting: () => boolean;
}

/** How often a server checks that its exchanges still exist. */
const topologyCheckMs = 5_000;
/** The longest wait between checks, after failures. */
const maxTopologyCheckMs = 300_000;

/**
 * Nothing tells a server that its exchange was deleted (by an operator, a script, a policy): its
 * queue and consumer stay, but every request is unroutable and proxies get NO_ROUTE. So every
 * {@link topologyCheckMs} it asks the broker, passively, whether its exchanges are there, and
 * declares them again (with the binding) when one is gone. One cheap request per exchange per
 * interval; after a failure the interval doubles, up to a few minutes. It also deletes the
 * server's queues and exchanges when asked to.
 * @internal
 */
export class TopologyWatch {
  readonly #settings: TopologyWatchSettings;
  #timer: NodeJS.Timeout | undefined;
  #check: Promise<void> | undefined;
  #channel: Promise<AmqpChannel> | undefined;
  #failures = 0;

  constructor(settings: TopologyWatchSettings) {
    this.#settings = settings;
  }

  /** Starts checking, the first time one interval from now. */
  start(): void {
    this.#schedule(topologyCheckMs);
  }

  /** Schedules no further check. */
  stop(): void {
    clearTimeout(this.#timer);
  }

  /** Forgets its channel (the connection it was on is gone). */
  forget(): void {
    this.#channel = undefined;
  }

  /** Closes its channel; when the broker is not `reachable`, forgets it without waiting for it to open. */
  async close(reachable: boolean): Promise<void> {
    const channel = reachable ? await this.#channel?.catch(() => undefined) : undefined;
    this.#channel = undefined;
    await channel?.close();
  }

  /** Deletes each protocol's queue and exchange, logging what it could not delete. */
  async remove(): Promise<void> {
    const { serverId, connection, logger, protocols } = this.#settings;
    // A check under way may be declaring an exchange again: it must not do so after the delete.
    await this.#check;
    for (const protocol of protocols) {
      try {
        const channel = await connection.openChannel({ confirms: false });
        await protocol.remove(channel);
        await channel.close();
      } catch (error) {
        logger.warn(`server ${serverId} could not delete its ${protocol.name} queue and exchange: ${describeError(error)}`);
      }
    }
  }

  #schedule(delayMs: number): void {
    if (!this.#settings.serving()) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#check = this.#run().finally(() => {
        this.#check = undefined;
      });
    }, delayMs);
    this.#timer.unref();
  }

  async #run(): Promise<void> {
    const { serverId, connection, logger, serving, starting } = this.#settings;
    let delayMs = topologyCheckMs;
    if (connection.connected && !starting()) {
      try {
        await this.#redeclareMissingExchanges();
        this.#failures = 0;
      } catch (error) {
        if (!serving()) return;
        delayMs = Math.min(maxTopologyCheckMs, topologyCheckMs * 2 ** ++this.#failures);
        logger.error(
          `server ${serverId} could not check or declare its exchanges, trying again in ${Math.round(delayMs / 1000)} s: ${describeError(error)}`,
        );
      }
    }
    this.#schedule(delayMs);
  }

  async #redeclareMissingExchanges(): Promise<void> {
    for (const protocol of this.#settings.protocols) {
      for (const exchange of protocol.exchanges) {
        try {
          await (await this.#openChannel()).checkExchange(exchange);
        } catch (error) {
          if (failureKind(error) !== 'not-found' || !this.#settings.serving()) throw error;
          this.#settings.logger.warn(`server ${this.#settings.serverId}: its exchange ${exchange} is gone (deleted?); declaring it again`);
          // The 404 closed the channel the check ran on.
          this.#channel = undefined;
          await protocol.declare(await this.#openChannel());
          break;
        }
      }
    }
  }

  /** The channel checks run on; a failed check closes it, and the next one opens another. */
  #openChannel(): Promise<AmqpChannel> {
    if (this.#channel === undefined) {
      const forget = (): void => {
        if (this.#channel === opening) this.#channel = undefined;
      };
      const opening: Promise<AmqpChannel> = this.#settings.connection.openChannel({ confirms: false }).then(async (channel) => {
        channel.onClose(forget);
        if (!this.#settings.serving()) {
          await channel.close();
          throw new QAMClosedException(`Server ${this.#settings.serverId} is closed`);
        }
        return channel;
      });
      opening.catch(forget);
      this.#channel = opening;
    }
    return this.#channel;
  }
}
