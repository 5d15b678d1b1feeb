import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Duplex } from 'node:stream';
import type { ChannelModel } from 'amqplib';

/**
 * The one place qam touches amqplib's private internals, for two things its public API lacks:
 * the connection's socket (to know when the broker stops reading, and to close promptly while it
 * does) and a faster write path. Both depend on how amqplib 2.3 lays out its connection, so they
 * apply only to the versions listed here, each tested by spec/integration/amqp/internals.spec.ts;
 * with any other version qam uses amqplib's public API alone, slower but correct.
 * @internal
 */
export const testedAmqplibVersions: readonly string[] = ['2.3.1'];

/** The installed amqplib's version (its package.json is not in its `exports`). */
export const amqplibVersion: string = ((): string => {
  const main = createRequire(import.meta.url).resolve('amqplib');
  const manifest: unknown = JSON.parse(readFileSync(join(dirname(main), 'package.json'), 'utf8'));
  const version = typeof manifest === 'object' && manifest !== null ? (manifest as { version?: unknown }).version : undefined;
  return typeof version === 'string' ? version : 'unknown';
})();

/** The parts of amqplib's connection object (`connection` under the ChannelModel) used here. */
interface AmqplibConnection {
  stream?: unknown;
  heartbeater?: { sendTimer?: unknown; recvTimer?: unknown } | null;
  channels?: Array<{ buffer: ChannelBuffer } | null>;
  freshChannel?: (channel: unknown, options?: unknown) => number;
  sendMessage?: (channel: number, method: unknown, fields: unknown, properties: unknown, props: unknown, content: Buffer) => boolean;
}

interface ChannelBuffer {
  write(frame: Buffer): boolean;
  emit(event: 'drain'): boolean;
}

/**
 * The socket of an amqplib connection, when this amqplib version is one qam was tested with and
 * its internals have the expected shape; otherwise undefined (and qam keeps to the public API).
 */
export function socketOf(model: ChannelModel): Duplex | undefined {
  if (!testedAmqplibVersions.includes(amqplibVersion)) return undefined;
  const socket = connectionOf(model)?.stream;
  return socket instanceof Duplex ? socket : undefined;
}

/**
 * Lets the Node process exit (or not) while the connection is open: its socket and its heartbeat
 * timers unref'ed or ref'ed, as Node's own handles allow. Does nothing with an amqplib version
 * qam was not tested with (the connection then keeps the process alive, as amqplib does).
 */
export function keepProcessAlive(model: ChannelModel, alive: boolean): void {
  const socket = socketOf(model) as (Duplex & { ref?: () => void; unref?: () => void }) | undefined;
  if (socket === undefined) return;
  const heart = connectionOf(model)?.heartbeater;
  for (const handle of [socket, heart?.sendTimer, heart?.recvTimer]) {
    const target = handle as { ref?: unknown; unref?: unknown } | undefined;
    const method = alive ? target?.ref : target?.unref;
    if (typeof method === 'function') method.call(target);
  }
}

function connectionOf(model: ChannelModel): AmqplibConnection | undefined {
  const connection: unknown = (model as unknown as { connection?: unknown }).connection;
  return typeof connection === 'object' && connection !== null ? (connection as AmqplibConnection) : undefined;
}

/**
 * Below this many bytes waiting in the socket, a channel takes more writes. amqplib's own
 * per-channel buffers say "full" at 16 frames; the socket's default high-water mark is 16 KiB,
 * less than one tick of requests with many calls in flight.
 */
export const writeCapacityBytes = 1024 * 1024;

/** AMQP 0-9-1 frames (section 4.2.3): type, channel, payload size, payload, frame end. */
const frameOverhead = 8;
const contentHeaderFrame = 2;
/** In a content header frame: the property flags, after class id, weight and body size; then the properties. */
const propertyFlagsAt = 19;
const propertiesAt = 21;
const contentTypeFlag = 0x8000;
const contentEncodingFlag = 0x4000;
const headersFlag = 0x2000;

/**
 * The header tables of frozen headers objects, as amqplib encoded them the first time: a frozen
 * object of strings and numbers never changes, so neither does its encoding. qam sends one such
 * object (its wire version and fingerprint) on every request and reply, and amqplib's table
 * encoder, run per message, cost more than everything else qam adds to a call.
 */
const encodedTables = new WeakMap<object, Buffer>();

/** The shared headers object amqplib's publish options wrap (`Object.create(headers)`), when it is frozen and alone. */
function sharedHeaders(props: unknown): object | undefined {
  const headers = typeof props === 'object' && props !== null ? (props as { headers?: unknown }).headers : undefined;
  if (typeof headers !== 'object' || headers === null || Object.keys(headers).length > 0) return undefined;
  const shared: unknown = Object.getPrototypeOf(headers);
  return typeof shared === 'object' && shared !== null && Object.isFrozen(shared) ? shared : undefined;
}

/** True for a headers object whose values are all strings and numbers (whose encoding a freeze fixes). */
function isFlat(headers: object): boolean {
  return Object.values(headers).every((value) => typeof value === 'string' || typeof value === 'number');
}

/** Where the content header frame starts in a chunk of whole frames, or -1. */
function contentHeaderAt(chunk: Buffer): number {
  let at = 0;
  while (at + frameOverhead <= chunk.length) {
    if (chunk[at] === contentHeaderFrame) return at + propertiesAt <= chunk.length ? at : -1;
    at += chunk.readUInt32BE(at + 3) + frameOverhead;
  }
  return -1;
}

