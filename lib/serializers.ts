import SuperJSON from 'superjson';
import { decodeSuperjson } from './superjson-decode.js';

/** The serializers a proxy can choose; the server answers in the serializer of each request. */
export type SerializerName = 'json' | 'superjson';

/** @internal */
export interface Serializer {
  readonly name: SerializerName;
  /** The AMQP `content_type` that names this serializer on the wire. */
  readonly contentType: string;
  encode(value: unknown): Buffer;
  decode(body: Buffer): unknown;
}

/**
 * The SuperJSON instance behind the `'superjson'` serializer. Register your own classes on it
 * (on both sides) to have them survive a round trip:
 *
 * @example
 * superjson.registerClass(Point, { identifier: 'Point' });
 */
export const superjson = new SuperJSON();

/*
 * superjson's own rules for typed arrays and BigInt trust the sender: `new Float64Array(2e9)` from
 * a 30-byte annotation, or BigInt parsing of a megabyte of digits, stalls a server. qam sends these
 * types through custom transformers that check what they are given, and refuses messages that use
 * the built-in annotations (see superjson-decode.ts, which bounds the rest of decoding).
 */
superjson.registerCustom<Buffer, string>(
  {
    isApplicable: (value): value is Buffer => Buffer.isBuffer(value),
    serialize: (value) => value.toString('base64'),
    deserialize: (value) => Buffer.from(expectString(value, 'Buffer'), 'base64'),
  },
  'Buffer',
);

const typedArrays = {
  Int8Array,
  Uint8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
} as const;
type TypedArrayName = keyof typeof typedArrays;
type TypedArray = InstanceType<(typeof typedArrays)[TypedArrayName]>;

superjson.registerCustom<TypedArray, [string, string]>(
  {
    isApplicable: (value): value is TypedArray => ArrayBuffer.isView(value) && !(value instanceof DataView) && !Buffer.isBuffer(value),
    serialize: (value) => [value.constructor.name, Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64')],
    deserialize: (value) => {
      const [name, data] = Array.isArray(value) ? (value as unknown[]) : [];
      if (typeof name !== 'string' || !Object.prototype.hasOwnProperty.call(typedArrays, name)) throw new TypeError('Bad typed array type');
      const Ctor = typedArrays[name as TypedArrayName];
      const bytes = Buffer.from(expectString(data, name), 'base64');
      if (bytes.length % Ctor.BYTES_PER_ELEMENT !== 0) throw new TypeError(`Bad ${name} length`);
      const aligned = new ArrayBuffer(bytes.length);
      new Uint8Array(aligned).set(bytes);
      return new Ctor(aligned);
    },
  },
  'TypedArray',
);

const maxBigIntDigits = 4096;

superjson.registerCustom<bigint, string>(
  {
    isApplicable: (value): value is bigint => typeof value === 'bigint',
    serialize: (value) => value.toString(),
    deserialize: (value) => {
      const digits = expectString(value, 'BigInt');
      if (!/^-?\d+$/.test(digits) || digits.length > maxBigIntDigits)
        throw new TypeError(`BigInt must be at most ${maxBigIntDigits} digits`);
      return BigInt(digits);
    },
  },
  'BigInt',
);

function expectString(value: unknown, type: string): string {
  if (typeof value !== 'string') throw new TypeError(`${type} must be sent as a string`);
  return value;
}

const json: Serializer = {
  name: 'json',
  contentType: 'application/json',
  encode: (value) => Buffer.from(JSON.stringify(value)),
  decode: (body) => JSON.parse(body.toString('utf8')) as unknown,
};

const superjsonSerializer: Serializer = {
  name: 'superjson',
  contentType: 'application/x-superjson',
  encode: (value) => Buffer.from(superjson.stringify(value)),
  decode: (body) => decodeSuperjson(superjson, body.toString('utf8')),
};

const byName: Record<SerializerName, Serializer> = { json, superjson: superjsonSerializer };

/** @internal */
export function serializerNamed(name: string): Serializer {
  if (name === 'json' || name === 'superjson') return byName[name];
  throw new TypeError(`Unknown serializer '${name}': expected 'json' or 'superjson'`);
}

/**
 * The serializer a received message names in its content type, or undefined when qam does not
 * know it. A missing content type is read as JSON, which is what QAM peers send.
 * @internal
 */
export function serializerForContentType(contentType: string | undefined): Serializer | undefined {
  if (contentType === undefined || contentType === json.contentType) return json;
  if (contentType === superjsonSerializer.contentType) return superjsonSerializer;
  return undefined;
}
