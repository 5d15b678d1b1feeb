/**
 * `qam/testing`: an embedded in-process broker for users' own tests, so a service can be tested
 * without RabbitMQ. Servers and proxies reach it by its URL (`memory://<name>`); the broker object
 * cuts and blocks connections and lists queues, exchanges, bindings and connections.
 *
 * @example
 * const broker = startTestBroker();
 * const server = new QAMServer({ serverId: 'calc', url: broker.url }).registerFunction(add, 'add');
 * await server.serve();
 * const proxy = new QAMProxy<Api>({ serverId: 'calc', url: broker.url });
 * expect(await proxy.add(2, 3)).toBe(5);
 * broker.cut(); // every connection drops, as in a network failure
 * await proxy.close();
 * await server.close();
 * broker.close();
 */
import { randomBytes } from 'node:crypto';
import { MemoryBroker, memoryBroker } from './amqp/memory/index.js';

export * from './amqp/memory/public.js';

/** An embedded broker started for a test, with the URL that reaches it. */
export interface TestBroker {
  /** `memory://<name>`: give it as `url` to servers, proxies and connections. */
  readonly url: string;
  /** The broker itself: `cut()`, `setBlocked()`, `queues()`, `addUser()`, `setPermissions()`, … */
  readonly broker: MemoryBroker;
  /** Drops every connection and everything declared, and forgets the broker. */
  close(): void;
}

/**
 * Starts an embedded broker of its own for a test (`name` defaults to a random one, so tests
 * running at once never share one). It has vhost `/` and user `guest`/`guest`.
 */
export function startTestBroker(name = `test-${randomBytes(6).toString('hex')}`): TestBroker {
  const broker = memoryBroker(name);
  return { url: `memory://${encodeURIComponent(name)}`, broker, close: () => broker.close() };
}
