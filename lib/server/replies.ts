import type { QAMConnection } from '../amqp/connection.js';
import { PortError, type AmqpChannel, type Delivery } from '../amqp/port.js';
import { describeError } from '../errors.js';
import { quote, type RateLimitedLog } from '../log-guard.js';
import type { Logger } from '../logger.js';
import type { OutgoingReply } from '../protocols/native/server.js';
import { SingleFlight } from '../util/single-flight.js';
import { BoundedSet, requestFingerprint } from './reply-guard.js';

/** @internal */
export interface ReplyPublisherSettings {
  serverId: string;
  connection: QAMConnection;
  logger: Logger;
  /** Where refused requests are logged, rate-limited. */
  refusals: RateLimitedLog;
  /** False once the server began to close: no channel is opened then. */
  serving(): boolean;
}

/** Where a reply goes: its exchange, or its direct reply-to address. */
function targetOf(reply: OutgoingReply): string {
  return reply.exchange === '' ? reply.routingKey : reply.exchange;
}

/** Publishes of one reply, before it is given up (each on a new channel). */
const maxReplyAttempts = 3;

/** AMQP 320: an operator or a broker shutting down closed the connection, not anything it was sent. */
const connectionForced = 320;

/**
 * Publishes a server's replies, never on the channel its requests come in on: a reply the broker
 * refuses closes the channel (or, for a direct reply-to address it cannot decode, RabbitMQ 3.10
 * closes the whole connection with 541), and the consumer must not be the one to go.
 *
 * The first replies to a target (a direct reply-to address, a callme exchange) go out one at a
 * time, on a confirm channel of a connection of their own, each request acknowledged once its
 * reply is confirmed: a broker that refuses a reply closes that channel or connection with the
 * replies on it unconfirmed, delivered or not, so only the reply that caused it may be on it, and
 * the connection that consumes requests must not be the one to go (its unacknowledged requests
 * would be delivered again, and run twice). Once the broker took a reply to a target, later
 * replies to it go out on the server's connection: to a direct address on a plain channel without
 * waiting for a confirm (an address the broker took once it takes again), to an exchange on a
 * confirm channel (the exchange goes when its proxy does). A reply the broker refuses is never
 * published again, and its request is dropped, not run again, should it come back (see
 * {@link isPoisoned}).
 *
 * A direct reply-to address is accepted anew after the server's connection was lost: RabbitMQ 3.10
 * closes the whole connection (541) on a reply to the address of a channel whose node is down (and
 * the servers' connections come back only to be closed again, their requests redelivered, until
 * the requests expire). Once the broker closed a probe's connection on a reply to a direct address,
 * no channel can be behind it: later replies to it are dropped, and requests naming it are not run
 * (see {@link isRefused}).
 *
 * Backpressure: `after` (which acknowledges the request and frees its worker) waits until the
 * reply is confirmed, or, for an unconfirmed reply, until the connection takes writes again, so a
 * server whose replies cannot leave stops taking requests (its prefetch is its worker count).
 * @internal
 */
export class ReplyPublisher {
  readonly #settings: ReplyPublisherSettings;
  readonly #opening = new SingleFlight<AmqpChannel>();
  readonly #probeOpening = new SingleFlight<AmqpChannel>();
  #confirmed: AmqpChannel | undefined;
  /** The confirm channel of first replies, on {@link #probeConnection}. */
  #probe: AmqpChannel | undefined;
  #probeConnection: QAMConnection | undefined;
  /** First replies waiting for the one in flight. */
  readonly #probes: Array<{ delivery: Delivery; reply: OutgoingReply; after: () => void }> = [];
  #probing = false;
  #direct: AmqpChannel | undefined;
  #directOpening = false;
  /** Reply channels whose failed reply has been found: the replies that failed after it are innocent. */
  readonly #culpritFound = new WeakSet<AmqpChannel>();
  /** Targets the broker confirmed a reply to: later replies to them skip the probe. */
  readonly #accepted = new BoundedSet(10_000);
  /** Fingerprints of requests whose reply made the broker close the channel or connection. */
  readonly #poisoned = new BoundedSet(1_000);
  /** Direct reply-to addresses whose probe made the broker close the connection: replies to them are dropped. */
  readonly #refused = new BoundedSet(1_000);
  /** Set as the server closes its channels: a reply still unconfirmed then is not published again. */
  #closed = false;

  constructor(settings: ReplyPublisherSettings) {
    this.#settings = settings;
  }

  /** True for a redelivered request whose reply the broker refused before: it must not run again. */
  isPoisoned(delivery: Delivery): boolean {
    return delivery.redelivered && this.#poisoned.size > 0 && this.#poisoned.has(requestFingerprint(delivery));
  }

