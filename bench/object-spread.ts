/**
 * What building a message's AMQP properties costs in V8, per message: a spread with more fields
 * after it (`{ ...properties, correlationId }`, how a request's properties were built before,
 * three times per request), a spread followed by assignments, and one object literal written out
 * field by field (how they are built now), in ns per object.
 *
 *   npm run build && node dist/bench/object-spread.js
 */

interface Properties {
  contentType?: string | undefined;
  headers?: Record<string, unknown> | undefined;
  replyTo?: string | undefined;
  correlationId?: string | undefined;
  expiration?: string | undefined;
  mandatory?: boolean | undefined;
}

const target: Properties = Object.freeze({
  replyTo: 'amq.rabbitmq.reply-to',
  contentType: 'application/json',
  headers: Object.freeze({ 'x-qam-wire': 2 }),
});

const ways: Record<string, (id: string) => Properties> = {
  'three spreads, each with more fields after it': (id) => {
    const request = { ...target, correlationId: id };
    const expiring = { ...request, expiration: '30000' };
    return { ...expiring, mandatory: true };
  },
  'one spread with a field after it': (id) => ({ ...target, correlationId: id }),
  'one spread, then two assignments': (id) => {
    const properties: Properties = { ...target };
    properties.correlationId = id;
    properties.expiration = '30000';
    return properties;
  },
  'one literal, field by field (now)': (id) => ({
    contentType: target.contentType,
    headers: target.headers,
    replyTo: target.replyTo,
    correlationId: id,
    expiration: '30000',
    mandatory: true,
  }),
};

const objects = 2_000_000;
const ids = Array.from({ length: 1024 }, (_, i) => `AbCdEfGhIjKlMnOp.${i.toString(36)}`);
let sink: Properties | undefined;
for (const round of [1, 2, 3]) {
  for (const [name, build] of Object.entries(ways)) {
    const started = process.hrtime.bigint();
    for (let i = 0; i < objects; i++) sink = build(ids[i & 1023] as string);
    const ns = Number(process.hrtime.bigint() - started) / objects;
    if (round > 1) console.log(`round ${round - 1}: ${name}: ${ns.toFixed(0)} ns`);
  }
}
if (sink === undefined) throw new Error('nothing built');
