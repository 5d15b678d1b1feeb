/**
 * How a QAMServer publishes its replies (lib/server/replies.ts), over a fake of the AMQP port:
 * first replies to a target one at a time on a connection of their own, later ones on the
 * server's connection, what a refusal costs, and how replies that cannot leave hold the workers.
 */
import { jest } from '@jest/globals';
import { PortError } from '../../../lib/amqp/port.js';
import { turns } from '../../support/fake-port.js';
import { callmeExchange, directAddress, requestQueue, serving, type Served } from './helpers.js';

let served: Served[] = [];
async function start(...args: Parameters<typeof serving>): Promise<Served> {
  const server = await serving(...args);
  served.push(server);
  return server;
}
afterEach(async () => {
  jest.useRealTimers();
  for (const server of served) await server.close();
  served = [];
});

/** Serves one request to `replyTo` and waits until it is acknowledged (its reply confirmed). */
async function answered({ port, request }: Served, replyTo: string): Promise<void> {
  const { deliveryTag } = request('add', [1, 2], { replyTo, correlationId: 'warm' });
  await port.until(() => port.acked.has(deliveryTag));
}

describe('ReplyPublisher', () => {
  it('publishes the first reply to a target on a confirm channel of a connection of its own, and later direct replies on the server connection without confirms', async () => {
    const context = await start();
    const { port, main, request, replies } = context;
    await answered(context, directAddress(1));
    const [first] = replies();
    expect(first!.message.channel.connection).not.toBe(main);
    expect(first!.message.channel.confirms).toBe(true);
    expect(first!.message.mandatory).toBe(false);
    await turns();
    const { deliveryTag } = request('add', [2, 2], { replyTo: directAddress(1), correlationId: 'later' });
    await port.until(() => port.acked.has(deliveryTag));
    const later = replies(1)[0]!;
    expect(later).toMatchObject({ target: directAddress(1), body: { result: 4 } });
    expect(later.message.channel.connection).toBe(main);
    expect(later.message.state).toBe('none');
  });

  it('publishes replies to an exchange it took before on a confirm channel of the server connection', async () => {
    const context = await start();
    const { port, main, request, replies } = context;
    await answered(context, callmeExchange(1));
    port.autoConfirm = false;
    const { deliveryTag } = request('add', [2, 2], { replyTo: callmeExchange(1), correlationId: 'later' });
    await port.until(() => port.published.length >= 2);
    const later = replies(1)[0]!.message;
    expect(later.channel.connection).toBe(main);
    expect(later.channel.confirms).toBe(true);
    await turns();
    expect(port.acked.has(deliveryTag)).toBe(false);
    later.confirm();
    await port.until(() => port.acked.has(deliveryTag));
  });

  it('sends the replies that waited for a target at once when its first reply is confirmed, not one confirm at a time', async () => {
    const { port, request } = await start({ workers: 64 });
    port.autoConfirm = false;
    const tags = Array.from(
      { length: 50 },
      (_, i) => request('add', [i, 0], { replyTo: directAddress(1), correlationId: `r${i}` }).deliveryTag,
    );
    await port.until(() => port.published.length >= 1);
    await turns();
    expect(port.published).toHaveLength(1);
    port.published[0]!.confirm();
    // The other 49 go out without another confirm: before, each waited for the one before (found
    // by the bench: 2,000 calls released at once timed out).
    await port.until(() => port.published.length >= 50);
    for (const published of port.published.slice(1)) published.confirm();
    await port.until(() => tags.every((tag) => port.acked.has(tag)));
  });

  it('publishes first replies one at a time, each after the one before is confirmed', async () => {
    const { port, request, replies } = await start();
    port.autoConfirm = false;
    const tags = [
      request('add', [1, 0], { replyTo: directAddress(1), correlationId: 'a' }).deliveryTag,
      request('add', [2, 0], { replyTo: callmeExchange(1), correlationId: 'b' }).deliveryTag,
      request('add', [3, 0], { replyTo: directAddress(2), correlationId: 'c' }).deliveryTag,
    ];
    for (let n = 1; n <= 3; n++) {
      await port.until(() => port.published.length >= n);
      await turns();
      expect(port.published).toHaveLength(n);
      expect([...port.acked]).toEqual(tags.slice(0, n - 1));
      port.published[n - 1]!.confirm();
    }
    await port.until(() => port.acked.size === 3);
    expect(replies().map(({ body }) => body)).toEqual([{ result: 1 }, { result: 2 }, { result: 3 }]);
  });

  it('drops a request whose first reply the broker refuses, costing neither the consuming channel nor the next reply', async () => {
    const { port, main, request, replies, ran } = await start();
    port.autoConfirm = false;
    const refused = request('add', [1, 1], { replyTo: callmeExchange(403), correlationId: 'a' });
    const next = request('add', [2, 2], { replyTo: directAddress(1), correlationId: 'b' });
    await port.until(() => port.published.length >= 1);
    const probe = port.published[0]!.channel;
    probe.closeWith(
      new PortError('access-refused', `ACCESS_REFUSED - write access to exchange '${callmeExchange(403)}' refused`, { replyCode: 403 }),
    );
    await port.until(() => port.acked.has(refused.deliveryTag));
    await port.until(() => port.published.length >= 2);
    const nextReply = replies(1)[0]!;
    expect(nextReply.target).toBe(directAddress(1));
    expect(nextReply.message.channel).not.toBe(probe);
    nextReply.message.confirm();
    await port.until(() => port.acked.has(next.deliveryTag));
    expect(port.consumers.get(requestQueue)?.channel.connection).toBe(main);
    expect(port.consumers.get(requestQueue)?.channel.closed).toBe(false);
    expect(ran).toEqual(['add', 'add']);
  });

  it('after losing its connection, takes no direct address for granted: one the broker closes a probe on gets no more replies, and its requests do not run', async () => {
    // RabbitMQ 3.10 closes the whole connection (541) on a reply to a direct reply-to address of a
    // channel whose node is down. Before, the server's connection came back and was closed again,
    // its requests redelivered, until they expired: every server of the id stalled for a call timeout.
    const context = await start();
    const { port, main, request, replies, ran } = context;
    await answered(context, directAddress(1));
    await answered(context, directAddress(2));
    await turns();
    main.lose(new PortError('internal', 'INTERNAL_ERROR', { replyCode: 541, connection: true }));
    await port.until(() => {
      const consumer = port.consumers.get(requestQueue);
      return consumer !== undefined && consumer.channel.connection !== main && !consumer.channel.closed;
    });
    port.autoConfirm = false;
    const published = port.published.length;
    const dead = request('add', [1, 1], { replyTo: directAddress(1), correlationId: 'dead' });
    await port.until(() => port.published.length > published);
    const probe = replies(published)[0]!;
    expect(probe.target).toBe(directAddress(1));
    expect(probe.message.channel.confirms).toBe(true);
    expect(probe.message.channel.connection).not.toBe(port.consumers.get(requestQueue)!.channel.connection);
    probe.message.channel.closeWith(new PortError('internal', 'INTERNAL_ERROR', { replyCode: 541, connection: true }));
    await port.until(() => port.acked.has(dead.deliveryTag));
    const runs = ran.length;
    const again = request('add', [2, 2], { replyTo: directAddress(1), correlationId: 'again' });
    await port.until(() => port.acked.has(again.deliveryTag));
    expect(ran).toHaveLength(runs);
    const alive = request('add', [3, 3], { replyTo: directAddress(2), correlationId: 'alive' });
    await port.until(() => port.published.length > published + 1);
    const aliveReply = replies(published + 1)[0]!;
    expect(aliveReply).toMatchObject({ target: directAddress(2), body: { result: 6 } });
    expect(aliveReply.message.channel.confirms).toBe(true);
    aliveReply.message.confirm();
    await port.until(() => port.acked.has(alive.deliveryTag));
  });

  it('publishes again, on a new channel, the replies a closed channel had not confirmed', async () => {
    const context = await start();
    const { port, request, replies } = context;
    await answered(context, callmeExchange(1));
    await answered(context, callmeExchange(2));
    port.autoConfirm = false;
    const a = request('add', [1, 1], { replyTo: callmeExchange(1), correlationId: 'a' });
    const b = request('add', [2, 2], { replyTo: callmeExchange(2), correlationId: 'b' });
    await port.until(() => port.published.length >= 4);
    const channel = port.published[2]!.channel;
    expect(port.published[3]!.channel).toBe(channel);
    channel.closeWith(new PortError('internal', 'INTERNAL_ERROR', { replyCode: 541 }));
    await port.until(() => port.published.length >= 6);
    const again = replies(4);
    expect(again.map(({ target, body }) => [target, body])).toEqual([
      [callmeExchange(1), { result: 2 }],
      [callmeExchange(2), { result: 4 }],
    ]);
    expect(again.every(({ message }) => message.channel !== channel)).toBe(true);
    for (const { message } of again) message.confirm();
    await port.until(() => port.acked.has(a.deliveryTag) && port.acked.has(b.deliveryTag));
  });

  it('drops a reply whose exchange is gone (its proxy left) without publishing it again', async () => {
    const context = await start();
    const { port, request } = context;
    await answered(context, callmeExchange(1));
    port.autoConfirm = false;
    const { deliveryTag } = request('add', [1, 1], { replyTo: callmeExchange(1), correlationId: 'a' });
    await port.until(() => port.published.length >= 2);
    port.published[1]!.channel.closeWith(
      new PortError('not-found', `NOT_FOUND - no exchange '${callmeExchange(1)}' in vhost '/'`, { replyCode: 404 }),
    );
    await port.until(() => port.acked.has(deliveryTag));
    await turns();
    expect(port.published).toHaveLength(2);
  });

  it('holds the worker of a reply publish() could not take until the connection takes writes again', async () => {
    const context = await start({ workers: 1 });
    const { port, main, request, ran, replies } = context;
    await answered(context, directAddress(1));
    // The plain channel for direct replies opens once the broker took a reply to a direct address.
    const consuming = port.consumers.get(requestQueue)!.channel;
    await port.until(() => port.channels.some((channel) => channel.connection === main && !channel.confirms && channel !== consuming));
    main.congest();
    const held = request('add', [2, 2], { replyTo: directAddress(1), correlationId: 'held' });
    const waiting = request('add', [3, 3], { replyTo: directAddress(1), correlationId: 'waiting' });
    await port.until(() => port.published.length >= 2);
    await turns();
    expect(port.published).toHaveLength(2);
    expect(replies(1)[0]!.message.state).toBe('none');
    expect(ran).toEqual(['add', 'add']);
    expect(port.acked.has(held.deliveryTag)).toBe(false);
    main.drain();
    await port.until(() => port.acked.has(held.deliveryTag) && port.acked.has(waiting.deliveryTag));
    expect(ran).toEqual(['add', 'add', 'add']);
  });
});