  /** True for a request whose direct reply-to address the broker refused a reply to: its caller cannot get one. */
  isRefused(delivery: Delivery): boolean {
    const replyTo = delivery.properties.replyTo;
    return this.#refused.size > 0 && typeof replyTo === 'string' && this.#refused.has(replyTo);
  }

  /** Publishes the reply to `delivery`, then calls `after`. */
  publish(delivery: Delivery, reply: OutgoingReply, after: () => void): void {
    if (this.#dropRefused(reply, after)) return;
    if (this.#accepted.has(targetOf(reply))) {
      this.#replyAccepted(delivery, reply, after);
      return;
    }
    this.#probes.push({ delivery, reply, after });
    if (!this.#probing) this.#nextProbe();
  }

  /** Publishes a reply to a target accepted before: to a direct address without a confirm. */
  #replyAccepted(delivery: Delivery, reply: OutgoingReply, after: () => void): void {
    if (!this.#replyDirect(reply, after)) this.#publishConfirmed(delivery, reply, after, 1, false);
  }

  /** Publishes a reply to a direct address the broker accepted before, without a confirm; false for any other. */
  #replyDirect(reply: OutgoingReply, after: () => void): boolean {
    const direct = this.#direct;
    if (direct === undefined || reply.exchange !== '' || !this.#accepted.has(reply.routingKey)) return false;
    this.#publishDirect(direct, reply, after);
    return true;
  }

  /**
   * Sends the next first reply, once the one before it was confirmed. Replies that waited for a
   * target the broker has accepted meanwhile go out at once, without waiting any longer.
   */
  #nextProbe(): void {
    for (;;) {
      const next = this.#probes.shift();
      if (next === undefined) {
        this.#probing = false;
        return;
      }
      if (this.#dropRefused(next.reply, next.after)) continue;
      if (this.#accepted.has(targetOf(next.reply))) {
        this.#replyAccepted(next.delivery, next.reply, next.after);
        continue;
      }
      this.#probing = true;
      this.#publishConfirmed(
        next.delivery,
        next.reply,
        () => {
          this.#nextProbe();
          next.after();
        },
        1,
        true,
      );
      return;
    }
  }

  /** Drops a reply to a refused direct address (see {@link isRefused}); false for any other. */
  #dropRefused(reply: OutgoingReply, after: () => void): boolean {
    if (this.#refused.size === 0 || reply.exchange !== '' || !this.#refused.has(reply.routingKey)) return false;
    this.#settings.logger.debug(
      `server ${this.#settings.serverId}: reply to ${quote(reply.routingKey, 100)} dropped: the broker refused a reply to it before`,
    );
    after();
    return true;
  }

  /**
   * Forgets the channels of a connection that was lost, and which direct addresses the broker took
   * replies to: the loss may be a node's death, and a reply to a channel of that node would close
   * the next connection too.
   */
  forget(): void {
    this.#confirmed = undefined;
    this.#direct = undefined;
    this.#accepted.clear();
  }

