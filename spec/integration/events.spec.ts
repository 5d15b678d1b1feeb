/**
 * Events on a topic exchange, on both brokers: broadcast subscribers with their own exclusive
 * queues, groups of competing consumers on a shared durable queue, the failure policy (requeued
 * once, then dead-lettered or dropped), status messages as events, and bad events.
 */
import { QAMEvents, QAMProcessor, silentLogger, type EventContext } from '../../lib/index.js';
import { brokers } from '../support/brokers.js';
import { uniqueName, waitUntil } from '../support/broker.js';

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe.each(brokers)('events on %s', (_name, useBroker) => {
  const broker = useBroker();

  function events(name = 'publisher'): QAMEvents {
    return broker.track(new QAMEvents({ connection: broker.connection({ fingerprint: { name, type: 'test' } }), exchange: exchangeName }));
  }

  let exchangeName: string;
  beforeEach(() => {
    exchangeName = uniqueName('events');
  });

  it('broadcasts each event to every subscriber whose pattern matches, each on an exclusive queue of its own', async () => {
    const orders: string[] = [];
    const everything: string[] = [];
    let context: EventContext | undefined;
    const listener = events('listener');
    const first = await listener.subscribe('order.*', (payload, ctx) => {
      orders.push(`${ctx.routingKey} ${JSON.stringify(payload)}`);
      context = ctx;
    });
    const second = await listener.subscribe(['#'], (_payload, { routingKey }) => void everything.push(routingKey));
    expect(first.queue).not.toBe(second.queue);
    expect(await broker.queue(first.queue)).toMatchObject({ exclusive: true, durable: false, autoDelete: true });
    const publisher = events();
    await publisher.publish('order.created', { id: 7 });
    await publisher.publish('user.signed.up', 'ada');
    await publisher.publish('order.paid', [1, 2]);
    await waitUntil(() => orders.length === 2 && everything.length === 3);
    expect(orders).toEqual(['order.created {"id":7}', 'order.paid [1,2]']);
    expect(everything).toEqual(['order.created', 'user.signed.up', 'order.paid']);
    expect(context).toMatchObject({ exchange: exchangeName, redelivered: false, fingerprint: { name: 'publisher', type: 'test' } });
    expect(context?.properties).toMatchObject({ contentType: 'application/json', deliveryMode: 2 });
    await first.close();
    expect(await broker.queue(first.queue)).toBeUndefined();
  });

  it('shares the events among the members of a group (one durable queue, competing consumers), keeping them while no member runs', async () => {
    const group = uniqueName('billing');
    const got: Record<string, number[]> = { a: [], b: [] };
    const member = (who: 'a' | 'b') => async (payload: unknown) => {
      got[who]!.push(payload as number);
      await pause(20);
    };
    const a = await events('a').subscribe('invoice.#', member('a'), { group, prefetch: 1 });
    const b = await events('b').subscribe('invoice.#', member('b'), { group, prefetch: 1 });
    expect(a.queue).toBe(`${exchangeName}.group.${group}`);
    expect(b.queue).toBe(a.queue);
    expect(await broker.queue(a.queue)).toMatchObject({ durable: true, exclusive: false, autoDelete: false, consumers: 2 });
    const publisher = events();
    for (let n = 0; n < 10; n++) await publisher.publish('invoice.due', n);
    await waitUntil(() => got['a']!.length + got['b']!.length === 10);
    expect([...got['a']!, ...got['b']!].sort((x, y) => x - y)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(got['a']!.length).toBeGreaterThan(0);
    expect(got['b']!.length).toBeGreaterThan(0);
    await a.close();
    await b.close();
    await publisher.publish('invoice.late', 'kept');
    const later: unknown[] = [];
    const c = await events('c').subscribe('invoice.#', (payload) => void later.push(payload), { group });
    await waitUntil(() => later.length === 1);
    expect(later).toEqual(['kept']);
    await c.close({ deleteQueue: true });
    expect(await broker.queue(c.queue)).toBeUndefined();
  });

  it('requeues an event whose handler failed once, then drops it when it fails again: never an endless loop', async () => {
    const deliveries: boolean[] = [];
    const subscription = await events('listener').subscribe('job.*', (_payload, { redelivered }) => {
      deliveries.push(redelivered);
      throw new Error('always fails');
    });
    const flaky: boolean[] = [];
    const recovering = await events('listener').subscribe('job.flaky', (_payload, { redelivered }) => {
      flaky.push(redelivered);
      if (!redelivered) throw new Error('fails once');
    });
    await events().publish('job.flaky', {});
    await waitUntil(() => subscription.stats().dropped === 1 && recovering.stats().handled === 1);
    await pause(300);
    expect(deliveries).toEqual([false, true]);
    expect(flaky).toEqual([false, true]);
    expect(subscription.stats()).toEqual({ received: 2, handled: 0, requeued: 1, deadLettered: 0, dropped: 1, badEvents: 0 });
    expect(recovering.stats()).toEqual({ received: 2, handled: 1, requeued: 1, deadLettered: 0, dropped: 0, badEvents: 0 });
  });

  it('dead-letters an event that failed twice when the queue has a dead-letter exchange', async () => {
    const deadLetters = uniqueName('dlx');
    const parked = uniqueName('parked');
    const channel = await broker.channel();
    await channel.declareExchange(deadLetters, 'fanout', { durable: false, autoDelete: false });
    await channel.declareQueue(parked, { durable: false, exclusive: false, autoDelete: false });
    await channel.bindQueue(parked, deadLetters, '');
    const subscription = await events('worker').subscribe(
      'task.*',
      () => {
        throw new Error('cannot do it');
      },
      { group: uniqueName('workers'), deadLetterExchange: deadLetters },
    );
    await events().publish('task.hard', { n: 1 });
    await waitUntil(() => subscription.stats().deadLettered === 1);
    expect(subscription.stats()).toMatchObject({ received: 2, requeued: 1, deadLettered: 1, dropped: 0 });
    if (broker.kind === 'rabbitmq') {
      await waitUntil(async () => (await broker.queue(parked))?.ready === 1);
    } else {
      // The embedded broker does not dead-letter (README, "Without RabbitMQ"): the event is dropped.
      expect((await broker.queue(parked))?.ready).toBe(0);
    }
    await subscription.close({ deleteQueue: true });
  });

  it('sends status messages as events: a subscriber gets the Postage status message, a processor bound to the exchange dispatches it', async () => {
    const statuses: unknown[] = [];
    await events('listener').subscribe('status.#', (payload) => void statuses.push(payload));
    const dispatched: string[] = [];
    const processor = broker.track(
      new QAMProcessor({
        connection: broker.connection(),
        bindings: [{ exchange: { name: exchangeName, type: 'topic' }, queue: uniqueName('status_watch'), key: 'status.*' }],
      }).on('status', 'ready', (_content, { fingerprint, routingKey }) => void dispatched.push(`${fingerprint?.name} ${routingKey}`)),
    );
    await processor.start();
    await events('inventory').status('ready');
    await waitUntil(() => statuses.length === 1 && dispatched.length === 1);
    expect(statuses[0]).toMatchObject({
      type: 'status',
      name: 'ready',
      category: 'message',
      fingerprint: { name: 'inventory' },
      content: {},
    });
    expect(dispatched).toEqual(['inventory status.inventory']);
  });

  it('drops an event that is not JSON, counted, and goes on', async () => {
    const got: unknown[] = [];
    const subscription = await events('listener').subscribe('#', (payload) => void got.push(payload));
    await broker.connection().publish(exchangeName, 'raw.text', 'not json');
    await events().publish('fine', 1);
    await waitUntil(() => got.length === 1);
    expect(subscription.stats()).toMatchObject({ received: 2, handled: 1, badEvents: 1 });
  });

  it('drops an event above maxMessageBytes unparsed, counted, and goes on', async () => {
    const got: unknown[] = [];
    const subscription = await events('listener').subscribe('#', (payload) => void got.push(payload), { maxMessageBytes: 1000 });
    await events().publish('large', 'x'.repeat(2000));
    await events().publish('fine', 1);
    await waitUntil(() => got.length === 1);
    expect(got).toEqual([1]);
    expect(subscription.stats()).toMatchObject({ received: 2, handled: 1, badEvents: 1 });
  });

  it('a subscription consumes again after its connection was lost (a group keeps the events published meanwhile)', async () => {
    const faulty = await broker.faulty();
    const got: unknown[] = [];
    const listener = broker.track(new QAMEvents({ ...faulty.options, logger: silentLogger, exchange: exchangeName }));
    const subscription = await listener.subscribe('tick', (payload) => void got.push(payload), { group: uniqueName('survivors') });
    const publisher = events();
    await publisher.publish('tick', 1);
    await waitUntil(() => got.length === 1);
    faulty.cut();
    await publisher.publish('tick', 2);
    await waitUntil(() => got.length === 2, { timeoutMs: 30_000 });
    expect(got).toEqual([1, 2]);
    await subscription.close({ deleteQueue: true });
  });

  it('refuses wrong arguments with a TypeError', async () => {
    const connection = broker.connection();
    expect(() => new QAMEvents({ connection, exchnage: 'x' } as never)).toThrow("Unknown option 'exchnage' of QAMEvents");
    const own = broker.track(new QAMEvents({ connection, exchange: exchangeName }));
    await expect(own.subscribe([], () => undefined)).rejects.toThrow(TypeError);
    await expect(own.subscribe('#', () => undefined, { group: '' })).rejects.toThrow("Option 'group' of QAMEvents.subscribe");
    await expect(own.publish('k', 1, { headers: { 'x-qam-fingerprint': 'forged' } })).rejects.toThrow(/reserved prefix/);
    await expect(own.publish('k', undefined)).rejects.toThrow('JSON');
  });
});
