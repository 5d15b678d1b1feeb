import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { existsSync } from 'node:fs';
import * as net from 'node:net';
import * as amqp from 'amqplib';
import type { ChannelModel } from 'amqplib';
import { BROKER_PORT, queueExists, uniqueName, waitUntil } from './broker.js';
import { startNode, type TestNode } from './rabbit-node.js';

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Resolves with the first argument of `event` on `emitter`. */
function next(emitter: ChannelModel, event: 'blocked' | 'unblocked' | 'close'): Promise<unknown> {
  return new Promise((resolve) => emitter.once(event, (arg: unknown) => resolve(arg)));
}

describe('a RabbitMQ node of the test’s own', () => {
  let node: TestNode;
  const opened = new Set<ChannelModel>();

  async function connect(): Promise<ChannelModel> {
    const conn = await amqp.connect(node.url);
    conn.on('error', () => {});
    opened.add(conn);
    conn.once('close', () => opened.delete(conn));
    return conn;
  }

  beforeAll(async () => {
    node = await startNode();
  }, 120_000);

  afterAll(async () => {
    await Promise.all([...opened].map((conn) => conn.close().catch(() => {})));
    await node?.stop();
  }, 60_000);

  it('has its own name and loopback port, and what is declared on it is not on the shared broker', async () => {
    expect(node.nodeName).toMatch(/^qamtest_[0-9a-f]{16}@localhost$/);
    expect(node.port).not.toBe(BROKER_PORT);
    expect(node.url).toBe(`amqp://guest:guest@127.0.0.1:${node.port}`);
    expect((await node.ctl('eval', 'node().')).trim()).toBe(node.nodeName);
    const conn = await connect();
    const channel = await conn.createChannel();
    const queue = uniqueName('qam_node');
    await channel.assertQueue(queue, { exclusive: true });
    await expect(channel.checkQueue(queue)).resolves.toMatchObject({ queue });
    expect(await queueExists(queue)).toBe(false);
    await conn.close();
  });

  it('with the memory alarm raised blocks a publishing connection, and unblocks it when cleared', async () => {
    const publisher = await connect();
    const publishing = await publisher.createChannel();
    // A connection that does not publish is not blocked: it watches the queue.
    const observer = await (await connect()).createChannel();
    const queue = uniqueName('qam_node');
    await observer.assertQueue(queue, { autoDelete: true });
    await node.setMemoryAlarm(true);
    const blocked = next(publisher, 'blocked');
    // The broker tells a connection it is blocked when it next publishes.
    publishing.sendToQueue(queue, Buffer.from('held'));
    await expect(blocked).resolves.toMatch(/memory/);
    expect((await observer.checkQueue(queue)).messageCount).toBe(0);
    const unblocked = next(publisher, 'unblocked');
    await node.setMemoryAlarm(false);
    await unblocked;
    await waitUntil(async () => (await observer.checkQueue(queue)).messageCount === 1, { message: 'the held message arrives' });
  });

  it('restart() closes every connection, and the node takes new ones after', async () => {
    const conn = await connect();
    const closed = next(conn, 'close');
    await node.restart();
    await expect(closed).resolves.toMatchObject({ code: 320 });
    const again = await connect();
    const channel = await again.createChannel();
    await expect(channel.checkQueue('amq.rabbitmq.reply-to')).resolves.toBeDefined();
    await again.close();
  });

  it('stop() ends its process and closes its port, leaving the shared broker running', async () => {
    const { pid, port, dir } = node;
    expect(processExists(pid)).toBe(true);
    await node.stop();
    expect(processExists(pid)).toBe(false);
    expect(await portOpen(port)).toBe(false);
    expect(existsSync(dir)).toBe(false);
    await expect(node.ctl('eval', 'ok.')).rejects.toThrow(/qamtest_/);
    expect(await portOpen(BROKER_PORT)).toBe(true);
    await node.stop();
  });
});
