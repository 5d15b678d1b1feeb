import type { AmqpChannel, Delivery } from '../../../../lib/amqp/port.js';
import { Collector, closeBrokers, collect, declare, freshBroker, open, passes, publishConfirmed, text, whenClosed } from './helpers.js';

afterEach(closeBrokers);

async function fill(channel: AmqpChannel, queue: string, count: number): Promise<void> {
  for (let i = 1; i <= count; i++) channel.publish('', queue, Buffer.from(String(i)), {}, { mandatory: false });
  await publishConfirmed(channel, '', 'no-such-queue', 'sync');
}

describe('embedded broker: prefetch and acknowledgements', () => {
  it('holds back deliveries beyond the prefetch until one is acknowledged', async () => {
    const { url, broker } = freshBroker();
    const { channel } = await open(url);
    await declare(channel, 'q');
    await fill(channel, 'q', 5);
    await channel.prefetch(2);
    const { deliveries } = await collect(channel, 'q');
    await deliveries.until(2);
    await passes();
    expect(deliveries.items.map(text)).toEqual(['1', '2']);
    expect(broker.queues()[0]).toMatchObject({ ready: 3, unacked: 2, consumers: 1 });
    channel.ack(deliveries.items[0]!);
    await deliveries.until(3);
    await passes();
    expect(deliveries.items.map(text)).toEqual(['1', '2', '3']);
    expect(deliveries.items.map((delivery) => delivery.deliveryTag)).toEqual([1, 2, 3]);
  });

  it('counts the prefetch over all consumers of the channel, and not for no-ack consumers', async () => {
    const { url } = freshBroker();
    const { channel } = await open(url);
    await declare(channel, 'a');
    await declare(channel, 'b');
    await declare(channel, 'c');
    await fill(channel, 'a', 3);
    await fill(channel, 'b', 3);
    await fill(channel, 'c', 3);
    await channel.prefetch(2);
    const a = await collect(channel, 'a');
    const b = await collect(channel, 'b');
    const c = await collect(channel, 'c', true);
    await c.deliveries.until(3);
    await passes();
    expect(a.deliveries.items.length + b.deliveries.items.length).toBe(2);
  });

  it('closes the channel with 406 on an unknown delivery tag, and on a second ack of the same delivery', async () => {
    const { url } = freshBroker();
    const { channel } = await open(url);
    await declare(channel, 'q');
    await fill(channel, 'q', 1);
    const { deliveries } = await collect(channel, 'q');
    const [delivery] = await deliveries.until(1);
    const closed = whenClosed(channel);
    channel.ack(delivery!);
    channel.ack(delivery!);
    await expect(closed).resolves.toMatchObject({
      kind: 'precondition-failed',
      replyCode: 406,
      message: 'PRECONDITION_FAILED - unknown delivery tag 1',
    });
    // Once closed, acks are no-ops.
    expect(() => channel.ack(delivery!)).not.toThrow();
  });

  it('requeues a nacked delivery at its place, marked redelivered; drops one nacked without requeue', async () => {
    const { url, broker } = freshBroker();
    const { channel } = await open(url);
    await declare(channel, 'q');
    await fill(channel, 'q', 3);
    await channel.prefetch(1);
    const { deliveries } = await collect(channel, 'q');
    const [first] = await deliveries.until(1);
    channel.nack(first!, true);
    const [, again] = await deliveries.until(2);
    expect(again).toMatchObject({ redelivered: true, deliveryTag: 2 });
    expect(text(again!)).toBe('1');
    channel.nack(again!, false);
    const [, , second] = await deliveries.until(3);
    expect(text(second!)).toBe('2');
    channel.ack(second!);
    await deliveries.until(4);
    channel.ack(deliveries.items[3]!);
    await passes();
    expect(broker.queues()[0]).toMatchObject({ ready: 0, unacked: 0 });
  });
});

