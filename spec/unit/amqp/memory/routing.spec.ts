import type { AmqpChannel, Delivery } from '../../../../lib/amqp/port.js';
import { Collector, closeBrokers, collect, declare, freshBroker, open, passes, publishConfirmed, text, whenClosed } from './helpers.js';

afterEach(closeBrokers);

async function queues(channel: AmqpChannel, names: string[]): Promise<Record<string, Collector<Delivery>>> {
  const collected: Record<string, Collector<Delivery>> = {};
  for (const name of names) {
    await declare(channel, name);
    collected[name] = (await collect(channel, name, true)).deliveries;
  }
  return collected;
}

describe('embedded broker: routing', () => {
  it('routes through the default exchange by queue name and drops what matches no queue', async () => {
    const { url } = freshBroker();
    const { channel } = await open(url);
    const { q1 } = await queues(channel, ['q1']);
    expect(await publishConfirmed(channel, '', 'q1', 'hello')).toBeUndefined();
    expect(await publishConfirmed(channel, '', 'nowhere', 'lost')).toBeUndefined();
    const [delivery] = await q1!.until(1);
    expect(delivery).toMatchObject({ exchange: '', routingKey: 'q1', redelivered: false, deliveryTag: 1 });
    expect(text(delivery!)).toBe('hello');
  });

  it('routes direct, fanout, topic and headers exchanges as RabbitMQ does', async () => {
    const { url } = freshBroker();
    const { channel } = await open(url);
    const got = await queues(channel, ['a', 'b', 'c']);
    const options = { durable: false, autoDelete: false };
    await channel.declareExchange('direct-x', 'direct', options);
    await channel.declareExchange('fanout-x', 'fanout', options);
    await channel.declareExchange('topic-x', 'topic', options);
    await channel.declareExchange('headers-x', 'headers', options);
    await channel.bindQueue('a', 'direct-x', 'key-a');
    await channel.bindQueue('b', 'direct-x', 'key-b');
    await channel.bindQueue('a', 'fanout-x', 'ignored');
    await channel.bindQueue('b', 'fanout-x', '');
    await channel.bindQueue('a', 'topic-x', 'stock.*.nyse');
    await channel.bindQueue('b', 'topic-x', 'stock.#');
    await channel.bindQueue('c', 'topic-x', '#.nyse');
    await channel.bindQueue('c', 'topic-x', '#');
    await channel.bindQueue('c', 'headers-x', '');

    await publishConfirmed(channel, 'direct-x', 'key-a', 'direct a');
    await publishConfirmed(channel, 'fanout-x', 'whatever', 'fanout');
    await publishConfirmed(channel, 'topic-x', 'stock.ibm.nyse', 'ibm');
    await publishConfirmed(channel, 'topic-x', 'stock', 'bare stock');
    await publishConfirmed(channel, 'topic-x', 'stock.ibm.lse', 'lse');
    await publishConfirmed(channel, 'topic-x', '', 'empty key');
    await publishConfirmed(channel, 'headers-x', 'x', 'headers');
    await passes();
    expect(got['a']!.items.map(text)).toEqual(['direct a', 'fanout', 'ibm']);
    expect(got['b']!.items.map(text)).toEqual(['fanout', 'ibm', 'bare stock', 'lse']);
    // One delivery per queue even when two of its bindings match.
    expect(got['c']!.items.map(text)).toEqual(['ibm', 'bare stock', 'lse', 'empty key', 'headers']);
  });

  it('refuses amq.* names and the default exchange as RabbitMQ does (403), but accepts an equivalent redeclaration of amq.direct', async () => {
    const { url } = freshBroker();
    const flags = { durable: true, autoDelete: false };
    await expect((await open(url)).channel.declareExchange('amq.direct', 'direct', flags)).resolves.toBeUndefined();
    const attempts: Array<[(channel: AmqpChannel) => Promise<void>, string]> = [
      [(channel) => channel.declareExchange('amq.custom', 'direct', flags), "exchange name 'amq.custom' contains reserved prefix 'amq.*'"],
      [(channel) => declare(channel, 'amq.q'), "queue name 'amq.q' contains reserved prefix 'amq.*'"],
      [(channel) => channel.declareExchange('', 'direct', flags), 'operation not permitted on the default exchange'],
      [(channel) => channel.checkExchange(''), 'operation not permitted on the default exchange'],
      [(channel) => channel.deleteExchange('amq.direct'), "deletion of system exchange 'amq.direct' in vhost '/' not allowed"],
      [(channel) => channel.deleteExchange(''), 'operation not permitted on the default exchange'],
      [
        async (channel) => {
          await declare(channel, 'bound');
          await channel.bindQueue('bound', '', 'x');
        },
        'operation not permitted on the default exchange',
      ],
    ];
    for (const [attempt, message] of attempts) {
      const { channel } = await open(url);
      const closed = whenClosed(channel);
      await expect(attempt(channel)).rejects.toMatchObject({
        kind: 'access-refused',
        replyCode: 403,
        message: `ACCESS_REFUSED - ${message}`,
      });
      await expect(closed).resolves.toMatchObject({ replyCode: 403 });
    }
    const { channel } = await open(url);
    const closed = whenClosed(channel);
    await expect(channel.declareExchange('amq.direct', 'fanout', flags)).rejects.toMatchObject({
      kind: 'precondition-failed',
      message:
        "PRECONDITION_FAILED - inequivalent arg 'type' for exchange 'amq.direct' in vhost '/': received 'fanout' but current is 'direct'",
    });
    await expect(closed).resolves.toMatchObject({ replyCode: 406 });
  });

  it('refuses to publish to an internal exchange (403)', async () => {
    const { url } = freshBroker();
    const { channel } = await open(url);
    const closed = whenClosed(channel);
    await publishConfirmed(channel, 'amq.rabbitmq.trace', 'x', 'x');
    await expect(closed).resolves.toMatchObject({
      replyCode: 403,
      message: "ACCESS_REFUSED - cannot publish to internal exchange 'amq.rabbitmq.trace' in vhost '/'",
    });
  });
});

