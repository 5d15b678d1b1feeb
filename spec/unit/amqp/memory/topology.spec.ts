import { jest } from '@jest/globals';
import type { AmqpChannel, Delivery } from '../../../../lib/amqp/port.js';
import { Collector, closeBrokers, connect, declare, freshBroker, open, passes, publishConfirmed, whenClosed } from './helpers.js';

afterEach(() => {
  jest.useRealTimers();
  closeBrokers();
});

describe('embedded broker: declarations', () => {
  it.each([
    [{ durable: true }, "inequivalent arg 'durable' for queue 'q' in vhost '/': received 'true' but current is 'false'"],
    [{ autoDelete: true }, "inequivalent arg 'auto_delete' for queue 'q' in vhost '/': received 'true' but current is 'false'"],
    [
      { expires: 2000 },
      "inequivalent arg 'x-expires' for queue 'q' in vhost '/': received the value '2000' of type 'short' but current is none",
    ],
  ])('closes the channel with 406 PRECONDITION_FAILED on a redeclaration with %j', async (changed, message) => {
    const { url } = freshBroker();
    const { channel } = await open(url);
    await declare(channel, 'q');
    const closed = whenClosed(channel);
    await expect(declare(channel, 'q', changed)).rejects.toMatchObject({
      kind: 'precondition-failed',
      replyCode: 406,
      message: `PRECONDITION_FAILED - ${message}`,
    });
    await expect(closed).resolves.toMatchObject({ kind: 'precondition-failed', replyCode: 406 });
    await expect(channel.declareQueue('q', { durable: false, exclusive: false, autoDelete: false })).rejects.toMatchObject({
      kind: 'precondition-failed',
    });
    await channel.close();
    await expect(channel.declareQueue('q', { durable: false, exclusive: false, autoDelete: false })).rejects.toMatchObject({
      kind: 'precondition-failed',
    });
  });

  it('accepts a redeclaration with the same flags, and with other arguments RabbitMQ does not compare', async () => {
    const { url, broker } = freshBroker();
    const { channel } = await open(url);
    await declare(channel, 'q', { durable: true, arguments: { 'x-custom': 1 } });
    await expect(declare(channel, 'q', { durable: true, arguments: { 'x-custom': 2 } })).resolves.toBeUndefined();
    // An exclusive queue is never durable: declaring it durable twice is equivalent.
    await expect(declare(channel, 'ex', { durable: true, exclusive: true })).resolves.toBeUndefined();
    await expect(declare(channel, 'ex', { durable: true, exclusive: true })).resolves.toBeUndefined();
    expect(broker.queues().find((queue) => queue.name === 'ex')).toMatchObject({ durable: false, exclusive: true });
  });

  it('closes the channel with 406 on an exchange redeclared with other flags or type', async () => {
    const { url } = freshBroker();
    const { channel } = await open(url);
    await channel.declareExchange('x', 'direct', { durable: false, autoDelete: true });
    await expect(channel.declareExchange('x', 'direct', { durable: false, autoDelete: true })).resolves.toBeUndefined();
    await expect(channel.declareExchange('x', 'direct', { durable: true, autoDelete: true })).rejects.toMatchObject({
      replyCode: 406,
      message: "PRECONDITION_FAILED - inequivalent arg 'durable' for exchange 'x' in vhost '/': received 'true' but current is 'false'",
    });
  });

  it('refuses invalid x-expires (406)', async () => {
    const { url } = freshBroker();
    const { channel } = await open(url);
    await expect(declare(channel, 'q', { expires: 0 })).rejects.toMatchObject({
      replyCode: 406,
      message: "PRECONDITION_FAILED - invalid arg 'x-expires' for queue 'q' in vhost '/': {value_zero,0}",
    });
  });

  it('checks an exchange passively: nothing when it exists, 404 closing the channel when it does not', async () => {
    const { url } = freshBroker();
    const { channel } = await open(url);
    await expect(channel.checkExchange('amq.topic')).resolves.toBeUndefined();
    const closed = whenClosed(channel);
    await expect(channel.checkExchange('missing')).rejects.toMatchObject({
      kind: 'not-found',
      replyCode: 404,
      message: "NOT_FOUND - no exchange 'missing' in vhost '/'",
    });
    await expect(closed).resolves.toMatchObject({ kind: 'not-found' });
  });

  it('fails bind and consume on what does not exist with 404', async () => {
    const { url } = freshBroker();
    const first = await open(url);
    await declare(first.channel, 'q');
    await expect(first.channel.bindQueue('q', 'no-exchange', 'k')).rejects.toMatchObject({
      message: "NOT_FOUND - no exchange 'no-exchange' in vhost '/'",
    });
    const second = await open(url);
    await expect(second.channel.bindQueue('no-queue', 'amq.direct', 'k')).rejects.toMatchObject({
      message: "NOT_FOUND - no queue 'no-queue' in vhost '/'",
    });
    const third = await open(url);
    await expect(third.channel.consume('no-queue', () => undefined, { noAck: true })).rejects.toMatchObject({
      kind: 'not-found',
      replyCode: 404,
    });
  });
});

