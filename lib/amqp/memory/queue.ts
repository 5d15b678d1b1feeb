/**
 * A queue of the embedded broker: its messages in order, its consumers served round robin, and the
 * clocks RabbitMQ gives a queue (per-message TTL, `x-message-ttl`, `x-expires`).
 * @internal
 */
import { Deque } from './deque.js';
import type { Dispatchable, Scheduler } from './scheduler.js';
import type { WireProperties } from './wire.js';

/** `expiresAt` of a message with a TTL of 0: delivered at once if a consumer can take it, else dropped. */
const nowOrNever = -1;

/** Deliveries to hand out in one pass before yielding to the event loop. */
const passBudget = 1000;

/** A message in a queue (a message routed to several queues has one of these in each). */
export interface QueuedMessage {
  readonly queue: Queue;
  readonly content: Buffer;
  readonly properties: WireProperties;
  readonly exchange: string;
  readonly routingKey: string;
  /** Routed to more than one place: every delivery copies it. */
  readonly shared: boolean;
  /** Its place in the queue: a message requeued goes back there. */
  readonly seq: number;
  /** When it expires (ms since the epoch), `Infinity` for never. */
  readonly expiresAt: number;
  redelivered: boolean;
}

/** A consumer, as its queue sees it. */
export interface QueueConsumer {
  readonly noAck: boolean;
  readonly exclusive: boolean;
  /** True when it takes another delivery now (its channel is open and under its prefetch). */
  ready(): boolean;
  deliver(message: QueuedMessage): void;
  /** The broker cancelled it: its queue is gone. */
  cancelled(): void;
}

/** What a queue needs from its vhost. */
export interface QueueHost {
  readonly scheduler: Scheduler;
  /** Deletes `queue` (its `x-expires` ran out, or it auto-deletes after its last consumer). */
  remove(queue: Queue): void;
}

export interface QueueSettings {
  readonly name: string;
  readonly durable: boolean;
  readonly autoDelete: boolean;
  /** The connection an exclusive queue belongs to. */
  readonly owner: object | undefined;
  readonly arguments: Readonly<Record<string, unknown>>;
  /** `x-expires`, milliseconds. */
  readonly expires: number | undefined;
  /** `x-message-ttl`, milliseconds. */
  readonly messageTtl: number | undefined;
}

function bySeq(message: QueuedMessage): number {
  return message.seq;
}

export class Queue implements Dispatchable {
  readonly name: string;
  readonly durable: boolean;
  readonly autoDelete: boolean;
  readonly owner: object | undefined;
  readonly arguments: Readonly<Record<string, unknown>>;
  readonly consumers: QueueConsumer[] = [];
  /** Deliveries not acknowledged yet. */
  unacked = 0;
  deleted = false;
  readonly #host: QueueHost;
  readonly #expires: number | undefined;
  readonly #messageTtl: number | undefined;
  readonly #messages = new Deque<QueuedMessage>();
  #seq = 0;
  #next = 0;
  #hadConsumer = false;
  #queued = false;
  #expiryTimer: ReturnType<typeof setTimeout> | undefined;
  #ttlTimer: ReturnType<typeof setTimeout> | undefined;
  #ttlAt = Infinity;

  constructor(settings: QueueSettings, host: QueueHost) {
    this.name = settings.name;
    this.durable = settings.durable;
    this.autoDelete = settings.autoDelete;
    this.owner = settings.owner;
    this.arguments = settings.arguments;
    this.#expires = settings.expires;
    this.#messageTtl = settings.messageTtl;
    this.#host = host;
    this.touch();
  }

  /** Messages ready for delivery (expired ones at the head dropped first, as RabbitMQ's TTL timer does). */
  get ready(): number {
    this.#dropExpired();
    return this.#messages.length;
  }

  /**
   * Appends a message. `ttl` is its `expiration`: it expires that long after it was enqueued, and
   * RabbitMQ drops it once it reaches the head. A TTL of 0 means "now or never".
   */
  enqueue(
    content: Buffer,
    properties: WireProperties,
    exchange: string,
    routingKey: string,
    shared: boolean,
    ttl: number | undefined,
  ): void {
    let limit = ttl;
    if (this.#messageTtl !== undefined && (limit === undefined || this.#messageTtl < limit)) limit = this.#messageTtl;
    let expiresAt = Infinity;
    if (limit === 0) {
      if (this.#messages.length > 0 || !this.consumers.some((consumer) => consumer.ready())) return;
      expiresAt = nowOrNever;
    } else if (limit !== undefined) {
      expiresAt = Date.now() + limit;
    }
    this.#messages.push({
      queue: this,
      content,
      properties,
      exchange,
      routingKey,
      shared,
      seq: this.#seq++,
      expiresAt,
      redelivered: false,
    });
    this.wake();
  }

  /** A delivery of this queue was acknowledged or dropped. */
  settled(): void {
    this.unacked--;
  }

