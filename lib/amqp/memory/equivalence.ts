/**
 * RabbitMQ 3.10's checks on declarations and messages, with its wording: redeclaring with other
 * flags or arguments (406 `inequivalent arg …`), invalid queue arguments, invalid `expiration`.
 * @internal
 */
import type { ExchangeType } from '../port.js';
import { refuse } from './errors.js';
import type { Queue } from './queue.js';
import type { Exchange } from './vhost.js';

/** The queue arguments RabbitMQ compares on redeclaration; others may differ. */
const comparedQueueArguments = [
  'x-expires',
  'x-message-ttl',
  'x-dead-letter-exchange',
  'x-dead-letter-routing-key',
  'x-max-length',
  'x-max-length-bytes',
  'x-max-in-memory-length',
  'x-max-in-memory-bytes',
  'x-max-priority',
  'x-overflow',
  'x-queue-mode',
  'x-single-active-consumer',
  'x-queue-type',
  'x-quorum-initial-group-size',
  'x-max-age',
  'x-stream-max-segment-size-bytes',
  'x-initial-cluster-size',
  'x-queue-leader-locator',
];

/** The exchange arguments RabbitMQ compares on redeclaration. */
const comparedExchangeArguments = ['alternate-exchange'];

/** The AMQP field type amqplib would encode `value` as, as RabbitMQ names it. */
function fieldType(value: unknown): string {
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) return 'double';
    if (value >= -128 && value < 128) return 'byte';
    if (value >= -0x8000 && value < 0x8000) return 'short';
    if (value >= -0x80000000 && value < 0x80000000) return 'signedint';
    return 'long';
  }
  if (typeof value === 'string') return 'longstr';
  if (typeof value === 'boolean') return 'bool';
  if (value === null) return 'void';
  if (Array.isArray(value)) return 'array';
  if (Buffer.isBuffer(value)) return 'binary';
  return 'table';
}

function show(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

function same(a: unknown, b: unknown): boolean {
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return a === b;
  return fieldType(a) === fieldType(b) && JSON.stringify(a) === JSON.stringify(b);
}

function assertField(name: string, received: unknown, current: unknown, what: string): void {
  if (received !== current)
    refuse(406, `inequivalent arg '${name}' for ${what}: received '${show(received)}' but current is '${show(current)}'`);
}

function assertArguments(
  keys: readonly string[],
  received: Readonly<Record<string, unknown>>,
  current: Readonly<Record<string, unknown>>,
  what: string,
): void {
  for (const key of keys) {
    const now = current[key];
    const next = received[key];
    if (now === undefined && next === undefined) continue;
    if (now === undefined) {
      refuse(
        406,
        `inequivalent arg '${key}' for ${what}: received the value '${show(next)}' of type '${fieldType(next)}' but current is none`,
      );
    }
    if (next === undefined) {
      refuse(
        406,
        `inequivalent arg '${key}' for ${what}: received none but current is the value '${show(now)}' of type '${fieldType(now)}'`,
      );
    }
    if (!same(now, next)) refuse(406, `inequivalent arg '${key}' for ${what}: received '${show(next)}' but current is '${show(now)}'`);
  }
}

export function assertQueueEquivalent(
  queue: Queue,
  durable: boolean,
  autoDelete: boolean,
  args: Readonly<Record<string, unknown>>,
  what: string,
): void {
  assertField('durable', durable, queue.durable, what);
  assertField('auto_delete', autoDelete, queue.autoDelete, what);
  assertArguments(comparedQueueArguments, args, queue.arguments, what);
}

export function assertExchangeEquivalent(
  exchange: Exchange,
  type: ExchangeType,
  durable: boolean,
  autoDelete: boolean,
  args: Readonly<Record<string, unknown>>,
  what: string,
): void {
  assertField('type', type, exchange.type, what);
  assertField('durable', durable, exchange.durable, what);
  assertField('auto_delete', autoDelete, exchange.autoDelete, what);
  assertField('internal', false, exchange.internal, what);
  assertArguments(comparedExchangeArguments, args, exchange.arguments, what);
}

function integerArgument(key: string, value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    refuse(406, `invalid arg '${key}' for ${what}: {unacceptable_type,${fieldType(value)}}`);
  }
  return value;
}

/** The queue arguments the embedded broker acts on, checked as RabbitMQ checks a new queue's. */
export function queueArguments(
  args: Readonly<Record<string, unknown>>,
  what: string,
): { expires: number | undefined; messageTtl: number | undefined } {
  let expires: number | undefined;
  let messageTtl: number | undefined;
  if (args['x-expires'] !== undefined) {
    expires = integerArgument('x-expires', args['x-expires'], what);
    if (expires === 0) refuse(406, `invalid arg 'x-expires' for ${what}: {value_zero,0}`);
    if (expires < 0) refuse(406, `invalid arg 'x-expires' for ${what}: {value_negative,${expires}}`);
  }
  if (args['x-message-ttl'] !== undefined) {
    messageTtl = integerArgument('x-message-ttl', args['x-message-ttl'], what);
    if (messageTtl < 0) refuse(406, `invalid arg 'x-message-ttl' for ${what}: {value_negative,${messageTtl}}`);
  }
  return { expires, messageTtl };
}

/**
 * A message's `expiration`, read as RabbitMQ reads it (Erlang's `string:to_integer`): an optional
 * sign and digits, nothing after them, not negative. Anything else closes the channel with 406.
 */
export function parseExpiration(expiration: string): number {
  if (expiration.length > 0 && expiration.length <= 15) {
    let value = 0;
    for (let i = 0; i < expiration.length; i++) {
      const digit = expiration.charCodeAt(i) - 48;
      if (digit < 0 || digit > 9) return parseExpirationSlowly(expiration);
      value = value * 10 + digit;
    }
    return value;
  }
  return parseExpirationSlowly(expiration);
}

function parseExpirationSlowly(expiration: string): number {
  const match = /^([+-]?)(\d+)([\s\S]*)$/.exec(expiration);
  if (match === null) refuse(406, `invalid expiration '${expiration}': no_integer`);
  const [, sign, digits, rest] = match as unknown as [string, string, string, string];
  if (rest !== '') refuse(406, `invalid expiration '${expiration}': {leftover_string,${JSON.stringify(rest)}}`);
  const value = BigInt(digits);
  if (sign === '-' && value !== 0n) refuse(406, `invalid expiration '${expiration}': {value_negative,-${value}}`);
  return Number(value);
}