describe('embedded broker: exclusive and auto-delete queues', () => {
  it('locks an exclusive queue to its connection (405), lets anyone publish to it, and deletes it with the connection', async () => {
    const { url, broker } = freshBroker();
    const owner = await open(url);
    await declare(owner.channel, 'mine', { exclusive: true });
    const attempts: Array<(channel: AmqpChannel) => Promise<unknown>> = [
      (channel) => declare(channel, 'mine', { exclusive: true }),
      (channel) => channel.consume('mine', () => undefined, { noAck: true }),
      (channel) => channel.bindQueue('mine', 'amq.direct', 'k'),
      (channel) => channel.deleteQueue('mine'),
    ];
    for (const attempt of attempts) {
      const other = await open(url);
      await expect(attempt(other.channel)).rejects.toMatchObject({
        kind: 'resource-locked',
        replyCode: 405,
        message: expect.stringContaining("RESOURCE_LOCKED - cannot obtain exclusive access to locked queue 'mine' in vhost '/'"),
      });
    }
    // Redeclaring it non-exclusive is refused to its owner too.
    const again = await owner.connection.openChannel({ confirms: false });
    await expect(declare(again, 'mine')).rejects.toMatchObject({ replyCode: 405 });
    const publisher = await open(url);
    expect(await publishConfirmed(publisher.channel, '', 'mine', 'x')).toBeUndefined();
    expect(broker.queues().find((queue) => queue.name === 'mine')).toMatchObject({ ready: 1, exclusive: true });
    await owner.connection.close();
    expect(broker.queues().map((queue) => queue.name)).not.toContain('mine');
  });

  it('deletes an auto-delete queue when its last consumer goes, not before it had one', async () => {
    const { url, broker } = freshBroker();
    const { channel } = await open(url);
    await declare(channel, 'auto', { autoDelete: true });
    expect(broker.queues().map((queue) => queue.name)).toContain('auto');
    const first = await channel.consume('auto', () => undefined, { noAck: true });
    const second = await channel.consume('auto', () => undefined, { noAck: true });
    await channel.cancel(first);
    expect(broker.queues().map((queue) => queue.name)).toContain('auto');
    await channel.cancel(second);
    expect(broker.queues().map((queue) => queue.name)).not.toContain('auto');
  });

  it('deletes an auto-delete exchange when its last binding goes', async () => {
    const { url, broker } = freshBroker();
    const { channel } = await open(url);
    await channel.declareExchange('replies', 'fanout', { durable: false, autoDelete: true });
    await declare(channel, 'r1');
    await channel.bindQueue('r1', 'replies', '');
    expect(broker.bindings()).toEqual([{ exchange: 'replies', queue: 'r1', routingKey: '' }]);
    await channel.deleteQueue('r1');
    expect(broker.exchanges().map((exchange) => exchange.name)).not.toContain('replies');
  });
});

