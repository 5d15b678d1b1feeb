import { jest } from '@jest/globals';
import type { PortError, Returned } from '../../../../lib/amqp/port.js';
import { Collector, closeBrokers, collect, declare, freshBroker, open, passes, publishConfirmed, text, whenClosed } from './helpers.js';

afterEach(() => {
  jest.useRealTimers();
  closeBrokers();
});

describe('embedded broker: mandatory and basic.return', () => {
  it('returns an unroutable mandatory message (312 NO_ROUTE) before confirming it', async () => {
    const { url } = freshBroker();
    const { channel } = await open(url);
    const order: string[] = [];
    const returned = new Collector<Returned>();
    channel.onReturn((message) => {
      order.push('return');
      returned.push(message);
    });
    channel.publish('', 'nowhere', Buffer.from('lost'), { correlationId: 'c' }, { mandatory: true }, (failure) =>
      order.push(`confirm ${String(failure)}`),
    );
    const [message] = await returned.until(1);
    await passes();
    expect(message).toMatchObject({
      replyCode: 312,
      replyText: 'NO_ROUTE',
      exchange: '',
      routingKey: 'nowhere',
      properties: { correlationId: 'c' },
    });
    expect(message!.content.toString()).toBe('lost');
    expect(order).toEqual(['return', 'confirm undefined']);
  });

  it('drops an unroutable message that is not mandatory, and confirms it', async () => {
    const { url } = freshBroker();
    const { channel } = await open(url);
    const returned = new Collector<Returned>();
    channel.onReturn(returned.push);
    expect(await publishConfirmed(channel, 'amq.direct', 'unbound', 'x')).toBeUndefined();
    expect(returned.items).toEqual([]);
  });
});

describe('embedded broker: publisher confirms', () => {
  it('confirms asynchronously, never inside publish(), in publish order', async () => {
    const { url } = freshBroker();
    const { channel } = await open(url);
    await declare(channel, 'q');
    const confirmed: number[] = [];
    let inside = false;
    for (let i = 0; i < 5; i++) {
      inside = true;
      channel.publish('', i % 2 === 0 ? 'q' : 'nowhere', Buffer.from(String(i)), {}, { mandatory: i === 3 }, (failure) => {
        expect(inside).toBe(false);
        expect(failure).toBeUndefined();
        confirmed.push(i);
      });
      inside = false;
    }
    expect(confirmed).toEqual([]);
    await passes(1);
    expect(confirmed).toEqual([0, 1, 2, 3, 4]);
  });

  it('closes the channel with 404 on a publish to a missing exchange: earlier confirms succeed, it and later ones fail with the 404', async () => {
    const { url } = freshBroker();
    const { channel } = await open(url);
    await declare(channel, 'q');
    const outcomes: Array<PortError | undefined> = [];
    const closed = whenClosed(channel);
    channel.publish('', 'q', Buffer.from('before'), {}, { mandatory: false }, (failure) => outcomes.push(failure));
    channel.publish('missing', 'k', Buffer.from('bad'), {}, { mandatory: false }, (failure) => outcomes.push(failure));
    // The broker has closed the channel, but the client does not know yet: this publish is accepted and dropped.
    expect(channel.publish('', 'q', Buffer.from('after'), {}, { mandatory: false }, (failure) => outcomes.push(failure))).toBe(true);
    const error = await closed;
    expect(error).toMatchObject({ kind: 'not-found', replyCode: 404, message: "NOT_FOUND - no exchange 'missing' in vhost '/'" });
    // As the amqplib adapter does, everything that fails because the broker closed the channel fails with its error.
    expect(outcomes).toEqual([undefined, error, error]);
    expect(() => channel.publish('', 'q', Buffer.from('closed'), {}, { mandatory: false })).toThrow(error);
    await expect(channel.declareQueue('q2', { durable: false, exclusive: false, autoDelete: false })).rejects.toBe(error);
    await expect(channel.whenWritable()).rejects.toBe(error);
    await expect(channel.close()).resolves.toBeUndefined();
    const reader = await open(url);
    const { deliveries } = await collect(reader.channel, 'q', true);
    await passes();
    expect(deliveries.items.map(text)).toEqual(['before']);
  });

  it('refuses a user_id that is not the connection user (406)', async () => {
    const { url } = freshBroker();
    const { channel } = await open(url);
    const closed = whenClosed(channel);
    await publishConfirmed(channel, '', 'q', 'x', { userId: 'bob' });
    await expect(closed).resolves.toMatchObject({
      message: "PRECONDITION_FAILED - user_id property set to 'bob' but authenticated user was 'guest'",
    });
  });

  it('runs onClose with undefined and fails nothing when the client closes the channel', async () => {
    const { url } = freshBroker();
    const { channel } = await open(url);
    await declare(channel, 'q');
    const outcomes: Array<PortError | undefined> = [];
    channel.publish('', 'q', Buffer.from('x'), {}, { mandatory: false }, (failure) => outcomes.push(failure));
    const closed = whenClosed(channel);
    await channel.close();
    await expect(closed).resolves.toBeUndefined();
    expect(outcomes).toEqual([undefined]);
  });
});

