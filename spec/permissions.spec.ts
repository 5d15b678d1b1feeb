/**
 * callme's permission scheme: users with exactly the `rabbitmqctl set_permissions` regexes of
 * callme's documentation, in a vhost of this suite's own, and proxies with `replies: 'callme'`,
 * which declare only their own `client_<user>_` names. On RabbitMQ and on the embedded broker,
 * with the same assertions (spec/support/brokers.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { QAMConnection, QAMProxy, QAMServer, currentCall, silentLogger } from '../lib/index.js';
import type { AmqpChannel } from '../lib/amqp/port.js';
import { uniqueName, waitUntil, type Permissions } from './support/broker.js';
import { brokers, type BrokerUnderTest, type BrokerUser } from './support/brokers.js';

/** callme's recipe for a server user: only its own names, and replies to client exchanges. */
const serverPermissions = (serverId: string) => ({
  configure: `server_${serverId}_.*`,
  write: `server_${serverId}_.*|client_.*_ex_.*`,
  read: `server_${serverId}_.*`,
});

/** callme's recipe for a client user: only its own names, and the exchanges of the servers it may call. */
const clientPermissions = (user: string, servers: string) => ({
  configure: `client_${user}_.*`,
  write: `client_${user}_.*|${servers}`,
  read: `client_${user}_.*`,
});

/** Requests the broker refuses close the channel: resolves with the reply code. */
async function amqpRefusal(broker: BrokerUnderTest, operation: (channel: AmqpChannel) => Promise<unknown>, url: string): Promise<unknown> {
  const channel = await broker.channel({ url, confirms: false });
  return operation(channel).then(
    () => undefined,
    (error: unknown) => (error as { replyCode?: unknown }).replyCode,
  );
}

