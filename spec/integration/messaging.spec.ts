/**
 * Postage's typed messages on both brokers: QAMProducer's fire-and-forget and RPC messages,
 * QAMProcessor's dispatch by type and name (content, full-body and RPC handlers), the three
 * result kinds, retries after a timeout, exchanges declared from plain descriptions, and bad
 * messages and throwing handlers that never stop the processor.
 */
import {
  QAMAbortException,
  QAMNoRouteException,
  QAMProcessor,
  QAMProducer,
  QAMTimeoutException,
  type ExchangeDescription,
  type MessageContext,
  type PostageMessage,
  silentLogger,
} from '../../lib/index.js';
import type { Delivery } from '../../lib/amqp/port.js';
import { brokers } from '../support/brokers.js';
import { uniqueName, waitUntil } from '../support/broker.js';

describe.each(brokers)('Postage messages on %s', (_name, useBroker) => {
  const broker = useBroker();

  function producer(options: ConstructorParameters<typeof QAMProducer>[0] = {}): QAMProducer {
    return broker.track(new QAMProducer({ connection: broker.connection({ fingerprint: { name: 'sender', type: 'test' } }), ...options }));
  }

  function processor(options: ConstructorParameters<typeof QAMProcessor>[0] = {}): QAMProcessor {
    return broker.track(
      new QAMProcessor({ connection: broker.connection({ fingerprint: { name: 'receiver', type: 'test' } }), ...options }),
    );
  }

  function direct(): ExchangeDescription {
    return { name: uniqueName('postage_ex'), type: 'direct', durable: false, autoDelete: false };
  }

  it('sends a command to an exchange it declares; content and full-body handlers of its type and name get it, with the fingerprint', async () => {
    const exchange = direct();
    const queue = uniqueName('worker');
    const seen: string[] = [];
    let body: PostageMessage | undefined;
    let context: MessageContext | undefined;
    const receiver = processor({ bindings: [{ exchange, queue, key: 'work' }] })
      .on('command', 'quit', (content, ctx) => {
        seen.push(`quit ${JSON.stringify(content)}`);
        context = ctx;
      })
      .on('command', 'quit', () => void seen.push('second quit handler'))
      .on('command', 'other', () => void seen.push('other'))
      .onFullBody('command', 'quit', (message) => {
        body = message;
      });
    await receiver.start();
    const sender = producer({ eks: [[exchange, 'work']] });
    await sender.command('quit', { now: true });
    await waitUntil(() => body !== undefined && seen.length === 2);
    expect(seen).toEqual(['quit {"parameters":{"now":true}}', 'second quit handler']);
    expect(body).toMatchObject({
      type: 'command',
      name: 'quit',
      category: 'message',
      version: '2',
      fingerprint: { name: 'sender', type: 'test', pid: process.pid, library: 'qam' },
      content: { parameters: { now: true } },
      _reserved: {},
    });
    expect(context).toMatchObject({ exchange: exchange.name, routingKey: 'work', redelivered: false, fingerprint: { name: 'sender' } });
    expect(context?.properties).toMatchObject({ contentType: 'application/json' });
    const declared = (await broker.exchanges()).find((e) => e.name === exchange.name);
    expect(declared).toEqual({ name: exchange.name, type: 'direct', durable: false, autoDelete: false });
    expect(receiver.stats()).toMatchObject({ received: 1, handled: 1, unhandled: 0, handlerErrors: 0 });
  });

  it('answers RPC messages with the three result kinds: a value, an error, an exception', async () => {
    const exchange = direct();
    const queue = uniqueName('rpc');
    const cleanedUp: string[] = [];
    const receiver = processor({ bindings: [{ exchange, queue, key: 'calc' }] })
      .onRpc('command', 'square', ({ parameters }) => (parameters as { n: number }).n ** 2)
      .onRpc('command', 'divide', async ({ parameters }, reply) => {
        const { a, b } = parameters as { a: number; b: number };
        if (b === 0) await reply.error('division by zero');
        else await reply(a / b, 'divided');
        cleanedUp.push('divide');
      })
      .onRpc('command', 'explode', () => {
        throw new RangeError('out of range');
      });
    await receiver.start();
    const sender = producer({ eks: [[exchange, 'calc']], timeout: 20 });
    await expect(sender.rpc('square', { n: 7 })).resolves.toMatchObject({
      kind: 'value',
      value: 49,
      message: '',
      fingerprint: { name: 'receiver' },
      body: { type: 'result', category: 'message', content: { type: 'success', value: 49 } },
    });
    await expect(sender.rpc('divide', { a: 1, b: 4 })).resolves.toMatchObject({ kind: 'value', value: 0.25, message: 'divided' });
    await expect(sender.rpc('divide', { a: 1, b: 0 })).resolves.toMatchObject({ kind: 'error', value: null, message: 'division by zero' });
    await expect(sender.rpc('explode')).resolves.toMatchObject({ kind: 'exception', value: 'RangeError', message: 'out of range' });
    await expect(sender.rpc('nosuch')).resolves.toMatchObject({ kind: 'error', message: "No RPC handler for command 'nosuch'" });
    expect(cleanedUp).toEqual(['divide', 'divide']);
    expect(receiver.stats()).toMatchObject({ received: 5, replies: 5, unhandled: 1, handlerErrors: 1 });
  });

  it('sends an RPC message again after a timeout, and gives up with TIMEOUT after maxRetry retries', async () => {
    const queue = uniqueName('slow');
    const channel = await broker.channel();
    await channel.declareQueue(queue, { durable: false, exclusive: false, autoDelete: false });
    const attempts: Delivery[] = [];
    await channel.consume(
      queue,
      (request) => {
        attempts.push(request);
        // Answers only the third attempt, as a Postage processor does: no correlation id.
        if (attempts.length !== 3) return;
        const result = {
          type: 'result',
          name: 'none',
          category: 'message',
          version: '2',
          fingerprint: {},
          content: { type: 'success', value: 'late', message: '' },
          _reserved: {},
        };
        channel.publish('', String(request.properties.replyTo), Buffer.from(JSON.stringify(result)), {}, { mandatory: false });
      },
      { noAck: true },
    );
    const sender = producer();
    await expect(sender.rpc('ping', {}, { key: queue, timeout: 0.5, maxRetry: 4 })).resolves.toMatchObject({
      kind: 'value',
      value: 'late',
    });
    expect(attempts).toHaveLength(3);
    expect(attempts[0]!.properties).toMatchObject({ expiration: '500', contentType: 'application/json' });
    expect(new Set(attempts.map((a) => a.properties.replyTo)).size).toBe(1);
    const error = await sender.rpc('ping', {}, { key: queue, timeout: 0.3, maxRetry: 1 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(QAMTimeoutException);
    expect((error as Error).message).toContain('2 attempt(s)');
    expect(attempts).toHaveLength(5);
  });

  it('cancels an RPC message with a signal; an RPC to a key nothing is bound to fails with NO_ROUTE', async () => {
    const queue = uniqueName('silent');
    const channel = await broker.channel();
    await channel.declareQueue(queue, { durable: false, exclusive: false, autoDelete: false });
    const sender = producer();
    const controller = new AbortController();
    const call = sender.rpc('ping', {}, { key: queue, timeout: 30, signal: controller.signal });
    setTimeout(() => controller.abort(), 200);
    await expect(call).rejects.toBeInstanceOf(QAMAbortException);
    await expect(sender.rpc('ping', {}, { key: uniqueName('nobody'), timeout: 5 })).rejects.toBeInstanceOf(QAMNoRouteException);
    await expect(sender.command('ping', {}, { key: uniqueName('nobody') })).rejects.toBeInstanceOf(QAMNoRouteException);
  });

  it('logs and counts bad messages (not JSON, wrong shape, unknown type or name) and a throwing handler, and keeps processing', async () => {
    const queue = uniqueName('robust');
    const seen: string[] = [];
    const receiver = processor({ bindings: [{ queue }] })
      .on('command', 'work', () => {
        throw new Error('handler broke');
      })
      .on('command', 'work', (content) => void seen.push(`work ${JSON.stringify(content)}`))
      .on('status', 'ready', (_content, { fingerprint }) => void seen.push(`status ready from ${fingerprint?.name}`));
    await receiver.start();
    const raw = broker.connection();
    for (const body of [
      'not json',
      '[1, 2]',
      '{"type": "command", "category": "message"}',
      '{"type": "command", "name": "x", "category": "other"}',
    ]) {
      await raw.publish('', queue, body);
    }
    const sender = producer();
    await sender.send('mystery', 'thing', { a: 1 }, { key: queue });
    await sender.command('work', { n: 1 }, { key: queue });
    await sender.status('ready', { key: queue });
    await waitUntil(() => seen.length === 2);
    expect(seen).toEqual(['work {"parameters":{"n":1}}', 'status ready from sender']);
    expect(receiver.stats()).toEqual({
      received: 7,
      handled: 2,
      replies: 0,
      notJson: 1,
      wrongShape: 3,
      tooLarge: 0,
      unhandled: 1,
      handlerErrors: 1,
    });
  });

  it('does not parse a message above maxMessageBytes: an RPC one is answered with PAYLOAD_TOO_LARGE words, both counted; the next is handled', async () => {
    const queue = uniqueName('large');
    const seen: unknown[] = [];
    const receiver = processor({ bindings: [{ queue }], maxMessageBytes: 1000 }).on(
      'command',
      'work',
      (content) => void seen.push(content),
    );
    await receiver.start();
    const sender = producer();
    await sender.command('work', { blob: 'x'.repeat(2000) }, { key: queue });
    const reply = await broker.connection().rpc('', queue, JSON.stringify({ type: 'command', padding: 'y'.repeat(2000) }), { timeout: 10 });
    expect(JSON.parse(reply.body.toString())).toMatchObject({
      content: {
        type: 'error',
        message: expect.stringMatching(
          /^Not a Postage message: The message is \d+ bytes, above the processor's maxMessageBytes of 1000 bytes$/,
        ),
      },
    });
    await sender.command('work', { n: 1 }, { key: queue });
    await waitUntil(() => seen.length === 1);
    expect(seen).toEqual([{ parameters: { n: 1 } }]);
    expect(receiver.stats()).toMatchObject({ received: 3, handled: 1, tooLarge: 2 });
  });

  it('answers a bad RPC message with an error result to its reply_to', async () => {
    const queue = uniqueName('bad_rpc');
    const receiver = processor({ bindings: [{ queue }] });
    await receiver.start();
    const reply = await broker.connection().rpc('', queue, '{"type": 1}', { timeout: 10 });
    expect(JSON.parse(reply.body.toString())).toMatchObject({
      type: 'result',
      content: { type: 'error', value: null, message: "Not a Postage message: 'type' is not a non-empty string" },
    });
    expect(receiver.stats()).toMatchObject({ wrongShape: 1 });
  });

  it('binds more queues at run time (queue_bind) and sends a message to several exchanges and keys (eks)', async () => {
    const first = direct();
    const second: ExchangeDescription = { name: uniqueName('postage_fan'), type: 'fanout', durable: false };
    const seen: string[] = [];
    const receiver = processor({ bindings: [{ exchange: first, queue: uniqueName('a'), key: 'k1' }] }).on(
      'command',
      'hello',
      (_c, { exchange }) => void seen.push(exchange),
    );
    await receiver.start();
    await receiver.bind({ exchange: second, queue: { name: uniqueName('b'), autoDelete: true }, key: '' });
    const sender = producer();
    await sender.command(
      'hello',
      {},
      {
        eks: [
          [first, 'k1'],
          [second, 'any'],
        ],
      },
    );
    await waitUntil(() => seen.length === 2);
    expect(seen.sort()).toEqual([first.name, second.name].sort());
  });

  it('declares and consumes again after its connection was lost', async () => {
    const faulty = await broker.faulty();
    const queue = uniqueName('survivor');
    const seen: unknown[] = [];
    const receiver = broker.track(
      new QAMProcessor({ ...faulty.options, logger: silentLogger, bindings: [{ queue: { name: queue, autoDelete: false } }] }).on(
        'command',
        'count',
        ({ parameters }) => void seen.push(parameters),
      ),
    );
    await receiver.start();
    const sender = producer();
    await sender.command('count', { n: 1 }, { key: queue });
    await waitUntil(() => seen.length === 1);
    faulty.cut();
    await sender.command('count', { n: 2 }, { key: queue });
    await waitUntil(() => seen.length === 2, { timeoutMs: 30_000 });
    expect(seen).toEqual([{ n: 1 }, { n: 2 }]);
  });

  it('an RPC message whose connection was lost while it waited is sent again, with its reply queue declared again', async () => {
    const faulty = await broker.faulty();
    const queue = uniqueName('cutter');
    let calls = 0;
    const receiver = processor({ bindings: [{ queue }] }).onRpc('command', 'ping', () => {
      calls++;
      // The caller's connection drops before the first result reaches it.
      if (calls === 1) faulty.cut();
      return `pong ${calls}`;
    });
    await receiver.start();
    const sender = broker.track(new QAMProducer({ ...faulty.options, logger: silentLogger }));
    await expect(sender.rpc('ping', {}, { key: queue, timeout: 2, maxRetry: 3 })).resolves.toMatchObject({
      kind: 'value',
      value: 'pong 2',
    });
  });

  it('refuses wrong options and arguments with a TypeError naming them', () => {
    const connection = broker.connection();
    expect(() => new QAMProducer({ connection, timeot: 3 } as never)).toThrow(
      "Unknown option 'timeot' of QAMProducer; did you mean 'timeout'?",
    );
    expect(() => new QAMProducer({ connection, eks: [['x']] } as never)).toThrow(/eks\[0\]/);
    expect(() => new QAMProducer({ connection, eks: [[{ name: 'x', type: 'nosuch' }, 'k']] } as never)).toThrow(/eks\[0\]\[0\]\.type/);
    expect(() => new QAMProcessor({ connection, bindings: [{ exchange: 'x' }] } as never)).toThrow(/bindings\[0\]\.queue/);
    const sender = new QAMProducer({ connection });
    return Promise.all([
      expect(sender.command('x')).rejects.toThrow('each send must name its target'),
      expect(sender.command('', {}, { key: 'q' })).rejects.toThrow(TypeError),
      expect(sender.send('t', 'n', [] as never, { key: 'q' })).rejects.toThrow(TypeError),
    ]);
  });
});
