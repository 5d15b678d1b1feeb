/**
 * A virtual host of the embedded broker: its exchanges, queues and bindings, and routing. Checks
 * (permissions, exclusivity, equivalence) are the channel's: this is the storage they guard.
 * @internal
 */
import type { ExchangeType } from '../port.js';
import { Queue, type QueueHost, type QueueSettings } from './queue.js';
import type { Scheduler } from './scheduler.js';

export interface ExchangeSettings {
  readonly name: string;
  readonly type: ExchangeType;
  readonly durable: boolean;
  readonly autoDelete: boolean;
  readonly internal: boolean;
  readonly arguments: Readonly<Record<string, unknown>>;
}

export interface Binding {
  readonly exchange: Exchange;
  readonly queue: Queue;
  readonly routingKey: string;
  /** A topic binding's key, split into words. */
  readonly pattern: readonly string[];
}

/** RabbitMQ splits a topic key on dots; the empty key has no words. */
function words(key: string): string[] {
  return key === '' ? [] : key.split('.');
}

/** Topic matching: `*` is exactly one word, `#` zero or more. */
function topicMatch(pattern: readonly string[], key: readonly string[], p: number, k: number): boolean {
  while (p < pattern.length) {
    const part = pattern[p];
    if (part === '#') {
      while (pattern[p + 1] === '#') p++;
      if (p === pattern.length - 1) return true;
      for (let skip = k; skip <= key.length; skip++) if (topicMatch(pattern, key, p + 1, skip)) return true;
      return false;
    }
    if (k >= key.length || (part !== '*' && part !== key[k])) return false;
    p++;
    k++;
  }
  return k === key.length;
}

export class Exchange {
  readonly name: string;
  readonly type: ExchangeType;
  readonly durable: boolean;
  readonly autoDelete: boolean;
  readonly internal: boolean;
  readonly arguments: Readonly<Record<string, unknown>>;
  readonly bindings: Binding[] = [];
  readonly #byKey = new Map<string, Binding[]>();

  constructor(settings: ExchangeSettings) {
    this.name = settings.name;
    this.type = settings.type;
    this.durable = settings.durable;
    this.autoDelete = settings.autoDelete;
    this.internal = settings.internal;
    this.arguments = settings.arguments;
  }

  find(queue: Queue, routingKey: string): Binding | undefined {
    return this.bindings.find((binding) => binding.queue === queue && binding.routingKey === routingKey);
  }

  add(binding: Binding): void {
    this.bindings.push(binding);
    const same = this.#byKey.get(binding.routingKey);
    if (same === undefined) this.#byKey.set(binding.routingKey, [binding]);
    else same.push(binding);
  }

  remove(binding: Binding): void {
    const index = this.bindings.indexOf(binding);
    if (index >= 0) this.bindings.splice(index, 1);
    const same = this.#byKey.get(binding.routingKey);
    if (same === undefined) return;
    const at = same.indexOf(binding);
    if (at >= 0) same.splice(at, 1);
    if (same.length === 0) this.#byKey.delete(binding.routingKey);
  }

  /**
   * The queues a message with `routingKey` goes to, each once. A headers exchange matches every
   * message: the port binds without arguments, and RabbitMQ's `x-match: all` over no arguments
   * matches all.
   */
  route(routingKey: string): Queue[] {
    switch (this.type) {
      case 'direct': {
        const same = this.#byKey.get(routingKey);
        return same === undefined ? [] : same.map((binding) => binding.queue);
      }
      case 'topic': {
        const key = words(routingKey);
        return unique(this.bindings.filter((binding) => topicMatch(binding.pattern, key, 0, 0)));
      }
      case 'fanout':
      case 'headers':
        return unique(this.bindings);
    }
  }
}

function unique(bindings: readonly Binding[]): Queue[] {
  if (bindings.length <= 1) return bindings.map((binding) => binding.queue);
  return [...new Set(bindings.map((binding) => binding.queue))];
}

/** The exchanges RabbitMQ 3.10 creates in every vhost. */
const standardExchanges: ReadonlyArray<readonly [string, ExchangeType, boolean]> = [
  ['', 'direct', false],
  ['amq.direct', 'direct', false],
  ['amq.fanout', 'fanout', false],
  ['amq.topic', 'topic', false],
  ['amq.headers', 'headers', false],
  ['amq.match', 'headers', false],
  ['amq.rabbitmq.trace', 'topic', true],
];

export class Vhost implements QueueHost {
  readonly name: string;
  readonly scheduler: Scheduler;
  readonly exchanges = new Map<string, Exchange>();
  readonly queues = new Map<string, Queue>();
  readonly #bindingsOf = new Map<Queue, Set<Binding>>();

  constructor(name: string, scheduler: Scheduler) {
    this.name = name;
    this.scheduler = scheduler;
    for (const [exchange, type, internal] of standardExchanges) {
      this.addExchange({ name: exchange, type, durable: true, autoDelete: false, internal, arguments: {} });
    }
  }

  addExchange(settings: ExchangeSettings): Exchange {
    const exchange = new Exchange(settings);
    this.exchanges.set(exchange.name, exchange);
    return exchange;
  }

  deleteExchange(exchange: Exchange): void {
    if (this.exchanges.get(exchange.name) !== exchange) return;
    this.exchanges.delete(exchange.name);
    for (const binding of exchange.bindings.splice(0)) this.#bindingsOf.get(binding.queue)?.delete(binding);
  }

  addQueue(settings: QueueSettings): Queue {
    const queue = new Queue(settings, this);
    this.queues.set(queue.name, queue);
    return queue;
  }

  /** Deletes a queue: its bindings go (and auto-delete exchanges left without any), its consumers are cancelled. */
  remove(queue: Queue): void {
    if (queue.deleted) return;
    if (this.queues.get(queue.name) === queue) this.queues.delete(queue.name);
    const bindings = this.#bindingsOf.get(queue);
    this.#bindingsOf.delete(queue);
    for (const binding of bindings ?? []) {
      const exchange = binding.exchange;
      exchange.remove(binding);
      if (exchange.autoDelete && exchange.bindings.length === 0) this.deleteExchange(exchange);
    }
    for (const consumer of queue.destroy()) consumer.cancelled();
  }

  bind(queue: Queue, exchange: Exchange, routingKey: string): void {
    if (exchange.find(queue, routingKey) !== undefined) return;
    const binding: Binding = { exchange, queue, routingKey, pattern: words(routingKey) };
    exchange.add(binding);
    let bindings = this.#bindingsOf.get(queue);
    if (bindings === undefined) this.#bindingsOf.set(queue, (bindings = new Set()));
    bindings.add(binding);
  }

  /** Deletes every queue (its timers stop) and exchange. */
  destroy(): void {
    for (const queue of [...this.queues.values()]) this.remove(queue);
    this.exchanges.clear();
  }
}
