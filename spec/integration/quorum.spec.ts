/**
 * Quorum server queues (`queueType: 'quorum'`), on both brokers where they agree (RabbitMQ: a
 * single node hosts quorum queues too), and the delivery limit on RabbitMQ alone (the embedded
 * broker keeps a quorum declaration and compares it, but never redelivers with `x-delivery-count`).
 */
import { describe, expect, it } from '@jest/globals';
import type { AmqpChannel, Delivery } from '../../lib/amqp/port.js';
import { QAMServer, silentLogger } from '../../lib/index.js';
import { uniqueName, waitUntil } from '../support/broker.js';
import { brokers } from '../support/brokers.js';

describe.each(brokers)('on %s', (_name, useBroker) => {
  const broker = useBroker();

  it('serves from a quorum queue', async () => {
    const server = broker.server({ queueType: 'quorum', deliveryLimit: 3 }).registerFunction((a: number, b: number) => a + b, 'add');
    await server.serve();
    const proxy = broker.proxy({ serverId: server.serverId });
    await expect(proxy['add'](2, 3)).resolves.toBe(5);
    const queue = await broker.queue(`server_${server.serverId}_queue`);
    expect(queue).toMatchObject({ durable: true, autoDelete: false, exclusive: false });
  });

  it('refuses to serve from a queue declared with the other type, with PRECONDITION_FAILED naming the queue', async () => {
    const classic = broker.server().registerFunction(() => 1, 'one');
    await classic.serve();
    const quorum = broker.server({ serverId: classic.serverId, queueType: 'quorum' }).registerFunction(() => 1, 'one');
    const refused = await quorum.serve().catch((error: unknown) => error);
    expect(refused).toMatchObject({ code: 'PRECONDITION_FAILED' });
    expect((refused as Error).message).toContain(`server_${classic.serverId}_queue`);
    expect((refused as Error).message).toContain('x-queue-type');
    // The classic server is untouched.
    await expect(broker.proxy<{ one(): number }>({ serverId: classic.serverId }).one()).resolves.toBe(1);
  });

  it('keeps the QAM protocol queue classic (its flags are the protocol)', async () => {
    const server = broker.server({ queueType: 'quorum', protocol: ['native', 'qam'] }).registerFunction(() => 1, 'one');
    await server.serve();
    const channel = await broker.channel();
    // A classic redeclaration of the QAM queue matches; of the native one, it does not.
    await channel.declareQueue(`${server.serverId}_server_queue`, { durable: true, exclusive: false, autoDelete: false });
    const channel2 = await broker.channel();
    const mismatch = await channel2
      .declareQueue(`server_${server.serverId}_queue`, { durable: true, exclusive: false, autoDelete: false })
      .catch((error: unknown) => error);
    expect(mismatch).toMatchObject({ kind: 'precondition-failed' });
  });
});

describe('the delivery limit (RabbitMQ)', () => {
  const broker = (brokers[0] as (typeof brokers)[number])[1]();

  /**
   * Takes the next request off `queue` and returns it to the queue `times` times, as servers dying
   * mid-call would: nacked with requeue, the last time by closing the channel (a nack would have it
   * delivered again at once to the same consumer). Resolves with the deliveries' `x-delivery-count`s.
   */
  async function bounce(channel: AmqpChannel, queue: string, times: number): Promise<number[]> {
    const counts: number[] = [];
    await channel.prefetch(1);
    await channel.consume(
      queue,
      (delivery: Delivery) => {
        const headers = (delivery.properties.headers ?? {}) as Record<string, unknown>;
        counts.push(typeof headers['x-delivery-count'] === 'number' ? headers['x-delivery-count'] : 0);
        if (counts.length < times) channel.nack(delivery, true);
      },
      { noAck: false },
    );
    await waitUntil(() => counts.length === times, { timeoutMs: 20_000, message: `${times} deliveries` });
    await channel.close();
    return counts;
  }

  it('answers a request on its last delivery with DELIVERY_LIMIT, without running it', async () => {
    const serverId = uniqueName('qam_poison');
    let runs = 0;
    const declaring = broker.server({ serverId, queueType: 'quorum', deliveryLimit: 2 });
    await declaring.serve();
    await declaring.close();
    const proxy = broker.proxy<{ poison(): string; fine(): string }>({ serverId, timeout: 60 });
    const call = proxy.poison().catch((error: unknown) => error);
    const counts = await bounce(await broker.channel(), `server_${serverId}_queue`, 2);
    expect(counts).toEqual([0, 1]);
    const server = broker
      .server({ serverId, queueType: 'quorum', deliveryLimit: 2 })
      .registerFunction(() => {
        runs++;
        return 'ran';
      }, 'poison')
      .registerFunction(() => 'fine', 'fine');
    await server.serve();
    expect(await call).toMatchObject({ code: 'REMOTE_ERROR', remoteCode: 'DELIVERY_LIMIT' });
    expect(runs).toBe(0);
    // The server goes on answering.
    await expect(proxy.fine()).resolves.toBe('fine');
  }, 60_000);

  it('dead-letters a request at the limit when a dead-letter exchange is set', async () => {
    const serverId = uniqueName('qam_poison_dlx');
    const deadLetters = uniqueName('qam_dlx');
    const channel = await broker.channel();
    await channel.declareExchange(deadLetters, 'fanout', { durable: false, autoDelete: false });
    await channel.declareQueue(deadLetters, { durable: false, exclusive: false, autoDelete: false });
    await channel.bindQueue(deadLetters, deadLetters, '');
    try {
      const options = { serverId, queueType: 'quorum', deliveryLimit: 1, deadLetterExchange: deadLetters } as const;
      const declaring = broker.server(options);
      await declaring.serve();
      await declaring.close();
      const proxy = broker.proxy<{ poison(): string }>({ serverId, timeout: 60 });
      void proxy.poison().catch(() => undefined);
      expect(await bounce(await broker.channel(), `server_${serverId}_queue`, 1)).toEqual([0]);
      let runs = 0;
      const server = broker.server(options).registerFunction(() => {
        runs++;
        return 'ran';
      }, 'poison');
      await server.serve();
      await waitUntil(async () => (await broker.queue(deadLetters))?.ready === 1, { timeoutMs: 20_000, message: 'a dead letter' });
      expect(runs).toBe(0);
    } finally {
      await channel.deleteQueue(deadLetters);
      await channel.deleteExchange(deadLetters);
    }
  }, 60_000);

  it('refuses a delivery limit without a quorum queue, and a dead-letter exchange without a limit', () => {
    expect(() => new QAMServer({ serverId: 'x', deliveryLimit: 3, logger: silentLogger })).toThrow(/quorum/);
    expect(() => new QAMServer({ serverId: 'x', queueType: 'quorum', deadLetterExchange: 'dlx', logger: silentLogger })).toThrow(
      /deliveryLimit/,
    );
    expect(() => new QAMServer({ serverId: 'x', queueType: 'stream' as 'quorum', logger: silentLogger })).toThrow(TypeError);
  });
});
