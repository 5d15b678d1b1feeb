/**
 * The brokers the conformance suite runs on: RabbitMQ (127.0.0.1:5672) and the embedded broker
 * (`memory://`). A suite written once against {@link BrokerUnderTest} runs on both, with the same
 * assertions; where the two differ on purpose, the test branches on `broker.kind` and says why
 * (README.md, "Without RabbitMQ: the embedded broker", lists the differences).
 *
 * To make a suite run on both brokers (new features too: events, clusters, …):
 *
 *     import { brokers } from '../support/brokers.js';
 *
 *     describe.each(brokers)('on %s', (_name, useBroker) => {
 *       const broker = useBroker(); // set up before the describe's tests, cleaned up after them
 *
 *       it('answers', async () => {
 *         const server = broker.server().registerFunction((a: number, b: number) => a + b, 'add');
 *         await server.serve();
 *         const proxy = broker.proxy({ serverId: server.serverId });
 *         await expect(proxy['add'](2, 3)).resolves.toBe(5);
 *       });
 *     });
 *
 * Each describe gets a place of its own: a fresh vhost on RabbitMQ (guest has every right on it),
 * a fresh embedded broker. `broker.url` reaches it as guest. What the helper makes (servers,
 * proxies, connections, raw port channels, vhosts, users, fault injectors, a blockable broker) is
 * closed or deleted after the describe, so RabbitMQ is left as found; listings (`queues()`,
 * `exchanges()`) cover the describe's own vhost only, never what other programs declare.
 *
 * Faults: `faulty()` gives connection options whose connections `cut()` drops as a network
 * failure would (RabbitMQ: through a TCP proxy; embedded: `MemoryBroker.cut`). `blockable()` gives
 * a broker whose resource alarm a test may raise (RabbitMQ: a node of the test's own, never the
 * shared one; embedded: `MemoryBroker.setBlocked`).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import {
  QAMConnection,
  QAMProxy,
  QAMServer,
  silentLogger,
  type ConnectionOptions,
  type QAMProxyOptions,
  type QAMServerOptions,
  type SerializerName,
} from '../../lib/index.js';
import type { AmqpChannel } from '../../lib/amqp/port.js';
import { startTestBroker, type TestBroker } from '../../lib/testing.js';
import { brokerUrl, createUser, createVhost, uniqueName, type Permissions, type TempVhost } from './broker.js';
import { startNode, type TestNode } from './rabbit-node.js';
import { TcpProxy } from './tcp-proxy.js';

export type BrokerKind = 'rabbitmq' | 'memory';

/** A queue of the describe's vhost, as both brokers list it. */
export interface QueueState {
  name: string;
  ready: number;
  unacked: number;
  consumers: number;
  durable: boolean;
  autoDelete: boolean;
  exclusive: boolean;
}

/** An exchange of the describe's vhost (the default exchange is `''`). */
export interface ExchangeState {
  name: string;
  type: string;
  durable: boolean;
  autoDelete: boolean;
}

/** A user made for the describe, with the URL that logs in as it. */
export interface BrokerUser {
  name: string;
  password: string;
  url: string;
}

/** Connections that `cut()` drops, as a network failure would. */
export interface Faulty {
  /** Give these to a QAMConnection, QAMServer or QAMProxy. */
  options: ConnectionOptions;
  cut(): void;
}

/** A broker of the test's own whose resource alarm it may raise. */
export interface Blockable {
  url: string;
  setBlocked(on: boolean): Promise<void>;
}

export interface BrokerUnderTest {
  readonly kind: BrokerKind;
  /** 'RabbitMQ' or 'the embedded broker'. */
  readonly name: string;
  /** The describe's own vhost. */
  readonly vhost: string;
  /** guest on the describe's vhost. */
  readonly url: string;
  /** A URL that logs in as `user` on `vhost` (the describe's by default). */
  urlFor(user: { name: string; password: string }, vhost?: string): string;
  /** A connection that logs nothing, closed after the describe. */
  connection(options?: Partial<ConnectionOptions>): QAMConnection;
  /** A raw AMQP port channel on a connection of its own (guest on the describe's vhost unless `url`), closed after the describe. */
  channel(options?: { confirms?: boolean; url?: string }): Promise<AmqpChannel>;
  /** A server with a unique id on the describe's vhost, not yet serving; closed (queue deleted) after the describe. */
  server(options?: Partial<QAMServerOptions>): QAMServer;
  /** A proxy on the describe's vhost (unless given a connection or url), closed after the describe. */
  proxy<Api extends object = Record<string, never>>(options: QAMProxyOptions): QAMProxy<Api>;
  /** Something else to close after the describe. */
  track<T extends { close(): Promise<unknown> }>(closable: T): T;
  queues(vhost?: string): Promise<QueueState[]>;
  queue(name: string, vhost?: string): Promise<QueueState | undefined>;
  exchanges(vhost?: string): Promise<ExchangeState[]>;
  /** A further vhost on which guest has every right; deleted after the describe. */
  addVhost(): Promise<string>;
  /** A user with `permissions` (given its name) on `vhost` (the describe's by default); deleted after the describe. */
  addUser(permissions: (name: string) => Permissions, vhost?: string): Promise<BrokerUser>;
  faulty(): Promise<Faulty>;
  blockable(): Promise<Blockable>;
}

