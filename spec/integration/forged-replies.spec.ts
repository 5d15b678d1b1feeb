import * as amqp from 'amqplib';
import { setTimeout as delay } from 'node:timers/promises';
import { QAMProxy, QAMServer, silentLogger } from '../../lib/index.js';
import { uniqueName, waitUntil } from '../support/broker.js';
import { url } from './fixtures.js';

const slow = async (ms: number, value: unknown): Promise<unknown> => {
  await delay(ms);
  return value;
};

/**
 * A party that may publish to a server, or to a proxy's reply exchange, tries to have a proxy take
 * its reply for the real one by guessing the id of the call in flight, the way ids used to be made.
 */
describe('forged replies', () => {
  it('a QAM proxy takes no reply the server was made to send it under ids computed from the clock', async () => {
    const serverId = uniqueName('forged');
    const clientId = uniqueName('victim');
    const server = new QAMServer({ serverId, url, protocol: 'qam', workers: 64, logger: silentLogger })
      .registerFunction(slow, 'slow')
      .registerFunction((value: unknown) => value, 'echo');
    await server.serve();
    const victim = new QAMProxy({ serverId, url, protocol: 'qam', clientId, timeout: 20, logger: silentLogger });
    const attacker = await amqp.connect(url);
    try {
      await expect(victim['echo']('reply queue declared')).resolves.toBe('reply queue declared');
      const before = Date.now();
      const real = victim['slow'](3000, 'real');
      const after = Date.now();
      // Ids used to be max(last + 1, Date.now() * 1000): a call made a millisecond or more after the
      // previous one had the id of that millisecond. The attacker names every millisecond of the
      // last two seconds.
      const channel = await attacker.createConfirmChannel();
      let sent = 0;
      for (let ms = before - 2000; ms <= after; ms++) {
        const request = { id: ms * 1000, method_name: 'echo', routing_key: `${clientId}_client_routing_key`, params: ['forged'] };
        channel.publish(`${serverId}_server_exchange`, `${serverId}_server_routing_key`, Buffer.from(JSON.stringify(request)), {
          contentType: 'application/json',
          contentEncoding: 'utf-8',
        });
        sent++;
      }
      await channel.waitForConfirms();
      await waitUntil(() => victim.getStats().droppedReplies >= sent - 1, {
        timeoutMs: 40_000,
        message: 'the forged replies reaching the victim',
      });
      await expect(real).resolves.toBe('real');
      await waitUntil(() => victim.getStats().droppedReplies >= sent, { timeoutMs: 40_000, message: 'every forged reply dropped' });
      expect(victim.getStats().droppedReplies).toBe(sent);
    } finally {
      await attacker.close();
      await victim.close();
      await server.close({ deleteQueue: true });
    }
  }, 90_000);

  it("a callme proxy takes no reply published to its reply exchange under the exchange's uuid and a counter", async () => {
    const serverId = uniqueName('forged');
    const server = new QAMServer({ serverId, url, logger: silentLogger }).registerFunction(slow, 'slow');
    await server.serve();
    const victim = new QAMProxy({ serverId, url, replies: 'callme', timeout: 20, logger: silentLogger });
    const attacker = await amqp.connect(url);
    try {
      // Any party that sees one request learns the reply exchange's name (so does one that lists
      // the broker's exchanges); under callme's permissions every server user may write to it.
      const channel = await attacker.createConfirmChannel();
      const { queue } = await channel.assertQueue('', { exclusive: true });
      await channel.bindQueue(queue, `server_${serverId}_ex`, serverId);
      const seen = new Promise<string>((resolve) => {
        void channel.consume(queue, (message) => message !== null && resolve(String(message.properties.replyTo)), { noAck: true });
      });
      await expect(victim['slow'](0, 'first')).resolves.toBe('first');
      const exchange = await seen;
      expect(exchange).toMatch(/^client_guest_ex_/);
      const uuid = exchange.slice('client_guest_ex_'.length);
      const real = victim['slow'](3000, 'real');
      const forged = 100;
      for (let counter = 1; counter <= forged; counter++) {
        channel.publish(exchange, '', Buffer.from(JSON.stringify({ result: 'forged' })), {
          correlationId: `${uuid}.${counter.toString(36)}`,
          contentType: 'application/json',
        });
      }
      await channel.waitForConfirms();
      await waitUntil(() => victim.getStats().droppedReplies >= forged - 1, {
        timeoutMs: 40_000,
        message: 'the forged replies reaching the victim',
      });
      await expect(real).resolves.toBe('real');
      await waitUntil(() => victim.getStats().droppedReplies >= forged, { timeoutMs: 40_000, message: 'every forged reply dropped' });
      expect(victim.getStats().droppedReplies).toBe(forged);
    } finally {
      await attacker.close();
      await victim.close();
      await server.close({ deleteQueue: true });
    }
  }, 90_000);
});