describe('embedded broker: per-message expiration', () => {
  it('drops a message once expired, at the head of the queue, never delivering it', async () => {
    jest.useFakeTimers({ now: 1_000_000 });
    const { url, broker } = freshBroker();
    const { channel } = await open(url);
    await declare(channel, 'q');
    await publishConfirmed(channel, '', 'q', 'short', { expiration: '1000' });
    await publishConfirmed(channel, '', 'q', 'long', { expiration: '60000' });
    jest.advanceTimersByTime(1000);
    expect(broker.queues()[0]).toMatchObject({ ready: 2 });
    jest.advanceTimersByTime(1);
    expect(broker.queues()[0]).toMatchObject({ ready: 1 });
    const { deliveries } = await collect(channel, 'q', true);
    const [delivery] = await deliveries.until(1);
    // The property travels with the message.
    expect(delivery).toMatchObject({ properties: { expiration: '60000' } });
    expect(text(delivery!)).toBe('long');
  });

  it('only drops expired messages when they reach the head, as RabbitMQ does', async () => {
    jest.useFakeTimers({ now: 1_000_000 });
    const { url, broker } = freshBroker();
    const { channel } = await open(url);
    await declare(channel, 'q');
    await publishConfirmed(channel, '', 'q', 'forever');
    await publishConfirmed(channel, '', 'q', 'short', { expiration: '10' });
    jest.advanceTimersByTime(100);
    expect(broker.queues()[0]).toMatchObject({ ready: 2 });
    const { deliveries } = await collect(channel, 'q', true);
    await passes();
    expect(deliveries.items.map(text)).toEqual(['forever']);
    expect(broker.queues()[0]).toMatchObject({ ready: 0 });
  });

  it("applies a queue's x-message-ttl, or the message's expiration when lower", async () => {
    jest.useFakeTimers({ now: 1_000_000 });
    const { url, broker } = freshBroker();
    const { channel } = await open(url);
    await declare(channel, 'q', { arguments: { 'x-message-ttl': 500 } });
    await publishConfirmed(channel, '', 'q', 'short', { expiration: '100' });
    await publishConfirmed(channel, '', 'q', 'queue ttl', { expiration: '60000' });
    jest.advanceTimersByTime(101);
    expect(broker.queues()[0]).toMatchObject({ ready: 1 });
    jest.advanceTimersByTime(399);
    expect(broker.queues()[0]).toMatchObject({ ready: 1 });
    jest.advanceTimersByTime(1);
    expect(broker.queues()[0]).toMatchObject({ ready: 0 });
  });

  it('delivers a message with expiration 0 only to a consumer ready for it', async () => {
    const { url } = freshBroker();
    const { channel } = await open(url);
    await declare(channel, 'q');
    await publishConfirmed(channel, '', 'q', 'nobody there', { expiration: '0' });
    const { deliveries } = await collect(channel, 'q', true);
    await publishConfirmed(channel, '', 'q', 'taken', { expiration: '0' });
    await deliveries.until(1);
    await passes();
    expect(deliveries.items.map(text)).toEqual(['taken']);
  });

  it.each([
    ['abc', 'no_integer'],
    ['-1', '{value_negative,-1}'],
    ['1.5', '{leftover_string,".5"}'],
    ['', 'no_integer'],
    [' 5', 'no_integer'],
  ])('closes the channel with 406 on expiration %j, as RabbitMQ does', async (expiration, reason) => {
    const { url } = freshBroker();
    const { channel } = await open(url);
    const closed = whenClosed(channel);
    await publishConfirmed(channel, '', 'q', 'x', { expiration });
    await expect(closed).resolves.toMatchObject({
      replyCode: 406,
      message: `PRECONDITION_FAILED - invalid expiration '${expiration}': ${reason}`,
    });
  });

  it('accepts expirations RabbitMQ accepts (+5, very large)', async () => {
    const { url } = freshBroker();
    const { channel } = await open(url);
    expect(await publishConfirmed(channel, '', 'q', 'x', { expiration: '+5' })).toBeUndefined();
    expect(await publishConfirmed(channel, '', 'q', 'x', { expiration: '99999999999' })).toBeUndefined();
  });
});
