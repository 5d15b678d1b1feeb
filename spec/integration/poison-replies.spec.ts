import { setTimeout as delay } from 'node:timers/promises';
import * as amqp from 'amqplib';
import { QAMConnection, QAMProxy, currentCall, silentLogger, type QAMServerOptions } from '../../lib/index.js';
import { queueMessageCount, waitUntil } from '../support/broker.js';
import { TcpProxy } from '../support/tcp-proxy.js';
import { Servers, recordingLogger, url } from './fixtures.js';

/**
 * A request whose reply the broker refuses must not loop. RabbitMQ 3.10 closes the whole
 * connection (541 INTERNAL_ERROR) on a reply to a direct reply-to address of the right shape that
 * it cannot decode; before the server remembered such requests, the request was redelivered and
 * run again, about 50 times a second, for as long as it stayed in the queue.
 */
const servers = new Servers();
afterAll(() => servers.closeAll());

/** Connections a test opened, closed after it even when it fails. */
const opened: Array<{ close(): Promise<unknown> }> = [];
afterEach(() => Promise.all(opened.splice(0).map((resource) => resource.close().catch(() => undefined))));

/** Publishes a native request for `method` to a server's exchange, as any client with write rights can. */
async function publishRequest(serverId: string, method: string, params: unknown[], replyTo: string): Promise<void> {
  const connection = await amqp.connect(url);
  opened.push(connection);
  const channel = await connection.createConfirmChannel();
  channel.publish(`server_${serverId}_ex`, serverId, Buffer.from(JSON.stringify({ method, params })), {
    replyTo,
    correlationId: 'attack',
    contentType: 'application/json',
  });
  await channel.waitForConfirms();
}

/** A server counting the runs of its `target` function and its connection losses. */
async function countingServer(options: Partial<QAMServerOptions> = {}) {
  const logger = recordingLogger();
  const counts = { runs: 0, losses: 0 };
  const server = servers
    .create({ logger, ...options })
    .registerFunction(() => {
      counts.runs++;
      return 'ran';
    }, 'target')
    .registerFunction((value: number) => value, 'echo');
  await server.serve();
  server.connection.on('disconnect', () => counts.losses++);
  const proxy = new QAMProxy<{ echo(value: number): number }>({ serverId: server.serverId, url, timeout: 10, logger: silentLogger });
  opened.push(proxy);
  return { server, logger, counts, proxy, queue: `server_${server.serverId}_queue` };
}

