import type { Delivery, PortError } from '../../../../lib/amqp/port.js';
import {
  Collector,
  closeBrokers,
  collect,
  connect,
  declare,
  freshBroker,
  open,
  passes,
  publishConfirmed,
  text,
  whenClosed,
} from './helpers.js';

afterEach(closeBrokers);

describe('embedded broker: cutting connections', () => {
  it('cuts the connections a filter picks, as a network failure: closed, unacknowledged requeued, exclusive queues gone', async () => {
    const { url, broker } = freshBroker();
    const bystander = await open(url);
    await declare(bystander.channel, 'work');
    await publishConfirmed(bystander.channel, '', 'work', 'job');
    const server = await connect(url, 'server');
    const channel = await server.openChannel({ confirms: true });
    await declare(channel, 'private', { exclusive: true });
    const { deliveries } = await collect(channel, 'work');
    await deliveries.until(1);
    const connectionClosed = whenClosed(server);
    const channelClosed = whenClosed(channel);
    // Processed by the broker, but its confirm never makes it back.
    const confirmation = publishConfirmed(channel, '', 'work', 'sent just before the cut');
    expect(broker.cut((connection) => connection.name === 'server')).toBe(1);
    await expect(connectionClosed).resolves.toMatchObject({ kind: 'closed' });
    await expect(channelClosed).resolves.toBeUndefined();
    await expect(confirmation).resolves.toMatchObject({ kind: 'closed' });
    expect(broker.queues().map((queue) => queue.name)).toEqual(['work']);
    expect(broker.queues()[0]).toMatchObject({ ready: 2, unacked: 0, consumers: 0 });
    expect(broker.connections().map((connection) => connection.name)).toEqual([undefined]);
    await expect(server.openChannel({ confirms: false })).rejects.toMatchObject({ kind: 'closed' });
    expect(() => channel.publish('', 'work', Buffer.from('x'), {}, { mandatory: false })).toThrow(
      expect.objectContaining({ kind: 'closed' }) as unknown as Error,
    );
    const again = await collect(bystander.channel, 'work', true);
    await again.deliveries.until(2);
    expect(again.deliveries.items.map((delivery) => [text(delivery), delivery.redelivered])).toEqual([
      ['job', true],
      ['sent just before the cut', false],
    ]);
  });

  it('drops what the broker had not handed over yet when the connection is cut', async () => {
    const { url, broker } = freshBroker();
    const connection = await connect(url, 'client');
    const channel = await connection.openChannel({ confirms: true });
    const replies = new Collector<Delivery>();
    await channel.consume('amq.rabbitmq.reply-to', replies.push, { noAck: true });
    const server = await open(url);
    await declare(server.channel, 'q');
    const requests = new Collector<Delivery>();
    await server.channel.consume('q', requests.push, { noAck: true });
    await publishConfirmed(channel, '', 'q', 'call', { replyTo: 'amq.rabbitmq.reply-to' });
    const [request] = await requests.until(1);
    const closed = whenClosed(connection);
    server.channel.publish('', request!.properties.replyTo as string, Buffer.from('reply'), {}, { mandatory: false });
    broker.cut((info) => info.name === 'client');
    await closed;
    await passes();
    expect(replies.items).toEqual([]);
  });
});