/** Where the header table goes in the content header frame at `at`: after the content type and encoding. */
function tableOffset(chunk: Buffer, at: number, flags: number): number {
  let offset = at + propertiesAt;
  if ((flags & contentTypeFlag) !== 0) offset += 1 + (chunk[offset] ?? 0);
  if ((flags & contentEncodingFlag) !== 0) offset += 1 + (chunk[offset] ?? 0);
  return offset;
}

/** The encoded header table (length and fields) of the content header frame at `at`, copied; undefined when it has none. */
function tableOf(chunk: Buffer, at: number): Buffer | undefined {
  const flags = chunk.readUInt16BE(at + propertyFlagsAt);
  if ((flags & headersFlag) === 0) return undefined;
  const offset = tableOffset(chunk, at, flags);
  return Buffer.from(chunk.subarray(offset, offset + 4 + chunk.readUInt32BE(offset)));
}

/** The chunk with `table` as the header table of its content header frame at `at` (which has none). */
function withTable(chunk: Buffer, at: number, table: Buffer): Buffer {
  const flags = chunk.readUInt16BE(at + propertyFlagsAt);
  const offset = tableOffset(chunk, at, flags);
  const out = Buffer.allocUnsafe(chunk.length + table.length);
  chunk.copy(out, 0, 0, offset);
  table.copy(out, offset);
  chunk.copy(out, offset + table.length, offset);
  out.writeUInt16BE(flags | headersFlag, at + propertyFlagsAt);
  out.writeUInt32BE(chunk.readUInt32BE(at + 3) + table.length, at + 3);
  return out;
}

/**
 * Three changes to how amqplib writes, all keeping every frame in the order it was made:
 *
 * - Direct: amqplib queues each channel's frames in a stream of its own and moves them to the
 *   socket from a `setImmediate` callback (its round-robin muxer), several stream operations per
 *   message. Here each channel writes its frames to the socket as it makes them.
 * - Coalesced: every write is its own system call, and with TCP_NODELAY its own TCP segment.
 *   Corking the socket for the rest of the current tick gathers everything written in it (a
 *   burst of requests, a reply and its ack) into one write.
 * - Header tables encoded once: a message whose headers are a frozen object of strings and
 *   numbers (see {@link encodedTables}) is encoded by amqplib without them, and the table amqplib
 *   encoded for that object the first time is put into its content header frame.
 *
 * A channel's `publish()` returns false once {@link writeCapacityBytes} wait in the socket, and
 * the channel emits `'drain'` when the socket drained, as amqplib's own buffers do. Returns false
 * (and changes nothing) when the internals are not as expected.
 */
export function streamlineWrites(model: ChannelModel, socket: Duplex): boolean {
  const connection = connectionOf(model);
  const freshChannel = connection?.freshChannel;
  const sendMessage = connection?.sendMessage;
  if (
    connection === undefined ||
    !Array.isArray(connection.channels) ||
    typeof freshChannel !== 'function' ||
    typeof sendMessage !== 'function'
  )
    return false;
  const starved = new Set<ChannelBuffer>();
  const streamlined = new WeakSet<ChannelBuffer>();
  /** The header table to put into the content header frame amqplib is writing. */
  let insert: Buffer | undefined;
  /** The frozen headers object whose table amqplib is encoding, to keep. */
  let capture: object | undefined;
  const complete = (chunk: Buffer): Buffer => {
    const at = contentHeaderAt(chunk);
    if (at < 0) return chunk;
    if (insert !== undefined) {
      const table = insert;
      insert = undefined;
      return withTable(chunk, at, table);
    }
    const encoded = tableOf(chunk, at);
    if (encoded !== undefined && capture !== undefined) encodedTables.set(capture, encoded);
    capture = undefined;
    return chunk;
  };
  socket.on('drain', () => {
    const waiting = [...starved];
    starved.clear();
    for (const buffer of waiting) buffer.emit('drain');
  });
  connection.freshChannel = function (this: AmqplibConnection, ...args: Parameters<typeof freshChannel>): number {
    const number = freshChannel.apply(this, args);
    const entry = this.channels?.[number];
    if (entry !== null && entry !== undefined) {
      const buffer = entry.buffer;
      streamlined.add(buffer);
      buffer.write = (frame: Buffer): boolean => {
        if (
          socket.write(insert === undefined && capture === undefined ? frame : complete(frame)) ||
          socket.writableLength < writeCapacityBytes
        )
          return true;
        starved.add(buffer);
        return false;
      };
    }
    return number;
  };
  connection.sendMessage = function (this: AmqplibConnection, channel, method, fields, properties, props, content): boolean {
    const shared = sharedHeaders(props);
    const buffer = this.channels?.[channel]?.buffer;
    const encoded = shared === undefined ? undefined : encodedTables.get(shared);
    if (shared === undefined || buffer === undefined || !streamlined.has(buffer) || (encoded === undefined && !isFlat(shared)))
      return sendMessage.call(this, channel, method, fields, properties, props, content);
    if (encoded === undefined) capture = shared;
    else {
      (props as { headers?: unknown }).headers = undefined;
      insert = encoded;
    }
    try {
      return sendMessage.call(this, channel, method, fields, properties, props, content);
    } finally {
      insert = undefined;
      capture = undefined;
    }
  };
  const write = socket.write;
  let corked = false;
  const uncork = (): void => {
    corked = false;
    socket.uncork();
  };
  socket.write = function (this: Duplex, ...args: Parameters<Duplex['write']>): boolean {
    if (!corked) {
      corked = true;
      socket.cork();
      process.nextTick(uncork);
    }
    return write.apply(this, args);
  } as Duplex['write'];
  return true;
}
