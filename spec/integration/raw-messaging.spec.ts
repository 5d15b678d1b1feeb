/**
 * Raw RPC and publishing on a QAMConnection (Shrapnel's `rpc.call` and confirmed publish), on
 * both brokers: a non-qam RPC service called through direct reply-to or the caller's own queue,
 * timeouts, cancellation, NO_ROUTE, and raw publishes with their properties.
 */
import { QAMAbortException, QAMNoRouteException, QAMTimeoutException } from '../../lib/index.js';
import type { AmqpChannel, Delivery } from '../../lib/amqp/port.js';
import { brokers } from '../support/brokers.js';
import { uniqueName, waitUntil } from '../support/broker.js';

describe.each(brokers)('raw messaging on %s', (_name, useBroker) => {
  const broker = useBroker();

  /** A hand-written RPC service: answers `upper` requests on its queue with the body in capitals. */
  async function upperService(): Promise<{ queue: string; seen: Delivery[] }> {
    const queue = uniqueName('upper');
    const channel: AmqpChannel = await broker.channel();
    await channel.declareQueue(queue, { durable: false, exclusive: false, autoDelete: true });
    const seen: Delivery[] = [];
    await channel.consume(
      queue,
      (request) => {
        seen.push(request);
        const { replyTo, correlationId } = request.properties;
        channel.publish(
          '',
          String(replyTo),
          Buffer.from(request.content.toString().toUpperCase()),
          { correlationId: String(correlationId), contentType: 'text/plain', messageId: 'reply-1', headers: { served: 'yes' } },
          { mandatory: false },
        );
      },
      { noAck: true },
    );
    return { queue, seen };
  }

  it('calls a non-qam service through direct reply-to: the reply body, properties and fields', async () => {
    const { queue, seen } = await upperService();
    const connection = broker.connection({ fingerprint: { name: 'caller', type: 'test' } });
    const reply = await connection.rpc('', queue, 'hello', {
      properties: { contentType: 'text/plain', messageId: 'm-1', headers: { trace: 't-1' } },
      timeout: 10,
    });
    expect(reply.body.toString()).toBe('HELLO');
    expect(reply.properties).toMatchObject({ contentType: 'text/plain', messageId: 'reply-1', headers: { served: 'yes' } });
    expect(reply.fields).toMatchObject({ exchange: '', redelivered: false });
    const request = seen[0]!;
    expect(request.properties).toMatchObject({ contentType: 'text/plain', messageId: 'm-1', headers: { trace: 't-1', 'x-qam-wire': 2 } });
    expect(JSON.parse(String((request.properties.headers as Record<string, unknown>)['x-qam-fingerprint']))).toMatchObject({
      name: 'caller',
    });
  });

  it("calls through the caller's own reply queue, declared and bound by the caller", async () => {
    const { queue } = await upperService();
    const replies = uniqueName('replies');
    const own = await broker.channel();
    await own.declareQueue(replies, { durable: false, exclusive: false, autoDelete: false });
    const connection = broker.connection();
    try {
      const [a, b] = await Promise.all([
        connection.rpc('', queue, Buffer.from('one'), { replyQueue: replies, timeout: 10 }),
        connection.rpc('', queue, 'two', { replyQueue: replies, timeout: 10 }),
      ]);
      expect([a.body.toString(), b.body.toString()]).toEqual(['ONE', 'TWO']);
      expect(a.fields.routingKey).toBe(replies);
    } finally {
      await connection.close();
      await own.deleteQueue(replies);
    }
  });

  it('times out, is cancelled, and fails at once with NO_ROUTE when nothing takes the request', async () => {
    const silent = uniqueName('silent');
    const channel = await broker.channel();
    await channel.declareQueue(silent, { durable: false, exclusive: false, autoDelete: false });
    const connection = broker.connection();
    try {
      await expect(connection.rpc('', silent, 'x', { timeout: 0.2 })).rejects.toBeInstanceOf(QAMTimeoutException);
      const controller = new AbortController();
      const call = connection.rpc('', silent, 'x', { timeout: 10, signal: controller.signal });
      controller.abort();
      await expect(call).rejects.toBeInstanceOf(QAMAbortException);
      await expect(connection.rpc('', uniqueName('nobody'), 'x', { timeout: 10 })).rejects.toBeInstanceOf(QAMNoRouteException);
    } finally {
      await channel.deleteQueue(silent);
    }
  });

  it('calls a qam server with a hand-made native request', async () => {
    const server = broker.server().registerFunction((a: number, b: number) => a + b, 'add');
    await server.serve();
    const connection = broker.connection();
    const reply = await connection.rpc('', `server_${server.serverId}_queue`, JSON.stringify({ method: 'add', params: [2, 3] }), {
      properties: { contentType: 'application/json' },
    });
    expect(JSON.parse(reply.body.toString())).toEqual({ result: 5 });
  });

  it('publishes raw messages with confirms and properties; NO_ROUTE; reserved headers refused', async () => {
    const queue = uniqueName('raw');
    const channel = await broker.channel();
    await channel.declareQueue(queue, { durable: false, exclusive: false, autoDelete: false });
    const received: Delivery[] = [];
    await channel.consume(queue, (delivery) => received.push(delivery), { noAck: true });
    const connection = broker.connection();
    try {
      await connection.publish('', queue, Buffer.from([1, 2, 3]), {
        properties: { contentType: 'application/octet-stream', messageId: 'id-7', type: 'blob', deliveryMode: 2, expiration: 60_000 },
      });
      await waitUntil(() => received.length === 1);
      expect([...received[0]!.content]).toEqual([1, 2, 3]);
      expect(received[0]!.properties).toMatchObject({
        contentType: 'application/octet-stream',
        messageId: 'id-7',
        type: 'blob',
        expiration: '60000',
      });
      await expect(connection.publish('', uniqueName('nobody'), 'lost')).rejects.toBeInstanceOf(QAMNoRouteException);
      await expect(connection.publish('', uniqueName('nobody'), 'dropped', { mandatory: false })).resolves.toBeUndefined();
      await expect(connection.publish('', queue, 'x', { properties: { headers: { 'x-qam-fingerprint': 'forged' } } })).rejects.toThrow(
        TypeError,
      );
      await expect(connection.publish('', queue, 42 as never)).rejects.toThrow(TypeError);
    } finally {
      await channel.deleteQueue(queue);
    }
  });
});
