/**
 * The AMQP semantics qam relies on, through the AMQP port, on RabbitMQ and on the embedded broker
 * with the same assertions: each item of the embedded broker's list (issue 12) has a test here, so
 * the embedded broker is held to what RabbitMQ does. The embedded broker's own unit tests
 * (spec/unit/amqp/memory) go into more detail; the hooks (cut, block, list) are exercised on both
 * brokers by faults-hooks.spec.ts, server-close-blocked.spec.ts and the listings below.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { AmqpChannel, Delivery, PortError, Returned } from '../../lib/amqp/port.js';
import { uniqueName, waitUntil } from '../support/broker.js';
import { brokers } from '../support/brokers.js';

const replyTo = 'amq.rabbitmq.reply-to';

/** Collects what a handler receives; `until(n)` resolves once `n` arrived (fails after 10 s). */
class Collector<T> {
  readonly items: T[] = [];
  readonly push = (item: T): void => {
    this.items.push(item);
  };

  async until(count: number): Promise<T[]> {
    await waitUntil(() => this.items.length >= count, { message: `${count} items`, intervalMs: 5 });
    return this.items;
  }
}

const text = (delivery: { content: Buffer }): string => delivery.content.toString();

function publishConfirmed(
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

function whenClosed(channel: AmqpChannel): Promise<PortError | undefined> {
  return new Promise((resolve) => channel.onClose(resolve));
}

const plain = { durable: false, exclusive: false, autoDelete: false };

describe.each(brokers)('on %s', (_name, useBroker) => {
  const broker = useBroker();

  /** A queue of the test's own, consumed into a collector. */
  async function consumed(channel: AmqpChannel, noAck = true): Promise<{ queue: string; deliveries: Collector<Delivery> }> {
    const queue = uniqueName('q');
    await channel.declareQueue(queue, plain);
    const deliveries = new Collector<Delivery>();
    await channel.consume(queue, deliveries.push, { noAck });
    return { queue, deliveries };
  }

  describe('exchanges and routing', () => {
    it('routes by the default, direct, fanout and topic exchanges, and returns a mandatory message nothing takes (312 NO_ROUTE)', async () => {
      const channel = await broker.channel();
      const { queue: a, deliveries: atA } = await consumed(channel);
      const { queue: b, deliveries: atB } = await consumed(channel);
      const direct = uniqueName('direct');
      const fanout = uniqueName('fanout');
      const topic = uniqueName('topic');
      const options = { durable: false, autoDelete: false };
      await channel.declareExchange(direct, 'direct', options);
      await channel.declareExchange(fanout, 'fanout', options);
      await channel.declareExchange(topic, 'topic', options);
      await channel.bindQueue(a, direct, 'to-a');
      await channel.bindQueue(a, fanout, 'ignored');
      await channel.bindQueue(b, fanout, '');
      await channel.bindQueue(b, topic, 'price.*.eur');
      await channel.bindQueue(a, topic, 'price.#');
      const returned = new Collector<Returned>();
      channel.onReturn(returned.push);
      for (const [exchange, key, body] of [
        ['', a, 'default'],
        [direct, 'to-a', 'direct'],
        [direct, 'to-nobody', 'direct-unrouted'],
        [fanout, 'any', 'fanout'],
        [topic, 'price.gold.eur', 'topic-both'],
        [topic, 'price', 'topic-a'],
        [topic, 'volume.gold.eur', 'topic-none'],
      ] as const) {
        expect(await publishConfirmed(channel, exchange, key, body, { correlationId: body }, true)).toBeUndefined();
      }
      await atA.until(5);
      await atB.until(2);
      await returned.until(2);
      await delay(100);
      expect(atA.items.map(text)).toEqual(['default', 'direct', 'fanout', 'topic-both', 'topic-a']);
      expect(atB.items.map(text)).toEqual(['fanout', 'topic-both']);
      expect(returned.items.map((message) => [message.replyCode, message.replyText, text(message)])).toEqual([
        [312, 'NO_ROUTE', 'direct-unrouted'],
        [312, 'NO_ROUTE', 'topic-none'],
      ]);
      expect(returned.items[0]?.properties.correlationId).toBe('direct-unrouted');
      for (const exchange of [direct, fanout, topic]) await channel.deleteExchange(exchange);
      await channel.deleteQueue(a);
      await channel.deleteQueue(b);
    });

    it('fails a publish to an exchange that does not exist with 404, closing the channel', async () => {
      const channel = await broker.channel();
      const closed = whenClosed(channel);
      const confirmation = publishConfirmed(channel, uniqueName('absent'), 'x', 'lost');
      await expect(closed).resolves.toMatchObject({ kind: 'not-found', replyCode: 404 });
      await expect(confirmation).resolves.toMatchObject({ kind: 'not-found' });
      await expect(channel.checkExchange('amq.direct')).rejects.toMatchObject({ kind: 'not-found' });
    });

    it('keeps vhosts apart: a queue of one is not a route in another', async () => {
      const other = await broker.addVhost();
      const there = await broker.channel({ url: broker.urlFor({ name: 'guest', password: 'guest' }, other) });
      const here = await broker.channel();
      const queue = uniqueName('q');
      await there.declareQueue(queue, plain);
      const returned = new Collector<Returned>();
      here.onReturn(returned.push);
      expect(await publishConfirmed(here, '', queue, 'elsewhere', {}, true)).toBeUndefined();
      await returned.until(1);
      expect(returned.items[0]).toMatchObject({ replyCode: 312, routingKey: queue });
      await expect(here.checkExchange(uniqueName('absent'))).rejects.toMatchObject({ kind: 'not-found', replyCode: 404 });
    }, 90_000);
  });

  describe('queues', () => {
    it("refuses a redeclaration with other flags (406 PRECONDITION_FAILED), and another connection's exclusive queue (405)", async () => {
      const channel = await broker.channel();
      const queue = uniqueName('q');
      await channel.declareQueue(queue, { durable: true, exclusive: false, autoDelete: false });
      await channel.declareQueue(queue, { durable: true, exclusive: false, autoDelete: false });
      const closed = whenClosed(channel);
      await expect(channel.declareQueue(queue, plain)).rejects.toMatchObject({ kind: 'precondition-failed', replyCode: 406 });
      expect((await closed)?.message).toContain(`inequivalent arg 'durable' for queue '${queue}'`);

      const owner = await broker.channel();
      const exclusive = uniqueName('q');
      await owner.declareQueue(exclusive, { durable: false, exclusive: true, autoDelete: false });
      const stranger = await broker.channel();
      await expect(stranger.consume(exclusive, () => undefined, { noAck: true })).rejects.toMatchObject({
        kind: 'resource-locked',
        replyCode: 405,
      });
      const cleanup = await broker.channel();
      await cleanup.deleteQueue(queue);
      await owner.deleteQueue(exclusive);
    });

    it('deletes an auto-delete queue after its last consumer goes, and an exclusive one with its connection; lists what it has', async () => {
      const connection = broker.connection();
      const channel = await connection.openChannel({ confirms: true });
      const autoDelete = uniqueName('auto');
      const exclusive = uniqueName('excl');
      const durable = uniqueName('durable');
      await channel.declareQueue(autoDelete, { durable: false, exclusive: false, autoDelete: true });
      await channel.declareQueue(exclusive, { durable: false, exclusive: true, autoDelete: false });
      await channel.declareQueue(durable, { durable: true, exclusive: false, autoDelete: false });
      const first = await channel.consume(autoDelete, () => undefined, { noAck: true });
      const second = await channel.consume(autoDelete, () => undefined, { noAck: true });
      expect(await publishConfirmed(channel, '', durable, 'kept')).toBeUndefined();
      const listed = async (): Promise<Record<string, unknown>> =>
        Object.fromEntries(
          (await broker.queues())
            .filter((queue) => [autoDelete, exclusive, durable].includes(queue.name))
            .map((queue) => [queue.name, queue]),
        );
      expect(await listed()).toEqual({
        [autoDelete]: { name: autoDelete, ready: 0, unacked: 0, consumers: 2, durable: false, autoDelete: true, exclusive: false },
        [exclusive]: { name: exclusive, ready: 0, unacked: 0, consumers: 0, durable: false, autoDelete: false, exclusive: true },
        [durable]: { name: durable, ready: 1, unacked: 0, consumers: 0, durable: true, autoDelete: false, exclusive: false },
      });
      await channel.cancel(first);
      expect(Object.keys(await listed())).toContain(autoDelete);
      await channel.cancel(second);
      await connection.close();
      await waitUntil(async () => Object.keys(await listed()).join() === durable, { message: 'only the durable queue left' });
      const cleanup = await broker.channel();
      await cleanup.deleteQueue(durable);
    }, 90_000);

    it('deletes a queue unused for its x-expires', async () => {
      const channel = await broker.channel();
      const queue = uniqueName('expiring');
      await channel.declareQueue(queue, { ...plain, expires: 300 });
      await waitUntil(async () => (await broker.queue(queue)) === undefined, { message: 'the queue expiring', timeoutMs: 15_000 });
      await expect(channel.declareQueue(queue, plain)).resolves.toBeUndefined();
      await channel.deleteQueue(queue);
    }, 90_000);

    it('tells a consumer when its queue is deleted', async () => {
      const channel = await broker.channel();
      const queue = uniqueName('q');
      await channel.declareQueue(queue, plain);
      let cancelled = 0;
      await channel.consume(
        queue,
        () => undefined,
        { noAck: true },
        () => cancelled++,
      );
      const other = await broker.channel();
      await other.deleteQueue(queue);
      await waitUntil(() => cancelled === 1, { message: 'the consumer cancelled' });
      // The channel stays open.
      await expect(channel.checkExchange('amq.fanout')).resolves.toBeUndefined();
    });
  });

  describe('messages', () => {
    it('confirms a publish, and drops a message whose expiration passed once it reaches the head of its queue', async () => {
      const channel = await broker.channel();
      const queue = uniqueName('q');
      await channel.declareQueue(queue, plain);
      expect(await publishConfirmed(channel, '', queue, 'first')).toBeUndefined();
      expect(await publishConfirmed(channel, '', queue, 'expires', { expiration: '50' })).toBeUndefined();
      expect(await publishConfirmed(channel, '', queue, 'last')).toBeUndefined();
      await delay(300);
      // Behind 'first', the expired message still counts; it is dropped when it reaches the head.
      expect(await broker.queue(queue)).toMatchObject({ ready: 3 });
      const deliveries = new Collector<Delivery>();
      await channel.consume(queue, deliveries.push, { noAck: true });
      await deliveries.until(2);
      await delay(100);
      expect(deliveries.items.map(text)).toEqual(['first', 'last']);
      expect(await publishConfirmed(channel, '', queue, 'gone', { expiration: '0' })).toBeUndefined();
      expect(await publishConfirmed(channel, '', queue, 'alone', { expiration: '60000' })).toBeUndefined();
      await deliveries.until(4);
      expect(deliveries.items.map(text)).toEqual(['first', 'last', 'gone', 'alone']);
      await channel.deleteQueue(queue);
    }, 90_000);

    it('copies messages as bytes: what the publisher changes afterwards, nor what a consumer changes, reaches no one else', async () => {
      const channel = await broker.channel();
      const fanout = uniqueName('fanout');
      await channel.declareExchange(fanout, 'fanout', { durable: false, autoDelete: false });
      const { queue: a, deliveries: atA } = await consumed(channel);
      const { queue: b, deliveries: atB } = await consumed(channel);
      await channel.bindQueue(a, fanout, '');
      await channel.bindQueue(b, fanout, '');
      const body = Buffer.from('original');
      const headers: Record<string, unknown> = { tag: 'original', nested: { n: 1 } };
      const confirmed = publishConfirmed(channel, fanout, '', body, { headers });
      body.write('MUTATED!');
      headers['tag'] = 'mutated';
      expect(await confirmed).toBeUndefined();
      const [first] = await atA.until(1);
      first!.content.write('changed!');
      const [second] = await atB.until(1);
      expect(text(second!)).toBe('original');
      expect(second!.properties.headers).toEqual({ tag: 'original', nested: { n: 1 } });
      expect(first!.content).not.toBe(second!.content);
      await channel.deleteExchange(fanout);
      await channel.deleteQueue(a);
      await channel.deleteQueue(b);
    });
  });

  describe('consumers', () => {
    it('holds back deliveries beyond the prefetch until one is acknowledged', async () => {
      const channel = await broker.channel();
      const queue = uniqueName('q');
      await channel.declareQueue(queue, plain);
      for (let i = 1; i <= 5; i++) expect(await publishConfirmed(channel, '', queue, String(i))).toBeUndefined();
      await channel.prefetch(2);
      const deliveries = new Collector<Delivery>();
      await channel.consume(queue, deliveries.push, { noAck: false });
      await deliveries.until(2);
      await delay(200);
      expect(deliveries.items.map(text)).toEqual(['1', '2']);
      channel.ack(deliveries.items[0]!);
      await deliveries.until(3);
      await delay(200);
      expect(deliveries.items.map(text)).toEqual(['1', '2', '3']);
      await channel.deleteQueue(queue);
    });

    it('requeues a nacked delivery marked redelivered, drops one nacked without requeue, and redelivers what a closed channel held', async () => {
      const channel = await broker.channel();
      const queue = uniqueName('q');
      await channel.declareQueue(queue, plain);
      for (const body of ['a', 'b']) expect(await publishConfirmed(channel, '', queue, body)).toBeUndefined();
      const consumer = await broker.channel();
      await consumer.prefetch(1);
      const deliveries = new Collector<Delivery>();
      await consumer.consume(queue, deliveries.push, { noAck: false });
      const [first] = await deliveries.until(1);
      expect(first).toMatchObject({ redelivered: false });
      consumer.nack(first!, true);
      const [, again] = await deliveries.until(2);
      expect([text(again!), again!.redelivered]).toEqual(['a', true]);
      consumer.nack(again!, false);
      const [, , next] = await deliveries.until(3);
      expect([text(next!), next!.redelivered]).toEqual(['b', false]);
      await consumer.close();
      const later = new Collector<Delivery>();
      const successor = await broker.channel();
      await successor.consume(queue, later.push, { noAck: false });
      const [redelivered] = await later.until(1);
      expect([text(redelivered!), redelivered!.redelivered]).toEqual(['b', true]);
      successor.ack(redelivered!);
      await delay(100);
      expect(later.items).toHaveLength(1);
      await channel.deleteQueue(queue);
    });

    it('gives competing consumers their turns, round robin', async () => {
      const channel = await broker.channel();
      const queue = uniqueName('q');
      await channel.declareQueue(queue, plain);
      const one = new Collector<Delivery>();
      const two = new Collector<Delivery>();
      await channel.consume(queue, one.push, { noAck: true });
      const other = await broker.channel();
      await other.consume(queue, two.push, { noAck: true });
      for (let i = 1; i <= 6; i++) expect(await publishConfirmed(channel, '', queue, String(i))).toBeUndefined();
      await one.until(3);
      await two.until(3);
      expect([one.items.map(text), two.items.map(text)]).toEqual([
        ['1', '3', '5'],
        ['2', '4', '6'],
      ]);
      await channel.deleteQueue(queue);
    });
  });

  describe('direct reply-to', () => {
    it('routes a reply to the address the request carried back to the requesting channel, refusing a publish before consuming (406) and an acknowledging consumer (406)', async () => {
      const server = await broker.channel();
      const { queue, deliveries: requests } = await consumed(server);
      const client = await broker.channel();
      const replies = new Collector<Delivery>();
      await client.consume(replyTo, replies.push, { noAck: true });
      expect(await publishConfirmed(client, '', queue, 'ping', { replyTo, correlationId: 'c1' })).toBeUndefined();
      const [request] = await requests.until(1);
      const address = request!.properties.replyTo;
      expect(address).toMatch(/^amq\.rabbitmq\.reply-to\.[A-Za-z0-9+/=._-]+$/);
      expect(await publishConfirmed(server, '', address as string, 'pong', { correlationId: 'c1' })).toBeUndefined();
      const [reply] = await replies.until(1);
      expect([text(reply!), reply!.properties.correlationId]).toEqual(['pong', 'c1']);

      const early = await broker.channel();
      const closed = whenClosed(early);
      early.publish('', queue, Buffer.from('x'), { replyTo }, { mandatory: false });
      await expect(closed).resolves.toMatchObject({ kind: 'precondition-failed', replyCode: 406 });
      const acking = await broker.channel();
      await expect(acking.consume(replyTo, () => undefined, { noAck: false })).rejects.toMatchObject({ replyCode: 406 });
      await server.deleteQueue(queue);
    });
  });

  describe('users and permissions', () => {
    it("checks configure, write and read against the user's regular expressions (403 ACCESS_REFUSED)", async () => {
      const user = await broker.addUser((name) => ({ configure: `^${name}-`, write: `^${name}-|^amq\\.default$`, read: `^${name}-` }));
      const own = `${user.name}-q`;
      const foreign = uniqueName('foreign');
      const guest = await broker.channel();
      await guest.declareQueue(foreign, plain);
      const channel = async (): Promise<AmqpChannel> => broker.channel({ url: user.url });
      const mine = await channel();
      await mine.declareQueue(own, plain);
      expect(await publishConfirmed(mine, '', own, 'mine')).toBeUndefined();
      await expect((await channel()).declareQueue(uniqueName('other'), plain)).rejects.toMatchObject({
        kind: 'access-refused',
        replyCode: 403,
      });
      await expect((await channel()).consume(foreign, () => undefined, { noAck: true })).rejects.toMatchObject({ replyCode: 403 });
      await expect((await channel()).bindQueue(own, 'amq.fanout', '')).rejects.toMatchObject({ replyCode: 403 });
      const writer = await channel();
      const refused = whenClosed(writer);
      writer.publish('amq.fanout', '', Buffer.from('x'), {}, { mandatory: false });
      await expect(refused).resolves.toMatchObject({ kind: 'access-refused', replyCode: 403 });
      const reader = await channel();
      const deliveries = new Collector<Delivery>();
      await reader.consume(own, deliveries.push, { noAck: true });
      await deliveries.until(1);
      await reader.deleteQueue(own);
      await guest.deleteQueue(foreign);
    }, 90_000);
  });
});