describe('a request whose reply the broker refuses', () => {
  it.each([
    ['amq.rabbitmq.reply-to.AAAA.BBBB', 'afterReply'],
    ['amq.rabbitmq.reply-to.g2gDZAAPYWR2QGxvY2FsaG9zdA.x', 'afterReply'],
    ['amq.rabbitmq.reply-to.AAAA.BBBB', 'onReceipt'],
  ] as const)('(reply_to %s, ack %s) runs once, costs at most one connection, and other calls are answered', async (replyTo, ack) => {
    const { server, logger, counts, proxy, queue } = await countingServer({ ack });
    await expect(proxy.echo(1)).resolves.toBe(1);

    await publishRequest(server.serverId, 'target', [], replyTo);
    await waitUntil(() => counts.runs >= 1, { message: 'the request running' });
    await expect(Promise.all(Array.from({ length: 20 }, (_, i) => proxy.echo(i)))).resolves.toEqual(
      Array.from({ length: 20 }, (_, i) => i),
    );
    await waitUntil(async () => (await queueMessageCount(queue)) === 0, { message: 'the request leaving the queue' });
    // Looping, the request ran about 50 times a second.
    await delay(2000);

    expect(counts.runs).toBe(1);
    expect(counts.losses).toBeLessThanOrEqual(1);
    if (counts.losses === 1 && ack === 'afterReply') {
      expect(logger.lines.filter((line) => line.includes('dropped a redelivered request without running it again'))).toHaveLength(1);
    }
    await expect(proxy.echo(2)).resolves.toBe(2);
  });

  it('loses none of the replies published in the same write, before it or after it', async () => {
    const waiting: Array<() => void> = [];
    let released = false;
    const runs = new Map<number, number>();
    const server = servers.create({ workers: 100 }).registerFunction((value: number) => {
      runs.set(value, (runs.get(value) ?? 0) + 1);
      return released ? value : new Promise<number>((resolve) => waiting.push(() => resolve(value)));
    }, 'wait');
    await server.serve();
    // Two proxies, so that the replies after the hostile one go to an address the broker has not
    // taken a reply to before.
    const first = new QAMProxy<{ wait(value: number): number }>({ serverId: server.serverId, url, timeout: 20, logger: silentLogger });
    const second = new QAMProxy<{ wait(value: number): number }>({ serverId: server.serverId, url, timeout: 20, logger: silentLogger });
    opened.push(first, second);

    const before = Array.from({ length: 25 }, (_, i) => first.wait(i));
    await waitUntil(() => waiting.length === 25, { message: '25 calls waiting' });
    await publishRequest(server.serverId, 'wait', [-1], 'amq.rabbitmq.reply-to.AAAA.BBBB');
    await waitUntil(() => waiting.length === 26, { message: 'the hostile request waiting' });
    const after = Array.from({ length: 25 }, (_, i) => second.wait(100 + i));
    await waitUntil(() => waiting.length === 51, { message: '51 calls waiting' });

    // All 51 replies are published in one turn, the hostile one in the middle.
    released = true;
    for (const release of waiting.splice(0)) release();
    await expect(Promise.all([...before, ...after])).resolves.toEqual([
      ...Array.from({ length: 25 }, (_, i) => i),
      ...Array.from({ length: 25 }, (_, i) => 100 + i),
    ]);
    await waitUntil(async () => (await queueMessageCount(`server_${server.serverId}_queue`)) === 0, { message: 'the queue empty' });
    await delay(1000);
    expect(runs.get(-1)).toBe(1);
  });

  it('is refused before it runs when its reply_to has not the shape of a reply address', async () => {
    const { server, logger, counts, proxy, queue } = await countingServer();
    // (The bare 'amq.rabbitmq.reply-to' never arrives: the broker refuses to publish it from a
    // channel that does not consume its replies, and rewrites it from one that does.)
    const hostile = [
      'amq.rabbitmq.reply-to.',
      'amq.rabbitmq.reply-to.AAAA BBBB',
      'amq.rabbitmq.reply-to.AAAA\nqam: forged line',
      `amq.rabbitmq.reply-to.${'A'.repeat(200)}!`,
      'server_other_ex',
    ];
    for (const replyTo of hostile) await publishRequest(server.serverId, 'target', [], replyTo);
    await waitUntil(async () => (await queueMessageCount(queue)) === 0, { message: 'the requests leaving the queue' });
    await expect(proxy.echo(3)).resolves.toBe(3);

    expect(counts).toEqual({ runs: 0, losses: 0 });
    expect(server.stats()).toMatchObject({ served: 1, failed: hostile.length });
    const refusals = logger.lines.filter((line) => line.includes('refused a request: Request reply_to'));
    expect(refusals).toHaveLength(hostile.length);
    expect(refusals.every((line) => !line.includes('\n'))).toBe(true);
  });

  it('is not to blame for a connection lost for another reason: its request runs again after the reconnect', async () => {
    const tcp = await TcpProxy.start();
    const connection = new QAMConnection({ url: tcp.url(), reconnectDelay: { min: 0.05, max: 0.5 }, logger: silentLogger });
    const logger = recordingLogger();
    const runs: boolean[] = [];
    let open: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const server = servers
      .create({ connection, logger })
      .registerFunction(async () => {
        runs.push(currentCall()?.redelivered ?? false);
        await gate;
        return 'done';
      }, 'gated')
      .registerFunction(() => 'ok', 'ping');
    const warmUp = new QAMProxy<{ ping(): string }>({ serverId: server.serverId, url, timeout: 20, logger: silentLogger });
    const proxy = new QAMProxy<{ gated(): string }>({ serverId: server.serverId, url, timeout: 20, logger: silentLogger });
    try {
      await server.serve();
      // Another proxy's call opens the server's reply channel; this proxy's address is new to it,
      // so its reply waits for the broker's confirm.
      await expect(warmUp.ping()).resolves.toBe('ok');
      const call = proxy.gated();
      await waitUntil(() => runs.length === 1, { message: 'the call running' });
      // The reply is published into a hung network, and the connection dies before it is confirmed.
      tcp.freeze(true);
      open();
      await delay(300);
      tcp.cutAll();
      tcp.freeze(false);

      await expect(call).resolves.toBe('done');
      await waitUntil(() => runs.length === 2, { message: 'the redelivered request running' });
      expect(runs).toEqual([false, true]);
      expect(logger.lines.filter((line) => line.includes('dropped') || line.includes('will not run again'))).toEqual([]);
    } finally {
      // In this order: the server's connection goes through the TCP proxy.
      await Promise.all([warmUp.close(), proxy.close()]);
      await server.close({ deleteQueue: true });
      await connection.close();
      await tcp.close();
    }
  });
});
