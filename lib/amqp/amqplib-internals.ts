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

/**
 * Two changes to how amqplib writes, both keeping every frame in the order it was made:
 *
 * - Direct: amqplib queues each channel's frames in a stream of its own and moves them to the
 *   socket from a `setImmediate` callback (its round-robin muxer), several stream operations per
 *   message. Here each channel writes its frames to the socket as it makes them.
 * - Coalesced: every write is its own system call, and with TCP_NODELAY its own TCP segment.
 *   Corking the socket for the rest of the current tick gathers everything written in it (a
 *   burst of requests, a reply and its ack) into one write.
 *
 * A channel's `publish()` returns false once {@link writeCapacityBytes} wait in the socket, and
 * the channel emits `'drain'` when the socket drained, as amqplib's own buffers do. Returns false
 * (and changes nothing) when the internals are not as expected.
 */
export function streamlineWrites(model: ChannelModel, socket: Duplex): boolean {
  const connection = connectionOf(model);
  const freshChannel = connection?.freshChannel;
  if (connection === undefined || !Array.isArray(connection.channels) || typeof freshChannel !== 'function') return false;
  const starved = new Set<ChannelBuffer>();
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
      buffer.write = (frame: Buffer): boolean => {
        if (socket.write(frame) || socket.writableLength < writeCapacityBytes) return true;
        starved.add(buffer);
        return false;
      };
    }
    return number;
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