describe.each(brokers)("callme's permission scheme on %s", (_name, useBroker) => {
  const broker = useBroker();
  const foo = uniqueName('foo');
  const bar = uniqueName('bar');
  const servers: QAMServer[] = [];
  /** Why each run of `untilAborted` ended: its signal's reason. */
  const endings: unknown[] = [];
  /** Runs of each server's `count` function. */
  const runs = new Map<string, number>();
  let carl: BrokerUser;
  let olivia: BrokerUser;
  let oscar: BrokerUser;
  let anyone: BrokerUser;

  const urlOf = (user: BrokerUser): string => user.url;
  const proxyFor = (user: BrokerUser, serverId: string, connection?: QAMConnection): QAMProxy =>
    new QAMProxy({
      serverId,
      replies: 'callme',
      timeout: 5,
      logger: silentLogger,
      ...(connection === undefined ? { url: urlOf(user) } : { connection }),
    });

  beforeAll(async () => {
    const user = (permissions: (name: string) => Permissions): Promise<BrokerUser> => broker.addUser(permissions);
    let dave: BrokerUser;
    [carl, dave, olivia, oscar, anyone] = await Promise.all([
      user(() => serverPermissions(foo)),
      user(() => serverPermissions(bar)),
      user((name) => clientPermissions(name, `server_${foo}_ex`)),
      user((name) => clientPermissions(name, `server_${foo}_ex|server_${bar}_ex`)),
      user((name) => clientPermissions(name, 'server_.*_ex')),
    ]);
    for (const [serverId, owner] of [
      [foo, carl],
      [bar, dave],
    ] as const) {
      const server = new QAMServer({ serverId, url: urlOf(owner), logger: silentLogger })
        .registerFunction((a: number, b: number) => a + b, 'add')
        .registerFunction(async (ms: number) => new Promise((resolve) => setTimeout(resolve, ms, ms)), 'sleep')
        .registerFunction(() => runs.set(serverId, (runs.get(serverId) ?? 0) + 1).size, 'count')
        .registerFunction(async () => {
          const signal = currentCall()!.signal;
          await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
          endings.push(signal.reason);
        }, 'untilAborted');
      servers.push(server);
      await server.serve();
    }
  });

  afterAll(async () => {
    await Promise.all(servers.map((server) => server.close({ deleteQueue: true })));
  });

  it('lets each client call the servers it may reach, through its own auto-delete reply names', async () => {
    const oliviaFoo = proxyFor(olivia, foo);
    const oscarFoo = proxyFor(oscar, foo);
    const oscarBar = proxyFor(oscar, bar);
    try {
      await expect(oliviaFoo.add(1, 2)).resolves.toBe(3);
      await expect(oscarFoo.add(3, 4)).resolves.toBe(7);
      await expect(oscarBar.add(5, 6)).resolves.toBe(11);

      const oliviaQueues = (await broker.queues()).filter((queue) => queue.name.startsWith(`client_${olivia.name}_queue_`));
      expect(oliviaQueues).toEqual([expect.objectContaining({ durable: false, autoDelete: true })]);
      const oliviaExchanges = (await broker.exchanges()).filter((exchange) => exchange.name.startsWith(`client_${olivia.name}_ex_`));
      expect(oliviaExchanges).toEqual([{ name: expect.any(String), type: 'fanout', durable: false, autoDelete: true }]);
    } finally {
      await Promise.all([oliviaFoo.close(), oscarFoo.close(), oscarBar.close()]);
    }
    const left = (await broker.queues()).map((queue) => queue.name).join('\n');
    expect(left).not.toContain(`client_${olivia.name}_`);
    expect(left).not.toContain(`client_${oscar.name}_`);
  });

  it('fails a call to a server the user may not reach at once with ACCESS_REFUSED, leaving other calls alone', async () => {
    const connection = new QAMConnection({ url: urlOf(olivia), logger: silentLogger });
    const allowed = proxyFor(olivia, foo, connection);
    const forbidden = proxyFor(olivia, bar, connection);
    try {
      const started = Date.now();
      const before = Array.from({ length: 10 }, (_, i) => allowed.add(i, 1));
      const refused = forbidden.add(1, 1);
      const after = Array.from({ length: 10 }, (_, i) => allowed.add(i, 2));
      await expect(refused).rejects.toMatchObject({ name: 'QAMAccessRefusedException', code: 'ACCESS_REFUSED' });
      expect(Date.now() - started).toBeLessThan(2000);
      await expect(Promise.all([...before, ...after])).resolves.toEqual([
        ...Array.from({ length: 10 }, (_, i) => i + 1),
        ...Array.from({ length: 10 }, (_, i) => i + 2),
      ]);

      // The refused publish closed only that proxy's publish channel; the next calls open another.
      await expect(forbidden.add(2, 2)).rejects.toMatchObject({ code: 'ACCESS_REFUSED' });
      await expect(allowed.add(2, 2)).resolves.toBe(4);
      expect(connection.connected).toBe(true);
      expect(forbidden.getStats().pending).toBe(0);
    } finally {
      await Promise.all([allowed.close(), forbidden.close()]);
      await connection.close();
    }
  });

  it("a cancel reaches the server instance with the client's and the server's rights alone", async () => {
    const proxy = proxyFor(olivia, foo);
    const controller = new AbortController();
    try {
      const call = proxy
        .withStartNotice(() => controller.abort())
        .withSignal(controller.signal)
        .invoke('untilAborted');
      await expect(call).rejects.toMatchObject({ code: 'ABORTED' });
      // Well before the call's 5 s deadline, the function's signal aborted for the cancel.
      await waitUntil(() => endings.length === 1, { timeoutMs: 4000, message: 'the server function saw the cancel' });
      expect(endings).toEqual([expect.objectContaining({ code: 'ABORTED', message: 'The caller of untilAborted cancelled it' })]);
    } finally {
      await proxy.close();
    }
  });

  it("ignores a cancel from another user than the caller's, who would have to know the call's id", async () => {
    const proxy = proxyFor(olivia, foo);
    let noticed = false;
    const failed: unknown[] = [];
    try {
      const uid = proxy
        .withStartNotice(() => (noticed = true))
        .callback(
          () => undefined,
          (error) => failed.push(error),
        )
        .invoke('untilAborted');
      await waitUntil(() => noticed, { message: 'the started notice' });
      const instance = proxy.startedBy(uid)!;
      const cancels = `server_${foo}_cancel_${instance.slice(foo.length + 1)}`;
      // Oscar may write to foo's exchange too: a cancel of olivia's call, with her call id, as oscar.
      const channel = await broker.channel({ url: urlOf(oscar), confirms: true });
      await new Promise<void>((resolve, reject) =>
        channel.publish(
          `server_${foo}_ex`,
          cancels,
          Buffer.alloc(0),
          { correlationId: uid, userId: oscar.name, headers: { 'x-qam-wire': 2, 'x-qam-kind': 'cancel' } },
          { mandatory: false },
          (failure) => (failure === undefined ? resolve() : reject(failure)),
        ),
      );
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(endings).toHaveLength(1);
      expect(proxy.cancel(uid)).toBe(true);
      await waitUntil(() => endings.length === 2, { timeoutMs: 4000, message: "the caller's own cancel" });
      expect(failed).toEqual([expect.objectContaining({ code: 'ABORTED' })]);
    } finally {
      await proxy.close();
    }
  });

  it('keeps answering after a proxy went away before its reply (its auto-delete exchange is gone)', async () => {
    const gone = proxyFor(olivia, foo);
    const closed = expect(gone.sleep(300)).rejects.toMatchObject({ code: 'CLOSED' });
    await new Promise((resolve) => setTimeout(resolve, 100));
    await gone.close();
    await closed;
    await new Promise((resolve) => setTimeout(resolve, 400));
    const proxy = proxyFor(oscar, foo);
    try {
      await expect(Promise.all([proxy.add(1, 1), proxy.sleep(10)])).resolves.toEqual([2, 10]);
    } finally {
      await proxy.close();
    }
  });

  it('fails a call to a server whose exchange does not exist at once with NO_ROUTE', async () => {
    const proxy = proxyFor(anyone, uniqueName('absent'));
    try {
      const started = Date.now();
      await expect(proxy.add(1, 1)).rejects.toMatchObject({ code: 'NO_ROUTE' });
      expect(Date.now() - started).toBeLessThan(2000);
    } finally {
      await proxy.close();
    }
  });

  it('refuses direct reply-to to a client user, whose rights do not cover the default exchange', async () => {
    const proxy = new QAMProxy({ serverId: foo, url: urlOf(olivia), timeout: 5, logger: silentLogger });
    try {
      await expect(proxy.add(1, 1)).rejects.toMatchObject({ code: 'ACCESS_REFUSED' });
    } finally {
      await proxy.close();
    }
  });

  it('runs a request once and keeps consuming when its user may not publish the direct reply-to reply', async () => {
    // guest, with every right in the vhost, asks for a direct reply; carl's rights do not cover
    // the default exchange, so the broker refuses the reply with 403 and closes the channel it
    // was published on. That must be neither the consuming channel nor a reason to run it again.
    {
      const channel = await broker.channel({ confirms: false });
      const replies: unknown[] = [];
      await channel.consume('amq.rabbitmq.reply-to', (message) => replies.push(message), { noAck: true });
      channel.publish(
        `server_${foo}_ex`,
        foo,
        Buffer.from(JSON.stringify({ method: 'count', params: [] })),
        { replyTo: 'amq.rabbitmq.reply-to', correlationId: 'refused', contentType: 'application/json' },
        { mandatory: false },
      );
      await waitUntil(() => (runs.get(foo) ?? 0) >= 1, { message: 'the request running' });
      const proxy = proxyFor(oscar, foo);
      try {
        await expect(proxy.add(1, 2)).resolves.toBe(3);
      } finally {
        await proxy.close();
      }
      await waitUntil(
        async () => {
          const queue = await broker.queue(`server_${foo}_queue`);
          return queue !== undefined && queue.ready + queue.unacked === 0;
        },
        { message: 'the request leaving the queue' },
      );
      // Redelivered in a loop, it would have run again within the consumer's restart delay (1 s).
      await new Promise((resolve) => setTimeout(resolve, 2500));
      expect(runs.get(foo)).toBe(1);
      expect(replies).toEqual([]);
    }
  });

  it("keeps a client from consuming a server's request queue", async () => {
    expect(
      await amqpRefusal(broker, (channel) => channel.consume(`server_${foo}_queue`, () => undefined, { noAck: false }), urlOf(olivia)),
    ).toBe(403);
    const impostor = new QAMServer({ serverId: foo, url: urlOf(olivia), logger: silentLogger }).registerFunction(() => 0, 'add');
    await expect(impostor.serve()).rejects.toMatchObject({ name: 'QAMAccessRefusedException', code: 'ACCESS_REFUSED' });
  });

  it('keeps a server from answering as another server', async () => {
    const impostor = new QAMServer({ serverId: bar, url: urlOf(carl), logger: silentLogger }).registerFunction(() => 0, 'add');
    await expect(impostor.serve()).rejects.toMatchObject({ code: 'ACCESS_REFUSED' });
    expect(
      await amqpRefusal(broker, (channel) => channel.consume(`server_${bar}_queue`, () => undefined, { noAck: false }), urlOf(carl)),
    ).toBe(403);
    // Nor can it tap bar's requests with a queue of its own bound to bar's exchange.
    const tap = `server_${foo}_tap`;
    expect(
      await amqpRefusal(
        broker,
        async (channel) => {
          await channel.declareQueue(tap, { durable: false, exclusive: true, autoDelete: false });
          await channel.bindQueue(tap, `server_${bar}_ex`, bar);
        },
        urlOf(carl),
      ),
    ).toBe(403);
    const proxy = proxyFor(oscar, bar);
    try {
      await expect(proxy.add(20, 22)).resolves.toBe(42);
    } finally {
      await proxy.close();
    }
  });
});
