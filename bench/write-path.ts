/**
 * `npm run bench:write-path [-- --size=262144 --max=5000 --wait=5]`: what amqplib's `publish()`
 * returns, and whether the channel's `'drain'` follows, on a plain amqplib channel and on a
 * channel of a QAMConnection (whose socket writes qam's `streamlineWrites` rearranges).
 *
 * Each run publishes `--size`-byte messages in one synchronous loop until `publish()` returns
 * false (or `--max` messages), then waits up to `--wait` seconds for the channel's `'drain'`, then
 * publishes one more message. The messages go to the default exchange with a routing key no queue
 * has, so the broker drops them and stores nothing. Broker: `BENCH_URL`, default the local one.
 */

import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Duplex } from 'node:stream';
import { parseArgs } from 'node:util';
import amqp from 'amqplib';
import type { Channel, ChannelModel } from 'amqplib';
import { QAMConnection, silentLogger } from '../lib/index.js';
import { AmqplibConnection } from '../lib/amqp/amqplib.js';
import { projectRoot } from './environment.js';

interface Outcome {
  label: string;
  /** messages published when publish() first returned false; undefined if it never did */
  falseAfter: number | undefined;
  /** bytes in the socket's buffer at that moment */
  socketBufferedAtFalse: number;
  /** the socket's highWaterMark */
  socketHighWaterMark: number;
  /** ms until the channel's 'drain', undefined if it did not come within the wait */
  drainMs: number | undefined;
  /** ms until the socket's buffer was empty, undefined if it was not within the wait */
  socketEmptyMs: number | undefined;
  /** what publish() returned for one more message after the wait */
  nextPublish: boolean;
}

function options(): { url: string; size: number; max: number; waitMs: number } {
  const { values } = parseArgs({
    options: {
      size: { type: 'string', default: String(256 * 1024) },
      max: { type: 'string', default: '5000' },
      wait: { type: 'string', default: '5' },
    },
  });
  const size = Number(values.size);
  const max = Number(values.max);
  const waitMs = Number(values.wait) * 1000;
  if (!Number.isInteger(size) || size < 1) throw new Error(`--size must be a positive integer, got ${values.size}`);
  if (!Number.isInteger(max) || max < 1) throw new Error(`--max must be a positive integer, got ${values.max}`);
  if (!(waitMs > 0)) throw new Error(`--wait must be a positive number of seconds, got ${values.wait}`);
  return { url: process.env['BENCH_URL'] ?? 'amqp://guest:guest@127.0.0.1:5672', size, max, waitMs };
}

/** The socket under an amqplib ChannelModel. */
function socketOf(model: ChannelModel): Duplex {
  return (model as unknown as { connection: { stream: Duplex } }).connection.stream;
}

async function measure(label: string, model: ChannelModel, size: number, max: number, waitMs: number): Promise<Outcome> {
  const channel: Channel = await model.createChannel();
  const socket = socketOf(model);
  const routingKey = `qam_write_path_nowhere_${randomBytes(8).toString('hex')}`;
  const body = randomBytes(size);
  let published = 0;
  let accepted = true;
  while (accepted && published < max) {
    accepted = channel.publish('', routingKey, body);
    published++;
  }
  const socketBufferedAtFalse = socket.writableLength;
  const start = performance.now();
  let drainMs: number | undefined;
  let socketEmptyMs: number | undefined;
  channel.once('drain', () => {
    drainMs = Math.round(performance.now() - start);
  });
  while (performance.now() - start < waitMs && (drainMs === undefined || socketEmptyMs === undefined)) {
    if (socketEmptyMs === undefined && socket.writableLength === 0) socketEmptyMs = Math.round(performance.now() - start);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  const nextPublish = channel.publish('', routingKey, body);
  await channel.close();
  return {
    label,
    falseAfter: accepted ? undefined : published,
    socketBufferedAtFalse,
    socketHighWaterMark: socket.writableHighWaterMark,
    drainMs,
    socketEmptyMs,
    nextPublish,
  };
}

async function main(): Promise<void> {
  const { url, size, max, waitMs } = options();
  const results: Outcome[] = [];

  const plain = await amqp.connect(url, { noDelay: true });
  try {
    results.push(await measure('amqplib channel', plain, size, max, waitMs));
  } finally {
    await plain.close();
  }

  const connection = new QAMConnection({ url, logger: silentLogger });
  try {
    const link = await connection.link();
    if (!(link instanceof AmqplibConnection)) throw new Error('not an amqplib connection');
    results.push(await measure('qam channel (QAMConnection)', link.model, size, max, waitMs));
  } finally {
    await connection.close();
  }

  const show = (ms: number | undefined): string => (ms === undefined ? `never (waited ${waitMs / 1000} s)` : `after ${ms} ms`);
  console.log(`publish() of ${size}-byte messages in one synchronous loop (amqplib ${amqpVersion()}), up to ${max}:`);
  for (const r of results) {
    console.log(
      `  ${r.label.padEnd(28)} false after ${r.falseAfter ?? `never (${max} sent)`} messages` +
        ` (socket buffer ${(r.socketBufferedAtFalse / 1024).toFixed(0)} KiB, highWaterMark ${r.socketHighWaterMark / 1024} KiB);` +
        ` 'drain' ${show(r.drainMs)}; socket empty ${show(r.socketEmptyMs)}; next publish() ${r.nextPublish}`,
    );
  }
}

function amqpVersion(): string {
  const file = `${projectRoot}node_modules/amqplib/package.json`;
  return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
