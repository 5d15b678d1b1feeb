/**
 * Messages cross the embedded broker as they would cross the wire: the content as a copy of its
 * bytes, the properties as what amqplib would encode and the receiving amqplib decode. A field
 * table keeps strings, numbers, booleans, null, Buffers (copied), arrays and plain objects; any
 * other object becomes a table of its enumerable keys (a `Date` arrives as `{}`), `undefined`
 * table entries are left out, and what amqplib cannot encode (a bigint, a function, a symbol,
 * `undefined` in an array) makes `publish()` throw, before anything is sent.
 * @internal
 */
import type { MessageProperties } from '../port.js';
import { encodeError } from './errors.js';

/** A message's properties as the broker holds them: only the fields that were set. */
export type WireProperties = Record<string, unknown>;

const shortStrings = [
  'contentType',
  'contentEncoding',
  'correlationId',
  'replyTo',
  'expiration',
  'messageId',
  'type',
  'userId',
  'appId',
] as const;

/** True when `value` is an AMQP short string: a string of at most 255 bytes in UTF-8. */
export function isShortString(value: unknown): value is string {
  if (typeof value !== 'string') return false;
  // Three UTF-8 bytes at most per UTF-16 unit: only long strings need counting.
  return value.length <= 85 || Buffer.byteLength(value, 'utf8') <= 255;
}

/** Throws as amqplib's encoder does when `value` is not a short string. */
export function checkShortString(field: string, value: unknown): asserts value is string {
  if (!isShortString(value)) throw encodeError(`Field '${field}' is the wrong type; must be a string (up to 255 chars)`);
}

function checkOctet(field: string, value: unknown): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 255) {
    throw encodeError(`Field '${field}' is the wrong type; must be a number between 0 and 255`);
  }
}

/** A copy of the bytes (small ones from Node's shared pool, as `Buffer.from` would, but without its type dispatch). */
export function copyBytes(bytes: Uint8Array): Buffer {
  const copy = Buffer.allocUnsafe(bytes.length);
  copy.set(bytes);
  return copy;
}

/** The properties a publish carries, copied and checked as amqplib encodes them. */
export function wireProperties(properties: MessageProperties): WireProperties {
  const copy: WireProperties = {};
  for (const field of shortStrings) {
    const value = properties[field];
    if (value === undefined) continue;
    checkShortString(field, value);
    copy[field] = value;
  }
  if (properties.headers !== undefined) copy['headers'] = wireTable(properties.headers, 'headers');
  if (properties.deliveryMode !== undefined) {
    checkOctet('deliveryMode', properties.deliveryMode);
    copy['deliveryMode'] = properties.deliveryMode;
  }
  if (properties.priority !== undefined) {
    checkOctet('priority', properties.priority);
    copy['priority'] = properties.priority;
  }
  if (properties.timestamp !== undefined) {
    const timestamp = properties.timestamp;
    if (typeof timestamp !== 'number' || !Number.isSafeInteger(timestamp) || timestamp < 0) {
      throw encodeError("Field 'timestamp' is the wrong type; must be a non-negative integer");
    }
    copy['timestamp'] = timestamp;
  }
  return copy;
}

/** A copy of properties the broker holds, for one delivery (its own headers, its own Buffers). */
export function copyProperties(properties: WireProperties): WireProperties {
  const copy = { ...properties };
  const headers = properties['headers'];
  if (headers !== undefined) copy['headers'] = wireTable(headers, 'headers');
  return copy;
}

/** A field table (headers, arguments) as it arrives at the other end. */
export function wireTable(table: unknown, field: string): Record<string, unknown> {
  if (typeof table !== 'object' || table === null || Array.isArray(table) || Buffer.isBuffer(table)) {
    throw encodeError(`Field '${field}' is the wrong type; must be an object (a field table)`);
  }
  const copy: Record<string, unknown> = {};
  // amqplib encodes with for…in: inherited enumerable keys too.
  for (const key in table) {
    const value: unknown = (table as Record<string, unknown>)[key];
    if (value === undefined) continue;
    if (Buffer.byteLength(key, 'utf8') > 255) throw encodeError(`Field table key too long (over 255 bytes): ${key.slice(0, 40)}…`);
    copy[key] = wireValue(value);
  }
  return copy;
}

const numericTypes = new Set([
  'double',
  'float64',
  'byte',
  'int8',
  'unsignedbyte',
  'uint8',
  'short',
  'int16',
  'unsignedshort',
  'uint16',
  'int',
  'int32',
  'unsignedint',
  'uint32',
  'long',
  'int64',
]);

function wireValue(value: unknown): unknown {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      return wireNumber(value);
    case 'object':
      if (value === null) return null;
      if (Array.isArray(value)) return value.map((item: unknown) => wireValue(item));
      if (Buffer.isBuffer(value)) return copyBytes(value);
      if (Object.hasOwn(value, '!')) return typedValue(value as { '!': unknown; value?: unknown });
      return wireTable(value, 'table');
    default:
      throw encodeError(`Unknown type to encode: ${typeof value}`);
  }
}

/**
 * amqplib sends a number with a fraction (or beyond 2^63) as a double and any other as an integer
 * of the smallest size; an integer it cannot encode (NaN, -Infinity, below -2^63) throws.
 */
function wireNumber(value: number): number {
  const floating = value >= 2 ** 63 || (Math.abs(value) < 2 ** 50 && Math.floor(value) !== value);
  if (floating) return value;
  if (!Number.isInteger(value) || value < -(2 ** 63)) throw encodeError(`Cannot encode ${value} in a field table`);
  return value === 0 ? 0 : value;
}

/** amqplib's `{ '!': type, value }` trapdoor for types a JavaScript value does not imply. */
function typedValue(typed: { '!': unknown; value?: unknown }): unknown {
  const type = typed['!'];
  const value = typed.value;
  if (type === 'timestamp') {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) throw encodeError('A timestamp must be a non-negative integer');
    return { '!': 'timestamp', value };
  }
  if (type === 'decimal') {
    const decimal = value as { places?: unknown; digits?: unknown } | null | undefined;
    const places = decimal?.places;
    const digits = decimal?.digits;
    if (typeof places !== 'number' || typeof digits !== 'number' || places < 0 || places > 255) {
      throw encodeError(`Decimal value must be {'places': 0..255, 'digits': uint32}, got ${JSON.stringify(value)}`);
    }
    return { '!': 'decimal', value: { places, digits } };
  }
  if (type === 'float') {
    if (typeof value !== 'number') throw encodeError('A float must be a number');
    return Math.fround(value);
  }
  if (typeof type === 'string' && numericTypes.has(type)) {
    if (typeof value !== 'number') throw encodeError(`A ${type} must be a number`);
    return value;
  }
  if (type === 'string' || type === 'boolean' || type === 'object') return wireValue(value);
  throw encodeError(`Unknown type to encode: ${String(type)}`);
}