describe('embedded broker: deletions', () => {
  it('cancels the consumers of a deleted queue (onCancel runs); their unacknowledged deliveries can still be acknowledged', async () => {
    const { url } = freshBroker();
    const { channel } = await open(url);
    await declare(channel, 'q');
    await publishConfirmed(channel, '', 'q', 'x');
    let cancelled = 0;
    const deliveries = new Collector<Delivery>();
    await channel.consume('q', deliveries.push, { noAck: false }, () => cancelled++);
    const [delivery] = await deliveries.until(1);
    const other = await open(url);
    await other.channel.deleteQueue('q');
    await passes();
    expect(cancelled).toBe(1);
    channel.ack(delivery!);
    expect(await publishConfirmed(channel, '', 'q', 'to nowhere')).toBeUndefined();
  });

  it('deletes an exchange, refusing with 406 when ifUnused and it is bound; deleting what does not exist succeeds', async () => {
    const { url, broker } = freshBroker();
    const { channel } = await open(url);
    await channel.declareExchange('x', 'direct', { durable: false, autoDelete: false });
    await declare(channel, 'q');
    await channel.bindQueue('q', 'x', 'k');
    const closed = whenClosed(channel);
    await expect(channel.deleteExchange('x', { ifUnused: true })).rejects.toMatchObject({
      kind: 'precondition-failed',
      message: "PRECONDITION_FAILED - exchange 'x' in vhost '/' in use",
    });
    await expect(closed).resolves.toMatchObject({ replyCode: 406 });
    const next = await open(url);
    await next.channel.deleteExchange('x');
    expect(broker.exchanges().map((exchange) => exchange.name)).not.toContain('x');
    expect(broker.bindings()).toEqual([]);
    await expect(next.channel.deleteExchange('never-existed')).resolves.toBeUndefined();
    await expect(next.channel.deleteQueue('never-existed')).resolves.toBeUndefined();
  });
});

describe('embedded broker: x-expires', () => {
  it('deletes a queue unused for its x-expires, and not while it has a consumer', async () => {
    jest.useFakeTimers();
    const { url, broker } = freshBroker();
    const { channel } = await open(url);
    const names = (): string[] => broker.queues().map((queue) => queue.name);
    await declare(channel, 'idle', { expires: 5000 });
    await declare(channel, 'busy', { expires: 5000 });
    const tag = await channel.consume('busy', () => undefined, { noAck: true });
    jest.advanceTimersByTime(4999);
    expect(names()).toEqual(expect.arrayContaining(['idle', 'busy']));
    // Declaring it again is a use: the clock starts over.
    await declare(channel, 'idle', { expires: 5000 });
    jest.advanceTimersByTime(4999);
    expect(names()).toContain('idle');
    jest.advanceTimersByTime(1);
    expect(names()).not.toContain('idle');
    jest.advanceTimersByTime(60_000);
    expect(names()).toContain('busy');
    await channel.cancel(tag);
    jest.advanceTimersByTime(5000);
    expect(names()).not.toContain('busy');
  });
});

describe('embedded broker: vhosts', () => {
  it('keeps vhosts apart: a queue of one is not seen from another', async () => {
    const { url, broker } = freshBroker();
    broker.addVhost('other');
    const { channel } = await open(url);
    await declare(channel, 'q');
    broker.setPermissions('guest', 'other', { configure: '.*', write: '.*', read: '.*' });
    const other = await (await connect(`${url}/other`)).openChannel({ confirms: true });
    await expect(other.consume('q', () => undefined, { noAck: true })).rejects.toMatchObject({
      message: "NOT_FOUND - no queue 'q' in vhost 'other'",
    });
    expect(broker.queues('other')).toEqual([]);
  });
});
