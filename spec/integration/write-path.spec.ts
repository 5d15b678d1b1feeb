import { randomBytes } from 'node:crypto';
import * as amqp from 'amqplib';
import type { Channel, ChannelModel } from 'amqplib';
import { AmqplibConnection } from '../../lib/amqp/amqplib.js';
import { uniqueName } from '../support/broker.js';
import { quietConnection, url } from './fixtures.js';

/**
 * Publishes messages larger than a socket's 16 KiB highWaterMark in one synchronous loop until
 * `publish()` returns false; `drained` tells whether the channel's 'drain' follows within 10 s. The
 * routing key has no queue, so the broker drops the messages and stores nothing.
 */
async function publishUntilFull(channel: Channel): Promise<{ published: number; drained: Promise<boolean> }> {
  const routingKey = uniqueName('qam_nowhere');
  const body = randomBytes(20 * 1024);
  let published = 0;
  while (published < 10_000) {
    published++;
    if (!channel.publish('', routingKey, body)) break;
  }
  const drained = new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), 10_000);
    channel.once('drain', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
  return { published, drained };
}

describe("amqplib's write path", () => {
  it('on a plain amqplib channel, publish() returns false once its buffer is full, and the channel drains', async () => {
    const model: ChannelModel = await amqp.connect(url, { noDelay: true });
    try {
      const { published, drained } = await publishUntilFull(await model.createChannel());
      expect(published).toBeGreaterThan(1);
      expect(published).toBeLessThan(10_000);
      await expect(drained).resolves.toBe(true);
    } finally {
      await model.close();
    }
  });

  // Before the AMQP port, qam's direct writes made publish() report the socket's 16 KiB buffer and
  // the channel's 'drain' never came (issue 11, item 3).
  it("on a qam channel, publish() returns false only when the socket is full, and the channel's 'drain' follows", async () => {
    const connection = quietConnection();
    try {
      const link = await connection.link();
      if (!(link instanceof AmqplibConnection)) throw new Error('not an amqplib connection');
      const { published, drained } = await publishUntilFull(await link.model.createChannel());
      expect(published).toBeGreaterThan(1);
      await expect(drained).resolves.toBe(true);
    } finally {
      await connection.close();
    }
  });
});
