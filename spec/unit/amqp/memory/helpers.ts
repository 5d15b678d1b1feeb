/**
 * Helpers for the embedded broker's tests: a broker per test, connections through the port, and
 * ways to wait for what the broker tells a client (it tells it asynchronously, never inside the
 * call that caused it).
 */
import { randomBytes } from 'node:crypto';
import { setImmediate } from 'node:timers';
import { memoryBroker, memoryPort, type MemoryBroker } from '../../../../lib/amqp/memory/index.js';
import { silentLogger } from '../../../../lib/logger.js';
import type { AmqpChannel, AmqpConnection, ConnectTarget, Delivery, PortError } from '../../../../lib/amqp/port.js';

/** What the port is given; written so it also type-checks with fields the port may gain (a logger). */
export function target(url: string, connectionName?: string): ConnectTarget {
  const target = {
    url,
    label: url,
    username: 'guest',
    heartbeatSeconds: 0,
    connectTimeoutMs: 1000,
    connectionName,
    tls: undefined,
    logger: silentLogger,
  };
  return target as ConnectTarget;
}

/** A broker of its own for one test, closed by {@link closeBrokers}. */
export function freshBroker(): { broker: MemoryBroker; url: string; name: string } {
  const name = `spec-${randomBytes(6).toString('hex')}`;
  opened.push(name);
  return { broker: memoryBroker(name), url: `memory://${name}`, name };
}

const opened: string[] = [];

export function closeBrokers(): void {
  for (const name of opened.splice(0)) memoryBroker(name).close();
}

export async function connect(url: string, connectionName?: string): Promise<AmqpConnection> {
  return memoryPort.connect(target(url, connectionName));
}

/** A connection and a channel on it (a confirm channel unless told otherwise). */
export async function open(url: string, confirms = true): Promise<{ connection: AmqpConnection; channel: AmqpChannel }> {
  const connection = await connect(url);
  return { connection, channel: await connection.openChannel({ confirms }) };
}

/** Lets the broker run `passes` passes (each is one turn of the real event loop). */
export async function passes(count = 3): Promise<void> {
  for (let i = 0; i < count; i++) await new Promise((resolve) => setImmediate(resolve));
}

/** Collects what a handler receives; `next(n)` resolves once `n` items arrived in all. */
export class Collector<T> {
  readonly items: T[] = [];
  #waiters: Array<{ count: number; resolve: (items: T[]) => void }> = [];

  readonly push = (item: T): void => {
    this.items.push(item);
    this.#waiters = this.#waiters.filter((waiter) => {
      if (this.items.length < waiter.count) return true;
      waiter.resolve(this.items);
      return false;
    });
  };

  until(count: number): Promise<T[]> {
    if (this.items.length >= count) return Promise.resolve(this.items);
    return new Promise((resolve) => this.#waiters.push({ count, resolve }));
  }
}

/** Resolves with what the channel's `onClose` handler is told. */
export function whenClosed(closable: { onClose(handler: (error: PortError | undefined) => void): void }): Promise<PortError | undefined> {
  return new Promise((resolve) => closable.onClose(resolve));
}

/** Publishes on a confirm channel and resolves with the confirmation (undefined: confirmed). */
export function publishConfirmed(
  channel: AmqpChannel,
  exchange: string,
  routingKey: string,
  body: string | Buffer,
  properties: Parameters<AmqpChannel['publish']>[3] = {},
  mandatory = false,
): Promise<PortError | undefined> {
  return new Promise((resolve) =>
    channel.publish(exchange, routingKey, Buffer.isBuffer(body) ? body : Buffer.from(body), properties, { mandatory }, resolve),
  );
}

export function text(delivery: { content: Buffer }): string {
  return delivery.content.toString();
}

/** Declares a plain queue (not durable, not exclusive, not auto-delete). */
export function declare(
  channel: AmqpChannel,
  queue: string,
  options: Partial<Parameters<AmqpChannel['declareQueue']>[1]> = {},
): Promise<void> {
  return channel.declareQueue(queue, { durable: false, exclusive: false, autoDelete: false, ...options });
}

/** Consumes into a collector. */
export async function collect(
  channel: AmqpChannel,
  queue: string,
  noAck = false,
): Promise<{ tag: string; deliveries: Collector<Delivery> }> {
  const deliveries = new Collector<Delivery>();
  const tag = await channel.consume(queue, deliveries.push, { noAck });
  return { tag, deliveries };
}
