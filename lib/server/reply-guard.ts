import { createHash } from 'node:crypto';
import type { Delivery } from '../amqp/port.js';

/**
 * A set that keeps the `capacity` most recently added keys: memory for what a server has learnt
 * from the broker (reply addresses it accepted, requests whose reply it refused), which must stay
 * bounded whatever requests arrive.
 * @internal
 */
export class BoundedSet {
  readonly #keys = new Set<string>();
  readonly #capacity: number;

  constructor(capacity: number) {
    this.#capacity = capacity;
  }

  get size(): number {
    return this.#keys.size;
  }

  has(key: string): boolean {
    return this.#keys.has(key);
  }

  add(key: string): void {
    this.#keys.delete(key);
    this.#keys.add(key);
    if (this.#keys.size > this.#capacity) {
      const oldest = this.#keys.values().next();
      if (oldest.done !== true) this.#keys.delete(oldest.value);
    }
  }

  clear(): void {
    this.#keys.clear();
  }
}

/**
 * What identifies a delivery again when the broker redelivers it: the body and the properties a
 * publisher sets, hashed. Headers are left out, as the broker may add some on redelivery
 * (`x-delivery-count` on quorum queues); the SHA-256 keeps a publisher from making another
 * request's fingerprint on purpose.
 * @internal
 */
export function requestFingerprint(message: Delivery): string {
  const { replyTo, correlationId, messageId, contentType } = message.properties;
  const hash = createHash('sha256');
  for (const field of [replyTo, correlationId, messageId, contentType])
    hash.update(`${typeof field === 'string' ? field.length : -1}:${String(field)}\0`);
  return hash.update(message.content).digest('hex');
}
