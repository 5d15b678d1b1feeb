import type { Duplex } from 'node:stream';
import { AmqplibConnection } from '../../lib/amqp/amqplib.js';
import { QAMProxy } from '../../lib/index.js';
import { Servers, quietConnection } from './fixtures.js';

/** The socket under a QAMConnection (the amqplib adapter's, with the streamlined write path). */
async function socketOf(connection: ReturnType<typeof quietConnection>): Promise<Duplex> {
  const link = await connection.link();
  if (!(link instanceof AmqplibConnection) || link.socket === undefined) throw new Error('not a streamlined amqplib connection');
  return link.socket;
}

/** Counts what reaches the socket: `write` calls, and the flushes that become system calls. */
function countWrites(socket: Duplex): { writes: number; flushes: number } {
  const counts = { writes: 0, flushes: 0 };
  const target = socket as Duplex & { _write: Duplex['_write']; _writev?: Duplex['_writev'] };
  const { write, _write: flushOne, _writev: flushMany } = target;
  target.write = function (this: Duplex, ...args: Parameters<Duplex['write']>) {
    counts.writes++;
    return write.apply(this, args);
  } as Duplex['write'];
  target._write = function (this: Duplex, ...args: Parameters<Duplex['_write']>) {
    counts.flushes++;
    return flushOne.apply(this, args);
  };
  if (flushMany !== undefined) {
    target._writev = function (this: Duplex, ...args: Parameters<NonNullable<Duplex['_writev']>>) {
      counts.flushes++;
      return flushMany.apply(this, args);
    };
  }
  return counts;
}

describe('socket writes', () => {
  const servers = new Servers();
  afterAll(() => servers.closeAll());

  it('a request reaches the socket in the turn it is made, not after a later event-loop phase', async () => {
    const server = servers.create().registerFunction((x: number) => x, 'echo');
    await server.serve();
    const connection = quietConnection();
    const proxy = new QAMProxy<{ echo(x: number): number }>({ serverId: server.serverId, connection });
    try {
      await expect(proxy.echo(1)).resolves.toBe(1);
      const counts = countWrites(await socketOf(connection));
      const call = proxy.echo(2);
      expect(counts.writes).toBeGreaterThanOrEqual(1);
      await expect(call).resolves.toBe(2);
    } finally {
      await proxy.close();
      await connection.close();
    }
  });

  it('a burst of 200 requests made in one turn leaves in a few system calls, and every call is answered', async () => {
    const server = servers.create({ workers: 200 }).registerFunction((x: number) => x, 'echo');
    await server.serve();
    const connection = quietConnection();
    const proxy = new QAMProxy<{ echo(x: number): number }>({ serverId: server.serverId, connection });
    try {
      await proxy.echo(0);
      const counts = countWrites(await socketOf(connection));
      const calls = Array.from({ length: 200 }, (_, i) => proxy.echo(i));
      expect(counts.writes).toBeGreaterThanOrEqual(200);
      await new Promise((resolve) => setImmediate(resolve));
      expect(counts.flushes).toBeLessThanOrEqual(2);
      await expect(Promise.all(calls)).resolves.toEqual(Array.from({ length: 200 }, (_, i) => i));
    } finally {
      await proxy.close();
      await connection.close();
    }
  });
});
