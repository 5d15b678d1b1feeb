import SuperJSON from 'superjson';

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

superjson.registerCustom<Buffer, string>(
  {
    isApplicable: (value): value is Buffer => Buffer.isBuffer(value),
    serialize: (value) => value.toString('base64'),
    deserialize: (value) => Buffer.from(value, 'base64'),
  },
  'Buffer',
);

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
  decode: (body) => superjson.parse(body.toString('utf8')),
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