/** What differs between the two brokers; the rest is in {@link Session}. */
interface Backend {
  readonly kind: BrokerKind;
  readonly name: string;
  readonly vhost: string;
  urlFor(user: string, password: string, vhost: string): string;
  queues(vhost: string): Promise<QueueState[]>;
  exchanges(vhost: string): Promise<ExchangeState[]>;
  addVhost(): Promise<string>;
  addUser(name: string, password: string, vhost: string, permissions: Permissions): Promise<void>;
  faulty(vhost: string): Promise<Faulty>;
  blockable(): Promise<Blockable>;
  close(): Promise<void>;
}

const run = promisify(execFile);

async function rabbitmqList(args: string[]): Promise<Record<string, unknown>[]> {
  const { stdout } = await run('rabbitmqctl', [...args, '--formatter', 'json', '--quiet'], { maxBuffer: 64 * 1024 * 1024 });
  const text = stdout.trim();
  return text === '' ? [] : (JSON.parse(text) as Record<string, unknown>[]);
}

async function rabbitmq(): Promise<Backend> {
  const own: TempVhost = await createVhost('qam_conf');
  const cleanups: Array<() => Promise<unknown>> = [];
  let node: Promise<TestNode> | undefined;
  return {
    kind: 'rabbitmq',
    name: 'RabbitMQ',
    vhost: own.vhost,
    urlFor: (user, password, vhost) => brokerUrl(vhost, user, password),
    queues: async (vhost) =>
      (
        await rabbitmqList([
          'list_queues',
          '-p',
          vhost,
          'name',
          'messages_ready',
          'messages_unacknowledged',
          'consumers',
          'durable',
          'auto_delete',
          'exclusive',
        ])
      ).map((row) => ({
        name: String(row['name']),
        ready: Number(row['messages_ready'] ?? 0),
        unacked: Number(row['messages_unacknowledged'] ?? 0),
        consumers: Number(row['consumers'] ?? 0),
        durable: row['durable'] === true,
        autoDelete: row['auto_delete'] === true,
        exclusive: row['exclusive'] === true,
      })),
    exchanges: async (vhost) =>
      (await rabbitmqList(['list_exchanges', '-p', vhost, 'name', 'type', 'durable', 'auto_delete'])).map((row) => ({
        name: String(row['name']),
        type: String(row['type']),
        durable: row['durable'] === true,
        autoDelete: row['auto_delete'] === true,
      })),
    addVhost: async () => {
      const made = await createVhost('qam_conf');
      cleanups.push(() => made.remove());
      return made.vhost;
    },
    addUser: async (name, password, vhost, permissions) => {
      const made = await createUser(name, password, vhost, permissions);
      cleanups.push(() => made.remove());
    },
    faulty: async (vhost) => {
      const tcp = await TcpProxy.start();
      cleanups.push(() => tcp.close());
      return { options: { url: tcp.url(vhost) }, cut: () => tcp.cutAll() };
    },
    blockable: async () => {
      node ??= startNode();
      const started = await node;
      cleanups.push(() => started.stop());
      return { url: started.url, setBlocked: (on) => started.setMemoryAlarm(on) };
    },
    close: async () => {
      for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
      await own.remove();
    },
  };
}

function embedded(): Backend {
  const test: TestBroker = startTestBroker();
  const { broker } = test;
  const base = test.url.slice('memory://'.length);
  return {
    kind: 'memory',
    name: 'the embedded broker',
    vhost: '/',
    urlFor: (user, password, vhost) =>
      `memory://${encodeURIComponent(user)}:${encodeURIComponent(password)}@${base}/${encodeURIComponent(vhost)}`,
    queues: (vhost) =>
      Promise.resolve(
        broker.queues(vhost).map((queue) => ({
          name: queue.name,
          ready: queue.ready,
          unacked: queue.unacked,
          consumers: queue.consumers,
          durable: queue.durable,
          autoDelete: queue.autoDelete,
          exclusive: queue.exclusive,
        })),
      ),
    exchanges: (vhost) =>
      Promise.resolve(
        broker.exchanges(vhost).map((exchange) => ({
          name: exchange.name,
          type: exchange.type,
          durable: exchange.durable,
          autoDelete: exchange.autoDelete,
        })),
      ),
    addVhost: () => {
      const vhost = uniqueName('qam_conf');
      broker.addVhost(vhost);
      broker.setPermissions('guest', vhost, { configure: '.*', write: '.*', read: '.*' });
      return Promise.resolve(vhost);
    },
    addUser: (name, password, vhost, permissions) => {
      broker.addUser(name, password);
      broker.setPermissions(name, vhost, permissions);
      return Promise.resolve();
    },
    faulty: (vhost) => {
      const connectionName = uniqueName('faulty');
      return Promise.resolve({
        options: { url: `${test.url}/${encodeURIComponent(vhost)}`, connectionName },
        cut: () => void broker.cut((connection) => connection.name === connectionName),
      });
    },
    blockable: () => Promise.resolve({ url: test.url, setBlocked: (on) => Promise.resolve(broker.setBlocked(on)) }),
    close: () => Promise.resolve(test.close()),
  };
}

