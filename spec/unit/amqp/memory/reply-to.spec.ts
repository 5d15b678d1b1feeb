import type { Delivery } from '../../../../lib/amqp/port.js';
import { Collector, closeBrokers, declare, freshBroker, open, passes, publishConfirmed, text, whenClosed } from './helpers.js';

const replyTo = 'amq.rabbitmq.reply-to';

afterEach(closeBrokers);

describe('embedded broker: direct reply-to', () => {
  async function rpcPair(): Promise<{
    url: string;
    client: Awaited<ReturnType<typeof open>>;
    server: Awaited<ReturnType<typeof open>>;
    replies: Collector<Delivery>;
    requests: Collector<Delivery>;
  }> {
    const { url } = freshBroker();
    const client = await open(url);
    const server = await open(url);
    await declare(server.channel, 'rpc');
    const requests = new Collector<Delivery>();
    await server.channel.consume('rpc', requests.push, { noAck: true });
    const replies = new Collector<Delivery>();
    await client.channel.consume(replyTo, replies.push, { noAck: true });
    return { url, client, server, replies, requests };
  }

  it('rewrites replyTo to the channel address and routes a reply to that address back to the channel', async () => {
    const { client, server, replies, requests } = await rpcPair();
    expect(await publishConfirmed(client.channel, '', 'rpc', 'ping', { replyTo, correlationId: 'c1' })).toBeUndefined();
    const [request] = await requests.until(1);
    const address = request?.properties.replyTo;
    expect(address).toMatch(/^amq\.rabbitmq\.reply-to\.[A-Za-z0-9+/=]+\.[A-Za-z0-9+/=]+$/);
    expect(await publishConfirmed(server.channel, '', address as string, 'pong', { correlationId: 'c1' })).toBeUndefined();
    const [reply] = await replies.until(1);
    expect(reply).toMatchObject({ exchange: '', routingKey: address, redelivered: false, properties: { correlationId: 'c1' } });
    expect(text(reply as Delivery)).toBe('pong');
  });

  it('closes the channel with 406 when it publishes with replyTo before consuming replies', async () => {
    const { url } = freshBroker();
    const { connection, channel } = await open(url);
    // A reply consumer on another channel of the same connection does not count.
    const other = await connection.openChannel({ confirms: false });
    await other.consume(replyTo, () => undefined, { noAck: true });
    const closed = whenClosed(channel);
    const confirmation = publishConfirmed(channel, '', 'anything', 'x', { replyTo });
    await expect(closed).resolves.toMatchObject({
      kind: 'precondition-failed',
      replyCode: 406,
      message: expect.stringContaining('fast reply consumer does not exist'),
    });
    await expect(confirmation).resolves.toMatchObject({ kind: 'precondition-failed' });
  });

  it('refuses a reply consumer that acknowledges, and a second one on the channel (406)', async () => {
    const { url } = freshBroker();
    const first = await open(url);
    await expect(first.channel.consume(replyTo, () => undefined, { noAck: false })).rejects.toMatchObject({
      kind: 'precondition-failed',
      replyCode: 406,
    });
    const second = await open(url);
    await second.channel.consume(replyTo, () => undefined, { noAck: true });
    const closed = whenClosed(second.channel);
    await expect(second.channel.consume(replyTo, () => undefined, { noAck: true })).rejects.toMatchObject({
      kind: 'precondition-failed',
      message: expect.stringContaining('reply consumer already set'),
    });
    await expect(closed).resolves.toMatchObject({ replyCode: 406 });
  });

  it('drops a reply to an address whose consumer is gone, and keeps the publisher channel open', async () => {
    const { client, server, replies, requests } = await rpcPair();
    await publishConfirmed(client.channel, '', 'rpc', 'ping', { replyTo });
    const [request] = await requests.until(1);
    await client.channel.close();
    expect(await publishConfirmed(server.channel, '', request?.properties.replyTo as string, 'late')).toBeUndefined();
    expect(await publishConfirmed(server.channel, '', 'rpc', 'still open')).toBeUndefined();
    expect(replies.items).toHaveLength(0);
  });

  it('gives a new address after the reply consumer is cancelled and consumed again; the old one is dead', async () => {
    const { url } = freshBroker();
    const client = await open(url);
    const server = await open(url);
    await declare(server.channel, 'rpc');
    const requests = new Collector<Delivery>();
    await server.channel.consume('rpc', requests.push, { noAck: true });
    const first = new Collector<Delivery>();
    const tag = await client.channel.consume(replyTo, first.push, { noAck: true });
    await publishConfirmed(client.channel, '', 'rpc', 'one', { replyTo });
    await client.channel.cancel(tag);
    const second = new Collector<Delivery>();
    await client.channel.consume(replyTo, second.push, { noAck: true });
    await publishConfirmed(client.channel, '', 'rpc', 'two', { replyTo });
    const [one, two] = await requests.until(2);
    expect(one?.properties.replyTo).not.toBe(two?.properties.replyTo);
    await publishConfirmed(server.channel, '', one?.properties.replyTo as string, 'to the old address');
    await publishConfirmed(server.channel, '', two?.properties.replyTo as string, 'to the new address');
    await expect(second.until(1)).resolves.toEqual([expect.objectContaining({ routingKey: two?.properties.replyTo })]);
    expect(first.items).toHaveLength(0);
    expect(second.items).toHaveLength(1);
  });

  it('drops replies to addresses that do not split into two parts, as RabbitMQ 3.10 does', async () => {
    const { server, replies } = await rpcPair();
    for (const key of ['amq.rabbitmq.reply-to.', 'amq.rabbitmq.reply-to.one', 'amq.rabbitmq.reply-to.a.b.c']) {
      expect(await publishConfirmed(server.channel, '', key, 'x')).toBeUndefined();
    }
    await passes();
    expect(replies.items).toHaveLength(0);
  });

  it('closes the publishing connection with 541 for an address that is not a channel reference, as RabbitMQ 3.10 does', async () => {
    const { server, replies } = await rpcPair();
    const connectionClosed = whenClosed(server.connection);
    const channelClosed = whenClosed(server.channel);
    const confirmation = publishConfirmed(server.channel, '', 'amq.rabbitmq.reply-to.abc.def', 'x');
    await expect(connectionClosed).resolves.toMatchObject({ kind: 'internal', replyCode: 541 });
    await expect(channelClosed).resolves.toBeUndefined();
    await expect(confirmation).resolves.toMatchObject({ kind: 'closed' });
    expect(replies.items).toHaveLength(0);
  });

  it('delivers a mandatory reply and also returns it as unroutable (312), as RabbitMQ 3.10 does', async () => {
    const { client, server, replies, requests } = await rpcPair();
    await publishConfirmed(client.channel, '', 'rpc', 'ping', { replyTo });
    const [request] = await requests.until(1);
    const returned = new Collector<unknown>();
    server.channel.onReturn(returned.push);
    expect(await publishConfirmed(server.channel, '', request?.properties.replyTo as string, 'pong', {}, true)).toBeUndefined();
    await expect(returned.until(1)).resolves.toEqual([expect.objectContaining({ replyCode: 312, replyText: 'NO_ROUTE' })]);
    await expect(replies.until(1)).resolves.toHaveLength(1);
  });

  it('refuses to acknowledge a reply (it is not an acknowledged delivery): 406', async () => {
    const { client, server, replies, requests } = await rpcPair();
    await publishConfirmed(client.channel, '', 'rpc', 'ping', { replyTo });
    const [request] = await requests.until(1);
    await publishConfirmed(server.channel, '', request?.properties.replyTo as string, 'pong');
    const [reply] = await replies.until(1);
    const closed = whenClosed(client.channel);
    client.channel.ack(reply as Delivery);
    await expect(closed).resolves.toMatchObject({ replyCode: 406, message: expect.stringContaining('unknown delivery tag') });
  });
});
