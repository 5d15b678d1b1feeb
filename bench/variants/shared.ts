/** Pieces shared by the hand-written (non-qam) variants: JSON bodies, correlation, replies. */

import type { Handler } from './types.js';

/** RabbitMQ's direct reply-to pseudo queue. */
export const directReplyTo = 'amq.rabbitmq.reply-to';

export const jsonContentType = 'application/json';

/** Same bytes as qam's 'json' serializer, so every variant pays the same serialization cost. */
export function encodeJson(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value));
}

export function decodeJson(body: Uint8Array): unknown {
  const buffer = Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  return JSON.parse(buffer.toString('utf8')) as unknown;
}

interface Waiter {
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

/** The correlation map of a direct reply-to client: one entry per call in flight. */
export class PendingCalls {
  #seq = 0;
  readonly #waiting = new Map<string, Waiter>();

  /** Registers a call under a fresh correlation id, then runs `send(id)` to publish it. */
  start(send: (correlationId: string) => void): Promise<unknown> {
    const id = (++this.#seq).toString(36);
    return new Promise((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject });
      try {
        send(id);
      } catch (error) {
        this.fail(id, error);
      }
    });
  }

  /** Settles the call `correlationId` with `decode()`; replies nobody waits for are dropped. */
  settle(correlationId: unknown, decode: () => unknown): void {
    if (typeof correlationId !== 'string') return;
    const waiter = this.#waiting.get(correlationId);
    if (waiter === undefined) return;
    this.#waiting.delete(correlationId);
    try {
      waiter.resolve(decode());
    } catch (error) {
      waiter.reject(error);
    }
  }

  fail(correlationId: string, error: unknown): void {
    const waiter = this.#waiting.get(correlationId);
    if (waiter === undefined) return;
    this.#waiting.delete(correlationId);
    waiter.reject(error);
  }

  failAll(error: unknown): void {
    for (const waiter of this.#waiting.values()) waiter.reject(error);
    this.#waiting.clear();
  }
}

/** Runs the handler and calls `send` with its result, without an extra tick when it is synchronous. */
export function respond(handler: Handler, value: unknown, send: (result: unknown) => void, onError: (error: unknown) => void): void {
  let result: unknown;
  try {
    result = handler(value);
  } catch (error) {
    onError(error);
    return;
  }
  if (result instanceof Promise) result.then(send, onError);
  else send(result);
}

/** A single-queue server declares only its queue (through the default exchange). */
export function queueOnly(serverName: string): { queues: string[]; exchanges: string[] } {
  return { queues: [serverName], exchanges: [] };
}