describe('embedded broker: blocking connections (a resource alarm)', () => {
  it('tells connections, routes the first publish and holds what follows it until unblocked, then runs that in order', async () => {
    const { url, broker } = freshBroker();
    const { connection, channel } = await open(url);
    await declare(channel, 'q');
    const events = new Collector<[boolean, string | undefined]>();
    connection.onBlocked((blocked, reason) => events.push([blocked, reason]));
    broker.setBlocked(true);
    expect(connection.blocked).toBe(true);
    expect(broker.connections()[0]).toMatchObject({ blocked: true });
    await expect(events.until(1)).resolves.toEqual([[true, 'low on memory']]);
    // Until the first publish, the broker still reads the connection.
    await expect(declare(channel, 'before')).resolves.toBeUndefined();
    const confirmations: Array<PortError | undefined> = [];
    const written: boolean[] = [];
    for (let i = 0; i < 30; i++) {
      written.push(channel.publish('', 'q', Buffer.alloc(1024, i), {}, { mandatory: false }, (failure) => confirmations.push(failure)));
    }
    // As the amqplib adapter on a blocked connection: accepted, but the caller should wait.
    expect(written).toEqual(Array.from({ length: 30 }, () => false));
    let writable = false;
    const waited = channel.whenWritable().then(() => (writable = true));
    let declared = false;
    const declaring = declare(channel, 'after').then(() => (declared = true));
    await passes(5);
    // The broker read the publish that made it stop reading the connection, as RabbitMQ's reader does.
    expect(broker.queues().find((queue) => queue.name === 'q')).toMatchObject({ ready: 1 });
    expect([writable, declared, confirmations.length]).toEqual([false, false, 1]);
    broker.setBlocked(false);
    await Promise.all([waited, declaring]);
    await passes();
    expect(connection.blocked).toBe(false);
    expect(events.items).toEqual([
      [true, 'low on memory'],
      [false, undefined],
    ]);
    expect(confirmations).toEqual(Array.from({ length: 30 }, () => undefined));
    const { deliveries } = await collect(channel, 'q', true);
    await deliveries.until(30);
    expect(deliveries.items.map((delivery) => delivery.content[0])).toEqual(Array.from({ length: 30 }, (_, i) => i));
  });

  it('blocks connections opened during the alarm, and closes a blocked connection at once, failing what it held', async () => {
    const { url, broker } = freshBroker();
    broker.setBlocked(true, 'low on disk');
    const { connection, channel } = await open(url);
    expect(connection.blocked).toBe(true);
    const reasons = new Collector<string | undefined>();
    connection.onBlocked((_, reason) => reasons.push(reason));
    const read = publishConfirmed(channel, '', 'q', 'read');
    const confirmation = publishConfirmed(channel, '', 'q', 'held');
    await passes();
    await connection.close();
    await expect(read).resolves.toBeUndefined();
    await expect(confirmation).resolves.toMatchObject({ kind: 'closed' });
    await expect(channel.whenWritable()).rejects.toMatchObject({ kind: 'closed' });
    expect(reasons.items).toEqual(['low on disk']);
  });

  it('lets the client close a channel of a blocked connection without waiting; the broker closes it after what it held', async () => {
    const { url, broker } = freshBroker();
    const { connection, channel } = await open(url);
    await declare(channel, 'q');
    broker.setBlocked(true);
    await expect(publishConfirmed(channel, '', 'q', 'read')).resolves.toBeUndefined();
    const confirmation = publishConfirmed(channel, '', 'q', 'held');
    let closedWith: PortError | undefined | 'open' = 'open';
    channel.onClose((error) => (closedWith = error));
    await channel.close();
    await passes();
    expect([closedWith, broker.queues()[0]?.ready]).toEqual(['open', 1]);
    broker.setBlocked(false);
    await expect(confirmation).resolves.toBeUndefined();
    await passes();
    expect([closedWith, broker.queues()[0]?.ready]).toEqual([undefined, 2]);
    await connection.close();
  });
});

