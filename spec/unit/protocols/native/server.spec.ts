import type { Delivery } from '../../../../lib/amqp/port.js';
import { nativeProtocol } from '../../../../lib/protocols/native/server.js';
import { qamProtocol } from '../../../../lib/protocols/qam/server.js';
import { serializerNamed } from '../../../../lib/serializers.js';

const settings = {
  serverId: 'calc',
  maxBytes: 1024 * 1024,
  exposeStack: false,
  fallbackSerializer: serializerNamed('json'),
  accepted: new Set(['json', 'superjson'] as const),
  warn: () => undefined,
};

function delivery(body: unknown, properties: Record<string, unknown>): Delivery {
  return {
    content: Buffer.from(JSON.stringify(body)),
    deliveryTag: 1,
    redelivered: false,
    exchange: '',
    routingKey: 'k',
    properties: { headers: {}, contentType: 'application/json', ...properties },
  } as unknown as Delivery;
}

describe.each([
  ['native', nativeProtocol(settings)],
  ['qam', qamProtocol(settings)],
])('the %s protocol', (_, protocol) => {
  it('names at most 256 characters of an unknown method in its not-found error', () => {
    const error = protocol.notFound(`x.${'m'.repeat(100_000)}`);
    expect(error).toMatchObject({ code: 'METHOD_NOT_FOUND' });
    expect(error.message.length).toBeLessThan(400);
    expect(error.message).toContain('… (');
  });

  it('names a method of a legal length whole', () => {
    expect(protocol.notFound(`x.${'m'.repeat(250)}`).message).toContain('m'.repeat(250));
  });
});

describe('the native protocol reading a request', () => {
  const protocol = nativeProtocol(settings);
  const body = { method: 'add', params: [1, 2] };

  it.each(['amq.rabbitmq.reply-to.AAAA BBBB', 'amq.rabbitmq.reply-to.', 'amq.fanout', 'server_calc_ex'])(
    'refuses reply_to %j before anything runs',
    (replyTo) => {
      const read = protocol.read(delivery(body, { replyTo }));
      expect(read).toEqual({ error: expect.objectContaining({ code: 'BAD_MESSAGE' }) });
      expect(protocol.reply(delivery(body, { replyTo }), { result: 3 })).toBeUndefined();
    },
  );

  it('builds a started notice for a request with a reply address and a correlation id only', () => {
    const asked = delivery(body, { replyTo: 'amq.rabbitmq.reply-to.AAAA.BBBB', correlationId: 'c1' });
    expect(protocol.started(asked, 'calc.0123')).toEqual({
      exchange: '',
      routingKey: 'amq.rabbitmq.reply-to.AAAA.BBBB',
      body: Buffer.alloc(0),
      properties: { correlationId: 'c1', headers: { 'x-qam-wire': 2, 'x-qam-kind': 'started', 'x-qam-instance': 'calc.0123' } },
    });
    expect(protocol.started(delivery(body, { correlationId: 'c1' }), 'calc.0123')).toBeUndefined();
    expect(protocol.started(delivery(body, { replyTo: 'amq.rabbitmq.reply-to.AAAA.BBBB' }), 'calc.0123')).toBeUndefined();
  });

  it('reads a request with a reply address, and one without (whose reply goes nowhere)', () => {
    expect(protocol.read(delivery(body, { replyTo: 'amq.rabbitmq.reply-to.AAAA.BBBB', correlationId: 'c1' }))).toEqual({
      call: { id: 'c1', method: 'add', params: [1, 2], deadline: undefined, startedNotice: false, kind: 'call' },
    });
    expect(protocol.read(delivery(body, {}))).toEqual({
      call: { id: undefined, method: 'add', params: [1, 2], deadline: undefined, startedNotice: false, kind: 'call' },
    });
    expect(protocol.read(delivery(body, { correlationId: 'c2', headers: { 'x-qam-notify': 'started' } }))).toEqual({
      call: { id: 'c2', method: 'add', params: [1, 2], deadline: undefined, startedNotice: true, kind: 'call' },
    });
    const describe = { method: '_qam.describe', params: [] };
    expect(protocol.read(delivery(describe, { correlationId: 'c3', headers: { 'x-qam-kind': 'describe' } }))).toEqual({
      call: { id: 'c3', method: '_qam.describe', params: [], deadline: undefined, startedNotice: false, kind: 'describe' },
    });
  });
});

describe('the qam protocol reading a request', () => {
  it('refuses a routing key longer than an AMQP short string, with no address to answer at', () => {
    const protocol = qamProtocol(settings);
    const message = delivery({ id: 1, method_name: 'add', routing_key: 'k'.repeat(256), params: [] }, {});
    expect(protocol.read(message)).toEqual({ error: expect.objectContaining({ code: 'BAD_MESSAGE' }) });
    expect(protocol.reply(message, { error: new Error('x') })).toBeUndefined();
  });
});