describe('embedded broker: messages are bytes, never shared objects', () => {
  it('copies the content when published: changing the buffer afterwards changes nothing delivered', async () => {
    const { url } = freshBroker();
    const { channel } = await open(url);
    await declare(channel, 'q');
    const body = Buffer.from('original');
    const confirmed = publishConfirmed(channel, '', 'q', body);
    body.write('MUTATED!');
    await confirmed;
    const { deliveries } = await collect(channel, 'q');
    const [delivery] = await deliveries.until(1);
    expect(text(delivery!)).toBe('original');
    expect(delivery!.content).not.toBe(body);
  });

  it('copies headers deeply on publish and on each delivery, as the wire would', async () => {
    const { url } = freshBroker();
    const { channel } = await open(url);
    await channel.declareExchange('fan', 'fanout', { durable: false, autoDelete: false });
    const got = await queues(channel, ['one', 'two']);
    await channel.bindQueue('one', 'fan', '');
    await channel.bindQueue('two', 'fan', '');
    const nested = { list: [1, 'two', 2.5], inner: { ok: true } };
    const headers = { nested, when: new Date(0), nothing: null, skipped: undefined, bytes: Buffer.from('ab') };
    const confirmed = publishConfirmed(channel, 'fan', '', 'x', { headers });
    nested.inner.ok = false;
    await confirmed;
    const [[first], [second]] = await Promise.all([got['one']!.until(1), got['two']!.until(1)]);
    expect(first!.properties.headers).toEqual({
      nested: { list: [1, 'two', 2.5], inner: { ok: true } },
      when: {},
      nothing: null,
      bytes: Buffer.from('ab'),
    });
    expect(first!.properties.headers).not.toBe(second!.properties.headers);
    expect(first!.content).not.toBe(second!.content);
    (first!.properties.headers as { nested: { inner: { ok: boolean } } }).nested.inner.ok = false;
    first!.content.write('Z');
    expect(second!.properties.headers).toMatchObject({ nested: { inner: { ok: true } } });
    expect(text(second!)).toBe('x');
  });

  it('gives a redelivered message its original bytes even if the first consumer changed its copy', async () => {
    const { url } = freshBroker();
    const { channel } = await open(url);
    await declare(channel, 'q');
    await publishConfirmed(channel, '', 'q', 'pristine', { headers: { a: 1 } });
    const first = await collect(channel, 'q');
    const [delivery] = await first.deliveries.until(1);
    delivery!.content.write('spoiled!');
    (delivery!.properties.headers as Record<string, unknown>)['a'] = 2;
    channel.nack(delivery!, true);
    const [, again] = await first.deliveries.until(2);
    expect(again).toMatchObject({ redelivered: true, properties: { headers: { a: 1 } } });
    expect(text(again!)).toBe('pristine');
  });

  it('throws from publish, before anything is sent, what amqplib cannot encode; the channel stays open', async () => {
    const { url } = freshBroker();
    const { channel } = await open(url);
    await declare(channel, 'q');
    expect(() => channel.publish('', 'q', Buffer.from('x'), { headers: { big: 1n } }, { mandatory: false })).toThrow(
      expect.objectContaining({ kind: 'other' }) as unknown as Error,
    );
    expect(() => channel.publish('', 'q', Buffer.from('x'), { correlationId: 'x'.repeat(256) }, { mandatory: false })).toThrow(
      expect.objectContaining({ kind: 'other' }) as unknown as Error,
    );
    expect(() => channel.publish('', 'q'.repeat(256), Buffer.from('x'), {}, { mandatory: false })).toThrow(
      expect.objectContaining({ kind: 'other' }) as unknown as Error,
    );
    expect(await publishConfirmed(channel, '', 'q', 'fine')).toBeUndefined();
  });
});
