import { QAMEvents, type EventSubscription } from '../lib/index.js';

/** Events on a topic exchange: a broadcast subscriber, a group sharing the work, a failing handler, a status broadcast. */
export async function eventsSample(print: (line: string) => void = console.log, url?: string): Promise<void> {
  const where = url === undefined ? {} : { url };
  const events = new QAMEvents({ ...where, exchange: 'shop.events', fingerprint: { name: 'shop', type: 'service' } });
  const billing: EventSubscription[] = [];
  try {
    const seen: string[] = [];
    await events.subscribe(['order.*', 'status.#'], (_payload, { routingKey, fingerprint }) => {
      seen.push(`${routingKey} from ${fingerprint?.name}`);
    });
    // Two members of the group 'billing' share its queue: each order is billed once.
    const billed: number[] = [];
    const bill = (order: unknown): void => void billed.push((order as { id: number }).id);
    billing.push(await events.subscribe('order.created', bill, { group: 'billing', prefetch: 1 }));
    billing.push(await events.subscribe('order.created', bill, { group: 'billing', prefetch: 1 }));
    // A handler that always fails: each event is requeued once, then dropped (no dead-letter exchange).
    let attempts = 0;
    const audit = await events.subscribe('order.created', () => {
      attempts++;
      throw new Error('audit log unavailable');
    });

    for (let id = 1; id <= 4; id++) await events.publish('order.created', { id });
    await events.publish('order.shipped', { id: 1 });
    await events.status('ready'); // Postage's status message, routing key status.shop
    await until(() => seen.length === 6 && billed.length === 4 && audit.stats().dropped === 4);

    print(`broadcast subscriber saw: ${[...new Set(seen)].sort().join(', ')}`);
    print(`billing group billed: ${billed.sort().join(', ')}`);
    const { requeued, dropped } = audit.stats();
    print(`failing handler: ${attempts} attempts, ${requeued} requeued, ${dropped} dropped`);
  } finally {
    // A group's queue is durable: it outlives its members unless the last one deletes it.
    for (const [index, member] of billing.entries()) await member.close({ deleteQueue: index === billing.length - 1 });
    await events.close();
  }
}

async function until(done: () => boolean): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!done()) {
    if (Date.now() > deadline) throw new Error('the events did not all arrive');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
