/**
 * Raw messaging (lib/messaging/raw.ts) over a fake of the AMQP port: what a nack does to the
 * channel it publishes on. Time is jest's fake clock.
 */
import { jest } from '@jest/globals';
import { PortError } from '../../../lib/amqp/port.js';
import { FakePort, turns } from '../../support/fake-port.js';

afterEach(() => {
  jest.useRealTimers();
});

describe('raw messaging and nacks', () => {
  it('publishes on a new channel once the broker nacked a message on a channel open 1 s, and keeps the old one for the reply it owes', async () => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
    const port = new FakePort();
    const connection = port.connection();
    try {
      const call = connection.rpc('', 'upper', 'hello', { timeout: 60 });
      // Settled by close() should an expectation below fail first.
      call.catch(() => undefined);
      await port.until(() => port.published[0]?.state === 'confirmed');
      const old = port.published[0]!.channel;
      const oldReplies = port.consumers.get('amq.rabbitmq.reply-to')!;
      port.autoConfirm = false;
      // A nack on a channel opened less than a second ago keeps it.
      const early = connection.publish('', 'q', 'early');
      await port.until(() => port.published.length === 2);
      port.published[1]!.fail(new PortError('nacked', 'message nacked'));
      await expect(early).rejects.toMatchObject({ code: 'PUBLISH_FAILED' });
      jest.advanceTimersByTime(1_000);
      const late = connection.publish('', 'q', 'late');
      await port.until(() => port.published.length === 3);
      expect(port.published[2]!.channel).toBe(old);
      port.published[2]!.fail(new PortError('nacked', 'message nacked'));
      await expect(late).rejects.toMatchObject({ code: 'PUBLISH_FAILED' });
      port.autoConfirm = true;
      await connection.publish('', 'q', 'next');
      expect(port.published[3]!.channel).not.toBe(old);
      await turns();
      expect(old.closed).toBe(false);
      oldReplies.onDelivery({
        content: Buffer.from('HELLO'),
        properties: { correlationId: port.published[0]!.properties.correlationId },
        redelivered: false,
        exchange: '',
        routingKey: 'amq.rabbitmq.reply-to',
        deliveryTag: 0,
      });
      await expect(call).resolves.toMatchObject({ body: Buffer.from('HELLO') });
      await port.until(() => old.closed);
      expect(port.published[3]!.channel.closed).toBe(false);
    } finally {
      await connection.close();
    }
  });
});