  /** Puts an unacknowledged delivery back where it was, marked redelivered. */
  requeue(message: QueuedMessage): void {
    this.unacked--;
    if (this.deleted) return;
    message.redelivered = true;
    this.#messages.insertSorted(message, bySeq);
    this.wake();
  }

  /** Asks for a dispatch in the next pass. */
  wake(): void {
    if (this.#queued || this.deleted) return;
    this.#queued = true;
    this.#host.scheduler.dispatch(this);
  }

  addConsumer(consumer: QueueConsumer): void {
    this.consumers.push(consumer);
    this.#hadConsumer = true;
    this.touch();
    this.wake();
  }

  /** Removes a consumer; an auto-delete queue goes with its last one. */
  removeConsumer(consumer: QueueConsumer): void {
    const index = this.consumers.indexOf(consumer);
    if (index < 0) return;
    this.consumers.splice(index, 1);
    if (index < this.#next) this.#next--;
    if (this.#next >= this.consumers.length) this.#next = 0;
    if (this.consumers.length > 0 || this.deleted) return;
    if (this.autoDelete && this.#hadConsumer) this.#host.remove(this);
    else this.touch();
  }

  /**
   * Restarts the `x-expires` clock: the queue is deleted once it has had no consumer for that long
   * (declaring it again counts as a use).
   */
  touch(): void {
    if (this.#expires === undefined || this.deleted) return;
    if (this.#expiryTimer !== undefined) clearTimeout(this.#expiryTimer);
    this.#expiryTimer = undefined;
    if (this.consumers.length > 0) return;
    this.#expiryTimer = setTimeout(() => {
      this.#expiryTimer = undefined;
      if (!this.deleted && this.consumers.length === 0) this.#host.remove(this);
    }, this.#expires);
    this.#expiryTimer.unref?.();
  }

  /** Marks the queue deleted, drops its messages and timers, and returns its consumers, now cancelled. */
  destroy(): QueueConsumer[] {
    this.deleted = true;
    if (this.#expiryTimer !== undefined) clearTimeout(this.#expiryTimer);
    if (this.#ttlTimer !== undefined) clearTimeout(this.#ttlTimer);
    this.#expiryTimer = undefined;
    this.#ttlTimer = undefined;
    this.#messages.drain();
    return this.consumers.splice(0);
  }

  dispatch(): void {
    this.#queued = false;
    if (this.deleted) return;
    let budget = passBudget;
    let now = -1;
    for (;;) {
      const head = this.#messages.peek();
      if (head === undefined) break;
      if (head.expiresAt !== Infinity && head.expiresAt !== nowOrNever) {
        if (now < 0) now = Date.now();
        if (now > head.expiresAt) {
          this.#messages.shift();
          continue;
        }
      }
      if (budget === 0) {
        this.wake();
        break;
      }
      const consumer = this.#pick();
      if (consumer === undefined) {
        if (head.expiresAt !== nowOrNever) break;
        this.#messages.shift();
        continue;
      }
      budget--;
      this.#messages.shift();
      if (!consumer.noAck) this.unacked++;
      consumer.deliver(head);
      if (this.deleted) return;
    }
    this.#armTtl();
  }

  /** The next consumer, round robin, that takes a delivery now. */
  #pick(): QueueConsumer | undefined {
    const consumers = this.consumers;
    const count = consumers.length;
    for (let i = 0; i < count; i++) {
      const index = (this.#next + i) % count;
      const consumer = consumers[index] as QueueConsumer;
      if (consumer.ready()) {
        this.#next = (index + 1) % count;
        return consumer;
      }
    }
    return undefined;
  }

  #dropExpired(): void {
    let now = -1;
    for (;;) {
      const head = this.#messages.peek();
      if (head === undefined || head.expiresAt === Infinity) return;
      if (head.expiresAt !== nowOrNever) {
        if (now < 0) now = Date.now();
        if (now <= head.expiresAt) return;
      } else if (this.consumers.some((consumer) => consumer.ready())) {
        return;
      }
      this.#messages.shift();
    }
  }

  /** RabbitMQ drops an expired message at the head even with no consumer: a timer for the head's expiry. */
  #armTtl(): void {
    const head = this.#messages.peek();
    const at = head === undefined || head.expiresAt === nowOrNever ? Infinity : head.expiresAt;
    if (at === Infinity) {
      if (this.#ttlTimer !== undefined) clearTimeout(this.#ttlTimer);
      this.#ttlTimer = undefined;
      this.#ttlAt = Infinity;
      return;
    }
    if (this.#ttlTimer !== undefined && this.#ttlAt <= at) return;
    if (this.#ttlTimer !== undefined) clearTimeout(this.#ttlTimer);
    this.#ttlAt = at;
    this.#ttlTimer = setTimeout(
      () => {
        this.#ttlTimer = undefined;
        this.#ttlAt = Infinity;
        this.dispatch();
      },
      Math.max(0, at - Date.now() + 1),
    );
    this.#ttlTimer.unref?.();
  }
}