/** One describe's broker: set up in beforeAll, everything it made closed in afterAll. */
class Session implements BrokerUnderTest {
  #backend: Backend | undefined;
  readonly #closables: Array<{ close(): Promise<unknown> }> = [];
  readonly #servers: QAMServer[] = [];

  constructor(readonly kind: BrokerKind) {}

  async open(): Promise<void> {
    this.#backend = this.kind === 'rabbitmq' ? await rabbitmq() : embedded();
  }

  async close(): Promise<void> {
    await Promise.all(this.#closables.splice(0).map((closable) => closable.close().catch(() => undefined)));
    await Promise.all(this.#servers.splice(0).map((server) => server.close({ deleteQueue: true }).catch(() => undefined)));
    await this.#backend?.close();
    this.#backend = undefined;
  }

  get #b(): Backend {
    if (this.#backend === undefined) throw new Error('the broker is set up in beforeAll: use it inside a test or hook');
    return this.#backend;
  }

  get name(): string {
    return this.kind === 'rabbitmq' ? 'RabbitMQ' : 'the embedded broker';
  }

  get vhost(): string {
    return this.#b.vhost;
  }

  get url(): string {
    return this.#b.urlFor('guest', 'guest', this.#b.vhost);
  }

  urlFor(user: { name: string; password: string }, vhost = this.vhost): string {
    return this.#b.urlFor(user.name, user.password, vhost);
  }

  track<T extends { close(): Promise<unknown> }>(closable: T): T {
    this.#closables.push(closable);
    return closable;
  }

  connection(options: Partial<ConnectionOptions> = {}): QAMConnection {
    return this.track(new QAMConnection({ url: this.url, logger: silentLogger, ...options }));
  }

  async channel(options: { confirms?: boolean; url?: string } = {}): Promise<AmqpChannel> {
    const connection = this.connection(options.url === undefined ? {} : { url: options.url });
    return connection.openChannel({ confirms: options.confirms ?? true });
  }

  server(options: Partial<QAMServerOptions> = {}): QAMServer {
    const where = options.connection === undefined && options.url === undefined ? { url: this.url } : {};
    const server = new QAMServer({ serverId: uniqueName('conf'), ...where, logger: silentLogger, ...options });
    this.#servers.push(server);
    return server;
  }

  proxy<Api extends object = Record<string, never>, S extends SerializerName = 'json'>(
    options: QAMProxyOptions & { serializer?: S },
  ): QAMProxy<Api, 'promise', S> {
    const where = options.connection === undefined && options.url === undefined ? { url: this.url } : {};
    return this.track(new QAMProxy<Api, S>({ ...where, logger: silentLogger, ...options }));
  }

  queues(vhost = this.vhost): Promise<QueueState[]> {
    return this.#b.queues(vhost);
  }

  async queue(name: string, vhost = this.vhost): Promise<QueueState | undefined> {
    return (await this.queues(vhost)).find((queue) => queue.name === name);
  }

  exchanges(vhost = this.vhost): Promise<ExchangeState[]> {
    return this.#b.exchanges(vhost);
  }

  addVhost(): Promise<string> {
    return this.#b.addVhost();
  }

  async addUser(permissions: (name: string) => Permissions, vhost = this.vhost): Promise<BrokerUser> {
    const name = uniqueName('conf_user');
    const password = uniqueName('pw');
    await this.#b.addUser(name, password, vhost, permissions(name));
    return { name, password, url: this.urlFor({ name, password }, vhost) };
  }

  faulty(): Promise<Faulty> {
    return this.#b.faulty(this.vhost);
  }

  blockable(): Promise<Blockable> {
    return this.#b.blockable();
  }
}

/** Registers the describe's set-up and clean-up; returns the broker its tests use. */
function use(kind: BrokerKind): () => BrokerUnderTest {
  return () => {
    const session = new Session(kind);
    beforeAll(() => session.open(), 60_000);
    afterAll(() => session.close(), 120_000);
    return session;
  };
}

/** For `describe.each(brokers)('on %s', (_name, useBroker) => …)`. */
export const brokers: ReadonlyArray<readonly [string, () => BrokerUnderTest]> = [
  ['RabbitMQ', use('rabbitmq')],
  ['the embedded broker', use('memory')],
];
