/** A QAMServer on a fake of the AMQP port, and requests to hand it, for the unit tests of lib/server. */
import type { QAMConnection } from '../../../lib/amqp/connection.js';
import type { Delivery, IncomingProperties } from '../../../lib/amqp/port.js';
import { QAMServer, silentLogger, type QAMServerOptions } from '../../../lib/index.js';
import { FakePort, type FakeConnection, type Published } from '../../support/fake-port.js';

export const serverId = 'calc';
export const requestQueue = `server_${serverId}_queue`;

/** A direct reply-to address of RabbitMQ 3.x's shape; `n` makes distinct ones. */
export function directAddress(n: number): string {
  return `amq.rabbitmq.reply-to.g1h2AA1yZXBseUA5MjQ4ODg0AAA3FgAAAABrDMQi.client${n}==`;
}

/** A callme client exchange; `n` makes distinct ones. */
export function callmeExchange(n: number): string {
  return `client_guest_ex_0b7e4a8e-5a8c-4a41-9d3f-${String(n).padStart(12, '0')}`;
}

export interface Served {
  port: FakePort;
  connection: QAMConnection;
  server: QAMServer;
  /** The connection the server consumes on. */
  main: FakeConnection;
  /** Methods run, in order. */
  ran: string[];
  /** Ends the calls of `gated`, in order. */
  open(): void;
  /** Hands the server a native request. */
  request(method: string, params?: unknown[], properties?: IncomingProperties, fields?: { redelivered?: boolean }): Delivery;
  /** The replies published (after `from`), as [target, body, publish]. */
  replies(from?: number): Array<{ target: string; body: unknown; message: Published }>;
  close(): Promise<void>;
}

/**
 * A serving QAMServer on a new fake port, with `add`, `gated` (returns once {@link Served.open}
 * is called) and `fail` (throws).
 */
export async function serving(options: Partial<QAMServerOptions> = {}): Promise<Served> {
  const port = new FakePort();
  const connection = port.connection();
  const ran: string[] = [];
  const gates: Array<() => void> = [];
  const server = new QAMServer({ serverId, connection, logger: silentLogger, ...options })
    .registerFunction((a: number, b: number) => {
      ran.push('add');
      return a + b;
    }, 'add')
    .registerFunction(() => {
      ran.push('gated');
      return new Promise<string>((resolve) => gates.push(() => resolve('opened')));
    }, 'gated')
    .registerFunction(() => {
      ran.push('fail');
      throw new Error('failed');
    }, 'fail');
  await server.serve();
  const main = port.lastConnection;
  return {
    port,
    connection,
    server,
    main,
    ran,
    open: () => gates.shift()?.(),
    request: (method, params = [], properties = {}, fields = {}) =>
      port.deliver(
        requestQueue,
        Buffer.from(JSON.stringify({ method, params })),
        { contentType: 'application/json', ...properties },
        fields,
      ),
    replies: (from = 0) =>
      port.published.slice(from).map((message) => ({
        target: message.exchange === '' ? message.routingKey : message.exchange,
        body: JSON.parse(message.content.toString()) as unknown,
        message,
      })),
    // Teardown lets everything finish, so a test that failed half-way does not hold close() for drainTimeout.
    close: async () => {
      port.autoConfirm = true;
      for (const message of port.published) message.confirm();
      for (const gate of gates.splice(0)) gate();
      for (const link of port.connections)
        if (!link.closed) {
          if (link.blocked) link.unblock();
          link.drain();
        }
      await server.close();
      await connection.close();
    },
  };
}
