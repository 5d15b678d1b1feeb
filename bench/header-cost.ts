/**
 * What the `x-qam-*` headers cost per message: amqplib encoding and decoding a request's AMQP
 * properties without headers (wire 1), with `x-qam-wire` alone, and with the fingerprint as well,
 * in CPU µs (process.cpuUsage). A call pays this twice (its request and its reply).
 *
 *   npm run build && node dist/bench/header-cost.js
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { connectionHeaders, wireHeaders } from '../lib/protocols/native/wire.js';
import { QAMConnection } from '../lib/index.js';

interface Defs {
  encodeProperties(id: number, channel: number, size: number, fields: object): Buffer;
  decode(id: number, buffer: Buffer): object;
}
// amqplib's package exports hide its codec: reach the file beside its entry point.
const require = createRequire(import.meta.url);
const defs = require(join(dirname(require.resolve('amqplib')), 'lib', 'defs.js')) as Defs;
const basicProperties = 60;
/** A content header frame: 7 bytes of frame header, 12 of class, weight and body size; a frame-end byte. */
const propertiesOf = (frame: Buffer): Buffer => frame.subarray(19, frame.length - 1);

const connection = new QAMConnection({ url: 'amqp://guest:guest@127.0.0.1:5672/', fingerprint: { name: 'bench', type: 'bench' } });
const base = { contentType: 'application/json', correlationId: 'AbCdEf.1z', replyTo: 'amq.rabbitmq.reply-to', expiration: '30000' };
const variants: Record<string, object> = {
  'no headers (wire 1)': base,
  'x-qam-wire': { ...base, headers: wireHeaders },
  'x-qam-wire + fingerprint': { ...base, headers: connectionHeaders(connection.fingerprintJson) },
};

const count = 200_000;
function cost(properties: object): number {
  const start = process.cpuUsage();
  for (let i = 0; i < count; i++) defs.decode(basicProperties, propertiesOf(defs.encodeProperties(basicProperties, 1, 100, properties)));
  const used = process.cpuUsage(start);
  return (used.user + used.system) / count;
}

const rounds = 7;
const results = new Map<string, number[]>();
for (let round = 0; round < rounds; round++) {
  for (const [name, properties] of Object.entries(variants)) results.set(name, [...(results.get(name) ?? []), cost(properties)]);
}
for (const [name, values] of results) {
  const sorted = [...values].sort((a, b) => a - b);
  console.log(`${name}: ${sorted[Math.floor(rounds / 2)]!.toFixed(2)} µs per encode + decode (min ${sorted[0]!.toFixed(2)})`);
}