describe('embedded broker: redelivery', () => {
  it.each(['channel', 'connection'] as const)(
    'requeues what a closed %s left unacknowledged, at its original place, marked redelivered',
    async (closing) => {
      const { url } = freshBroker();
      const publisher = await open(url);
      await declare(publisher.channel, 'q');
      await fill(publisher.channel, 'q', 6);
      const consumer = await open(url);
      await consumer.channel.prefetch(3);
      const first = await collect(consumer.channel, 'q');
      await first.deliveries.until(3);
      if (closing === 'channel') await consumer.channel.close();
      else await consumer.connection.close();
      const second = await collect(publisher.channel, 'q', true);
      await second.deliveries.until(6);
      expect(second.deliveries.items.map((delivery) => `${text(delivery)}${delivery.redelivered ? 'r' : ''}`)).toEqual([
        '1r',
        '2r',
        '3r',
        '4',
        '5',
        '6',
      ]);
    },
  );
});

describe('embedded broker: competing consumers', () => {
  it('delivers round robin among the consumers of a queue', async () => {
    const { url } = freshBroker();
    const { channel } = await open(url);
    await declare(channel, 'q');
    const consumers = [new Collector<Delivery>(), new Collector<Delivery>(), new Collector<Delivery>()];
    for (const consumer of consumers) {
      const other = (await open(url)).channel;
      await other.consume('q', consumer.push, { noAck: true });
    }
    await fill(channel, 'q', 9);
    await Promise.all(consumers.map((consumer) => consumer.until(3)));
    expect(consumers.map((consumer) => consumer.items.map(text))).toEqual([
      ['1', '4', '7'],
      ['2', '5', '8'],
      ['3', '6', '9'],
    ]);
  });

  it('skips a consumer at its prefetch and gives the message to the next', async () => {
    const { url } = freshBroker();
    const { channel } = await open(url);
    await declare(channel, 'q');
    const slow = await open(url);
    await slow.channel.prefetch(1);
    const held = await collect(slow.channel, 'q');
    const fast = await collect(channel, 'q', true);
    await fill(channel, 'q', 4);
    await fast.deliveries.until(3);
    expect(held.deliveries.items.map(text)).toEqual(['1']);
    expect(fast.deliveries.items.map(text)).toEqual(['2', '3', '4']);
  });

  it('refuses a second consumer on a queue with an exclusive consumer, and an exclusive consumer on a used queue (403)', async () => {
    const { url } = freshBroker();
    const first = await open(url);
    await declare(first.channel, 'q');
    await first.channel.consume('q', () => undefined, { noAck: true, exclusive: true });
    const second = await open(url);
    await expect(second.channel.consume('q', () => undefined, { noAck: true })).rejects.toMatchObject({
      kind: 'access-refused',
      message: "ACCESS_REFUSED - queue 'q' in vhost '/' in exclusive use",
    });
    await declare(first.channel, 'r');
    await first.channel.consume('r', () => undefined, { noAck: true });
    const third = await open(url);
    await expect(third.channel.consume('r', () => undefined, { noAck: true, exclusive: true })).rejects.toMatchObject({ replyCode: 403 });
  });

  it('stops delivering to a cancelled consumer; what it holds unacknowledged stays acknowledgeable', async () => {
    const { url, broker } = freshBroker();
    const { channel } = await open(url);
    await declare(channel, 'q');
    await fill(channel, 'q', 1);
    const { tag, deliveries } = await collect(channel, 'q');
    const [delivery] = await deliveries.until(1);
    await channel.cancel(tag);
    await fill(channel, 'q', 1);
    await passes();
    expect(deliveries.items).toHaveLength(1);
    channel.ack(delivery!);
    await passes();
    expect(broker.queues()[0]).toMatchObject({ ready: 1, unacked: 0, consumers: 0 });
    // Cancelling an unknown tag is no error.
    await expect(channel.cancel('amq.ctag-unknown')).resolves.toBeUndefined();
  });
});
