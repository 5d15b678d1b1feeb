import { randomBytes } from 'node:crypto';
import { AmqplibConnection, amqplibPort } from '../../../lib/amqp/amqplib.js';
import { silentLogger } from '../../../lib/logger.js';
import { amqplibVersion, testedAmqplibVersions } from '../../../lib/amqp/amqplib-internals.js';
import { PortError, type AmqpConnection, type Delivery, type MessageProperties, type Returned } from '../../../lib/amqp/port.js';
import { brokerUrl, uniqueName } from '../../support/broker.js';

const target = {
  url: brokerUrl(),
  label: 'amqp://guest@127.0.0.1:5672/',
  username: 'guest',
  heartbeatSeconds: 10,
  connectTimeoutMs: 10_000,
  connectionName: 'qam amqplib-port spec',
  tls: undefined,
  logger: silentLogger,
};

describe('the amqplib adapter of the AMQP port, against RabbitMQ', () => {
  let connection: AmqpConnection;
  beforeEach(async () => {
    connection = await amqplibPort.connect(target);
  });
  afterEach(() => connection.close());

  it('uses the streamlined write path with the amqplib version installed (fails when a new amqplib changes what it relies on)', () => {
    expect(testedAmqplibVersions).toContain(amqplibVersion);
    expect(connection).toBeInstanceOf(AmqplibConnection);
    expect((connection as AmqplibConnection).streamlined).toBe(true);
  });

  it('declares, publishes with confirms, consumes and acknowledges', async () => {
    const queue = uniqueName('qam_port');
    const channel = await connection.openChannel({ confirms: true });
    try {
      await channel.declareQueue(queue, { durable: false, exclusive: true, autoDelete: false });
      const received = new Promise<Delivery>((resolve) => void channel.consume(queue, resolve, { noAck: false }));
      const confirmed = new Promise<PortError | undefined>((resolve) => {
        channel.publish('', queue, Buffer.from('hello'), { contentType: 'text/plain', correlationId: 'c1' }, { mandatory: true }, resolve);
      });
      await expect(confirmed).resolves.toBeUndefined();
      const delivery = await received;
      expect(delivery.content.toString()).toBe('hello');
      expect(delivery.properties.correlationId).toBe('c1');
      expect(delivery.redelivered).toBe(false);
      channel.ack(delivery);
    } finally {
      await channel.deleteQueue(queue).catch(() => undefined);
      await channel.close();
    }
  });

  it('returns an unroutable mandatory message', async () => {
    const channel = await connection.openChannel({ confirms: true });
    try {
      const returned = new Promise<Returned>((resolve) => channel.onReturn(resolve));
      channel.publish('', uniqueName('qam_nowhere'), Buffer.from('x'), { correlationId: 'r1' }, { mandatory: true }, () => undefined);
      const message = await returned;
      expect(message.replyCode).toBe(312);
      expect(message.properties.correlationId).toBe('r1');
    } finally {
      await channel.close();
    }
  });

  it('classifies the broker closing a channel: a publish to a missing exchange is not-found, for the confirm and for onClose', async () => {
    const channel = await connection.openChannel({ confirms: true });
    const closed = new Promise<PortError | undefined>((resolve) => channel.onClose(resolve));
    const confirmed = new Promise<PortError | undefined>((resolve) => {
      channel.publish(uniqueName('qam_missing_ex'), 'x', Buffer.from('x'), {}, { mandatory: false }, resolve);
    });
    const failure = await confirmed;
    expect(failure).toBeInstanceOf(PortError);
    expect(failure?.kind).toBe('not-found');
    expect(failure?.replyCode).toBe(404);
    await expect(closed).resolves.toMatchObject({ kind: 'not-found' });
    expect(() => channel.publish('', 'x', Buffer.from('x'), {}, { mandatory: false })).toThrow(PortError);
    await expect(channel.whenWritable()).rejects.toMatchObject({ kind: 'not-found' });
  });

  it('classifies a redeclaration with other flags as precondition-failed, and a reserved name as access-refused', async () => {
    const queue = uniqueName('qam_port');
    const first = await connection.openChannel({ confirms: false });
    await first.declareQueue(queue, { durable: false, exclusive: false, autoDelete: false });
    const second = await connection.openChannel({ confirms: false });
    await expect(second.declareQueue(queue, { durable: true, exclusive: false, autoDelete: false })).rejects.toMatchObject({
      kind: 'precondition-failed',
      replyCode: 406,
    });
    const third = await connection.openChannel({ confirms: false });
    await expect(third.declareExchange(`amq.${uniqueName('qam')}`, 'direct', { durable: false, autoDelete: true })).rejects.toMatchObject({
      kind: 'access-refused',
    });
    await first.deleteQueue(queue);
    await first.close();
  });

  it("publish() says when to wait, and whenWritable() resolves once the socket drained (amqplib's 'drain' works)", async () => {
    const channel = await connection.openChannel({ confirms: false });
    const body = randomBytes(256 * 1024);
    const routingKey = uniqueName('qam_nowhere');
    let published = 0;
    while (published < 1000) {
      published++;
      if (!channel.publish('', routingKey, body, {}, { mandatory: false })) break;
    }
    expect(published).toBeGreaterThan(1);
    expect(published).toBeLessThan(1000);
    await expect(channel.whenWritable()).resolves.toBeUndefined();
    await channel.close();
  });

  it('sends a frozen headers object as amqplib encodes it, from its first message on, whatever the other properties', async () => {
    const queue = uniqueName('qam_port');
    const headers = Object.freeze({ 'x-qam-wire': 2, 'x-text': '{"name":"é ✓","pid":7}', 'x-big': 70_000 });
    const variants: MessageProperties[] = [
      { contentType: 'application/json', contentEncoding: 'utf-8', correlationId: 'a', headers },
      { headers },
      { contentEncoding: 'gzip', headers, deliveryMode: 2, replyTo: 'r', expiration: '60000', type: 't', appId: 'app' },
      { contentType: 'text/plain', headers, priority: 3, messageId: 'm', timestamp: 1_700_000_000 },
      { contentType: 'application/json', contentEncoding: 'utf-8', correlationId: 'a', headers },
    ];
    const channel = await connection.openChannel({ confirms: true });
    const socket = (connection as AmqplibConnection).socket;
    if (socket === undefined) throw new Error('not streamlined');
    const written: Buffer[] = [];
    const write = socket.write;
    socket.write = function (this: typeof socket, ...args: Parameters<typeof write>) {
      if (Buffer.isBuffer(args[0])) written.push(Buffer.from(args[0]));
      return write.apply(this, args);
    } as typeof write;
    try {
      await channel.declareQueue(queue, { durable: false, exclusive: true, autoDelete: false });
      const received: Delivery[] = [];
      const all = new Promise<void>((resolve) => {
        void channel.consume(
          queue,
          (delivery) => {
            if (received.push(delivery) === variants.length) resolve();
          },
          { noAck: true },
        );
      });
      for (const [index, properties] of variants.entries()) {
        await new Promise((resolve) => channel.publish('', queue, Buffer.from(`m${index}`), properties, { mandatory: false }, resolve));
      }
      await all;
      for (const [index, delivery] of received.entries()) {
        expect(delivery.content.toString()).toBe(`m${index}`);
        expect(delivery.properties).toMatchObject({ ...variants[index], headers: { ...headers } });
      }
      // The first message was encoded by amqplib with its headers, the last (the same message) with
      // the table kept from then: the bytes that reached the socket are the same.
      const publishes = written.filter((chunk) => chunk.includes('m0') || chunk.includes('m4'));
      expect(publishes).toHaveLength(2);
      expect(publishes[1]?.toString('hex')).toBe(
        publishes[0]?.toString('hex').replace(Buffer.from('m0').toString('hex'), Buffer.from('m4').toString('hex')),
      );
    } finally {
      socket.write = write;
      await channel.deleteQueue(queue).catch(() => undefined);
      await channel.close();
    }
  });

  it('fails a connect to a closed port as connect-failed, refused', async () => {
    await expect(amqplibPort.connect({ ...target, url: 'amqp://guest:guest@127.0.0.1:1/' })).rejects.toMatchObject({
      kind: 'connect-failed',
      reason: 'refused',
    });
  });
});
