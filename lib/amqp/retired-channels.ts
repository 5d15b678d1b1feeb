import type { AmqpChannel } from './port.js';

/**
 * Publish channels retired after a nack. RabbitMQ 3.10 nacks, for the life of a channel, every
 * publish to a quorum queue whose leader that channel last saw on a node that died, so a nacked
 * publisher is replaced; the retired one stays open while something sent on it may still be
 * answered on it (direct reply-to), and closes once nothing waits on it.
 * @internal
 */
export class RetiredChannels {
  /** Each retired channel with the keys of what may still wait on it. */
  readonly #waiting = new Map<AmqpChannel, Set<string>>();

  /** Retires `channel` until every key of `waiting` has ended: at once when there is none. */
  retire(channel: AmqpChannel, waiting: Set<string>): void {
    this.#waiting.set(channel, waiting);
    if (waiting.size === 0) this.#close(channel);
  }

  /** What `key` names ended: a retired channel nothing waits on any more closes. */
  ended(key: string): void {
    if (this.#waiting.size === 0) return;
    for (const [channel, waiting] of this.#waiting) if (waiting.delete(key) && waiting.size === 0) this.#close(channel);
  }

  /**
   * `channel` closed: forgets it, and returns the keys that still waited on it, or undefined when
   * it was not retired.
   */
  closed(channel: AmqpChannel): Set<string> | undefined {
    const waiting = this.#waiting.get(channel);
    this.#waiting.delete(channel);
    return waiting;
  }

  /** The retired channels, forgotten: the caller closes them. */
  takeAll(): AmqpChannel[] {
    const channels = [...this.#waiting.keys()];
    this.#waiting.clear();
    return channels;
  }

  /** Forgets every retired channel (they went with the connection). */
  clear(): void {
    this.#waiting.clear();
  }

  #close(channel: AmqpChannel): void {
    this.#waiting.delete(channel);
    void channel.close();
  }
}
