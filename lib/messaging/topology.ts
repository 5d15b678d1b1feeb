import type { AmqpChannel, ExchangeType } from '../amqp/port.js';
import { boolean, checkOptions, nonEmptyString, oneOf, optionError, rule, type Rule, type Rules } from '../options.js';

/**
 * An exchange to declare, as a plain description (Postage's `Exchange` class attributes).
 * @example { name: 'ping-exchange', type: 'direct', durable: true, autoDelete: false }
 */
export interface ExchangeDescription {
  name: string;
  type: ExchangeType;
  /** @default true (Postage's) */
  durable?: boolean;
  /** @default false */
  autoDelete?: boolean;
}

/**
 * A queue to declare. Postage's consumers declare theirs non-durable and auto-delete (the broker
 * deletes it when its last consumer goes).
 */
export interface QueueDescription {
  name: string;
  /** @default false */
  durable?: boolean;
  /** @default true */
  autoDelete?: boolean;
  /** Only this connection may consume it; deleted when the connection closes. @default false */
  exclusive?: boolean;
}

/**
 * Where a message goes: an exchange (a description is declared first; a name must exist; `''` is
 * the default exchange, which routes the key to the queue of that name) and a routing key.
 */
export type ExchangeKey = readonly [exchange: ExchangeDescription | string, routingKey: string];

const exchangeRules: Rules<ExchangeDescription> = {
  name: nonEmptyString,
  type: oneOf('direct', 'fanout', 'topic', 'headers'),
  durable: boolean,
  autoDelete: boolean,
};

const queueRules: Rules<QueueDescription> = { name: nonEmptyString, durable: boolean, autoDelete: boolean, exclusive: boolean };

/** An exchange name (`''` for the default exchange) or a description with a name and a type. */
export const exchangeRule: Rule = (value, at) => {
  if (typeof value === 'string') return;
  checkOptions(at.owner, value, exchangeRules, at.path);
  const { name, type } = value as Partial<ExchangeDescription>;
  if (name === undefined || type === undefined) throw optionError(at, 'an exchange name or a description with a name and a type', value);
};

/** A queue name or a description with a name. */
export const queueRule: Rule = (value, at) => {
  if (typeof value === 'string') return nonEmptyString(value, at);
  checkOptions(at.owner, value, queueRules, at.path);
  if ((value as Partial<QueueDescription>).name === undefined) throw optionError(at, 'a queue name or a description with a name', value);
};

/** A list of [exchange, routing key] pairs (Postage's `eks`), at least one. */
export const eksRule: Rule = (value, at) => {
  if (!Array.isArray(value) || value.length === 0) throw optionError(at, 'a non-empty array of [exchange, routing key] pairs', value);
  value.forEach((pair: unknown, index) => {
    const place = { owner: at.owner, path: `${at.path}[${index}]` };
    if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[1] !== 'string') {
      throw optionError(place, 'an [exchange, routing key] pair', pair);
    }
    exchangeRule(pair[0], { owner: at.owner, path: `${place.path}[0]` });
  });
};

export const routingKey = rule('a string', (value) => typeof value === 'string');

export function exchangeName(exchange: ExchangeDescription | string): string {
  return typeof exchange === 'string' ? exchange : exchange.name;
}

export function queueName(queue: QueueDescription | string): string {
  return typeof queue === 'string' ? queue : queue.name;
}

/** Declares a described exchange with Postage's defaults; a name alone is not declared. */
export async function declareExchange(channel: AmqpChannel, exchange: ExchangeDescription | string): Promise<void> {
  if (typeof exchange === 'string') return;
  await channel.declareExchange(exchange.name, exchange.type, {
    durable: exchange.durable ?? true,
    autoDelete: exchange.autoDelete ?? false,
  });
}

/** Declares a queue with Postage's defaults (non-durable, auto-delete). */
export async function declareQueue(channel: AmqpChannel, queue: QueueDescription | string): Promise<void> {
  const description = typeof queue === 'string' ? { name: queue } : queue;
  await channel.declareQueue(description.name, {
    durable: description.durable ?? false,
    exclusive: description.exclusive ?? false,
    autoDelete: description.autoDelete ?? true,
  });
}
