import type { Delivery } from '../../../lib/amqp/port.js';
import { BoundedSet, requestFingerprint } from '../../../lib/server/reply-guard.js';

function delivery(content: string, properties: Record<string, unknown>, redelivered = false): Delivery {
  return {
    content: Buffer.from(content),
    deliveryTag: 1,
    redelivered,
    exchange: 'x',
    routingKey: 'k',
    properties: { headers: {}, ...properties },
  } as unknown as Delivery;
}

describe('BoundedSet', () => {
  it('keeps the most recently added keys up to its capacity', () => {
    const set = new BoundedSet(3);
    for (const key of ['a', 'b', 'c']) set.add(key);
    set.add('a');
    set.add('d');
    expect(['a', 'b', 'c', 'd'].filter((key) => set.has(key))).toEqual(['a', 'c', 'd']);
    expect(set.size).toBe(3);
    for (let i = 0; i < 10_000; i++) set.add(String(i));
    expect(set.size).toBe(3);
    set.clear();
    expect(set.size).toBe(0);
  });
});

describe('requestFingerprint', () => {
  const properties = { replyTo: 'amq.rabbitmq.reply-to.AAAA.BBBB', correlationId: '1', contentType: 'application/json' };

  it('is the same for a redelivered copy, whatever headers the broker added', () => {
    const first = delivery('{"method":"f"}', properties);
    const again = delivery('{"method":"f"}', { ...properties, headers: { 'x-delivery-count': 1 } }, true);
    expect(requestFingerprint(again)).toBe(requestFingerprint(first));
  });

  it('differs when the body, the reply address or the correlation id differs, even by moving a character between fields', () => {
    const base = requestFingerprint(delivery('{"method":"f"}', properties));
    expect(requestFingerprint(delivery('{"method":"g"}', properties))).not.toBe(base);
    expect(requestFingerprint(delivery('{"method":"f"}', { ...properties, correlationId: '2' }))).not.toBe(base);
    expect(requestFingerprint(delivery('{"method":"f"}', { ...properties, replyTo: 'amq.rabbitmq.reply-to.AAAA.BBBC' }))).not.toBe(base);
    expect(requestFingerprint(delivery('x', { replyTo: 'ab', correlationId: 'c' }))).not.toBe(
      requestFingerprint(delivery('x', { replyTo: 'a', correlationId: 'bc' })),
    );
  });
});