  /** The connection of first replies, made on first use. */
  #probeLink(): QAMConnection {
    if (this.#probeConnection === undefined) {
      const connection = this.#settings.connection.sibling();
      connection.attach({
        onConnect: () => undefined,
        onDisconnect: () => {
          this.#probe = undefined;
        },
      });
      this.#probeConnection = connection;
    }
    return this.#probeConnection;
  }

  /** Closes the reply channels; replies still unconfirmed are not published again. */
  async close(): Promise<void> {
    this.#closed = true;
    const connected = this.#settings.connection.connected && !this.#settings.connection.blocked;
    const opening = connected ? await this.#opening.current?.catch(() => undefined) : undefined;
    const channels = [this.#confirmed ?? opening, this.#direct, this.#probe];
    this.forget();
    this.#probe = undefined;
    await Promise.all(channels.map((channel) => channel?.close()));
    await this.#probeConnection?.close();
  }

  #publishDirect(channel: AmqpChannel, reply: OutgoingReply, after: () => void): void {
    let more = true;
    try {
      more = channel.publish(reply.exchange, reply.routingKey, reply.body, reply.properties, { mandatory: false });
    } catch (error) {
      this.#settings.logger.error(
        `server ${this.#settings.serverId} could not publish the reply to ${quote(reply.routingKey, 100)}: ${describeError(error)}`,
      );
    }
    if (more) after();
    else channel.whenWritable().then(after, after);
  }

  /**
   * When the broker closes the channel, or the connection, the replies it had not confirmed fail
   * in the order they were published, and the first of them is the one it refused (the broker
   * confirms what it took before acting on the next publish). That reply is never published
   * again: a 404 for its exchange means its proxy is gone; anything else (403, 541) is
   * remembered. The replies after it are innocent: published again on a new channel, or, when the
   * connection went with them, left to their requests' redelivery. Nothing the broker refuses is
   * blamed on a direct address it accepted before, nor is a connection it closed for some other
   * reason (320 CONNECTION_FORCED, a lost socket).
   */
  #publishConfirmed(delivery: Delivery, reply: OutgoingReply, after: () => void, attempt: number, probe: boolean): void {
    const failed = (channel: AmqpChannel, failure: PortError): void => {
      if (this.#confirmed === channel) this.#confirmed = undefined;
      if (this.#probe === channel) this.#probe = undefined;
      const code = failure.replyCode;
      const culprit =
        code !== undefined && code !== connectionForced && !this.#culpritFound.has(channel) && !this.#accepted.has(targetOf(reply));
      if (culprit) this.#culpritFound.add(channel);
      if (code === 404 && reply.exchange !== '' && failure.message.includes(`'${reply.exchange}'`)) {
        this.#settings.logger.debug(`server ${this.#settings.serverId}: reply to ${reply.exchange} dropped: its exchange is gone`);
        after();
      } else if (culprit) {
        this.#poisoned.add(requestFingerprint(delivery));
        if (reply.exchange === '') this.#refused.add(reply.routingKey);
        this.#settings.refusals.error(
          `server ${this.#settings.serverId}: the broker closed its ${failure.connection ? 'connection' : 'reply channel'} on the reply to ${quote(reply.exchange || reply.routingKey, 100)} ` +
            `(${failure.message}); the request is dropped and will not run again here`,
        );
        after();
      } else if (code !== undefined && attempt < maxReplyAttempts && !this.#closed) {
        // After the connection's own close is handled, so a new channel opens on the next connection.
        setImmediate(() => this.#publishConfirmed(delivery, reply, after, attempt + 1, probe));
      } else {
        this.#settings.logger.error(
          `server ${this.#settings.serverId} could not publish the reply to ${quote(reply.exchange || reply.routingKey, 100)}: ${failure.message}`,
        );
        after();
      }
    };
    const publish = (channel: AmqpChannel): void => {
      try {
        channel.publish(reply.exchange, reply.routingKey, reply.body, reply.properties, { mandatory: false }, (failure) => {
          if (failure !== undefined) {
            failed(channel, failure);
            return;
          }
          this.#accept(reply);
          after();
        });
      } catch (error) {
        failed(channel, error instanceof PortError ? error : new PortError('other', describeError(error), { cause: error }));
      }
    };
    const channel = probe ? this.#probe : this.#confirmed;
    if (channel !== undefined) {
      publish(channel);
      return;
    }
    this.#openConfirmed(probe).then(publish, (error: unknown) => {
      this.#settings.logger.error(
        `server ${this.#settings.serverId} could not open a channel for the reply to ${quote(reply.exchange || reply.routingKey, 100)}: ${describeError(error)}`,
      );
      after();
    });
  }

  #openConfirmed(probe: boolean): Promise<AmqpChannel> {
    return (probe ? this.#probeOpening : this.#opening).run(async () => {
      const channel = await (probe ? this.#probeLink() : this.#settings.connection).openChannel({ confirms: true });
      channel.onClose((error) => {
        if (this.#confirmed === channel) this.#confirmed = undefined;
        if (this.#probe === channel) this.#probe = undefined;
        if (error !== undefined)
          this.#settings.logger.warn(`server ${this.#settings.serverId} reply channel closed by the broker: ${error.message}`);
      });
      if (probe) this.#probe = channel;
      else this.#confirmed = channel;
      return channel;
    });
  }

  /** The broker took a reply to this target: later ones skip the probe (and direct ones the confirm). */
  #accept(reply: OutgoingReply): void {
    this.#accepted.add(targetOf(reply));
    if (reply.exchange === '') this.#openDirect();
  }

  /**
   * The plain channel direct replies to accepted addresses go out on. Only a change of the
   * server's rights can make the broker refuse one; then every address must be accepted anew.
   */
  #openDirect(): void {
    if (this.#direct !== undefined || this.#directOpening || !this.#settings.serving()) return;
    this.#directOpening = true;
    this.#settings.connection
      .openChannel({ confirms: false })
      .then(async (channel) => {
        channel.onClose((error) => {
          if (error !== undefined) {
            this.#accepted.clear();
            this.#settings.logger.warn(`server ${this.#settings.serverId} direct reply channel closed by the broker: ${error.message}`);
          }
          if (this.#direct === channel) this.#direct = undefined;
        });
        if (this.#settings.serving() && !this.#closed) this.#direct = channel;
        else await channel.close();
      })
      .catch((error: unknown) =>
        this.#settings.logger.debug(`server ${this.#settings.serverId} could not open its direct reply channel: ${describeError(error)}`),
      )
      .finally(() => {
        this.#directOpening = false;
      });
  }
}