describe('embedded broker: listings and reset', () => {
  it('lists connections, queues, exchanges and bindings', async () => {
    const { url, broker } = freshBroker();
    const connection = await connect(url, 'lister');
    const channel = await connection.openChannel({ confirms: false });
    await declare(channel, 'q', { durable: true, expires: 60_000 });
    await channel.bindQueue('q', 'amq.topic', 'a.#');
    expect(broker.connections()).toEqual([
      { id: expect.any(Number), name: 'lister', user: 'guest', vhost: '/', channels: 1, blocked: false },
    ]);
    expect(broker.queues()).toEqual([
      {
        name: 'q',
        ready: 0,
        unacked: 0,
        consumers: 0,
        durable: true,
        exclusive: false,
        autoDelete: false,
        arguments: { 'x-expires': 60_000 },
      },
    ]);
    expect(broker.exchanges().map((exchange) => exchange.name)).toEqual([
      '',
      'amq.direct',
      'amq.fanout',
      'amq.topic',
      'amq.headers',
      'amq.match',
      'amq.rabbitmq.trace',
    ]);
    expect(broker.bindings()).toEqual([{ exchange: 'amq.topic', queue: 'q', routingKey: 'a.#' }]);
    expect(() => broker.queues('nowhere')).toThrow(expect.objectContaining({ code: 'NO_SUCH_VHOST' }) as unknown as Error);
  });

  it('resets to a fresh broker, closing connections with 320 CONNECTION_FORCED', async () => {
    const { url, broker } = freshBroker();
    const { connection, channel } = await open(url);
    await declare(channel, 'q');
    broker.addUser('app', 'secret');
    broker.addVhost('v');
    const closed = whenClosed(connection);
    broker.reset();
    await expect(closed).resolves.toMatchObject({
      kind: 'closed',
      replyCode: 320,
      message: "CONNECTION_FORCED - broker forced connection closure with reason 'shutdown'",
    });
    expect([broker.queues(), broker.users(), broker.vhosts(), broker.connections()]).toEqual([[], ['guest'], ['/'], []]);
    await expect(connect(url)).resolves.toBeDefined();
  });

  it('closes the connections of a deleted vhost with 320', async () => {
    const { url, broker } = freshBroker();
    broker.addVhost('v');
    broker.setPermissions('guest', 'v', { configure: '.*', write: '.*', read: '.*' });
    const inside = await connect(`${url}/v`);
    const outside = await connect(url);
    const closed = whenClosed(inside);
    broker.deleteVhost('v');
    await expect(closed).resolves.toMatchObject({ kind: 'closed', replyCode: 320, message: "CONNECTION_FORCED - vhost 'v' is down" });
    expect(broker.connections()).toHaveLength(1);
    await outside.close();
  });

  it("closes a deleted user's connections with 320", async () => {
    const { url, broker } = freshBroker();
    broker.addUser('app', 'pw');
    broker.setPermissions('app', '/', { configure: '.*', write: '.*', read: '.*' });
    const connection = await connect(url.replace('memory://', 'memory://app:pw@'));
    const guest = await connect(url);
    const closed = whenClosed(connection);
    broker.deleteUser('app');
    await expect(closed).resolves.toMatchObject({ kind: 'closed', replyCode: 320, message: "CONNECTION_FORCED - user 'app' is deleted" });
    expect(broker.connections()).toEqual([expect.objectContaining({ user: 'guest' })]);
    await guest.close();
  });
});

describe('embedded broker: scheduling', () => {
  it('never runs a consumer inside publish(); runs it on a later turn of the event loop', async () => {
    const { url } = freshBroker();
    const { channel } = await open(url);
    await declare(channel, 'q');
    let publishing = false;
    const seen = new Collector<boolean>();
    await channel.consume('q', () => seen.push(publishing), { noAck: true });
    publishing = true;
    channel.publish('', 'q', Buffer.from('x'), {}, { mandatory: false });
    await Promise.resolve();
    expect(seen.items).toEqual([]);
    publishing = false;
    await expect(seen.until(1)).resolves.toEqual([false]);
  });

  it('leaves nothing behind after many acknowledged deliveries', async () => {
    const { url, broker } = freshBroker();
    const { channel } = await open(url);
    await declare(channel, 'q');
    await channel.prefetch(50);
    let received = 0;
    const done = new Collector<void>();
    await channel.consume(
      'q',
      (delivery) => {
        channel.ack(delivery);
        if (++received === 20_000) done.push();
      },
      { noAck: false },
    );
    for (let i = 0; i < 20_000; i++) channel.publish('', 'q', Buffer.from('x'), {}, { mandatory: false });
    await done.until(1);
    await passes();
    expect(broker.queues()[0]).toMatchObject({ ready: 0, unacked: 0 });
  });
});
