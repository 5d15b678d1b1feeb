/**
 * The run process's own broker chores, with plain amqplib: the broker's version, and leaving the
 * broker clean (deleting every name a run may have declared, then checking with rabbitmqctl).
 */

import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import amqp from 'amqplib';
import type { Channel, ChannelModel } from 'amqplib';
import { describe } from './ipc.js';
import type { BrokerNames } from './variants/types.js';

export async function brokerVersion(url: string): Promise<string> {
  const connection = await amqp.connect(url);
  try {
    const { product, version } = connection.connection.serverProperties;
    return `${product} ${version}`;
  } finally {
    await connection.close();
  }
}

/** Deletes queues, then exchanges; a missing name is fine, any failure only costs a channel. */
export async function deleteNames(url: string, names: BrokerNames): Promise<string[]> {
  const failures: string[] = [];
  const connection: ChannelModel = await amqp.connect(url);
  connection.on('error', () => undefined);
  let channel: Channel | undefined;
  const attempt = async (what: string, operation: (channel: Channel) => Promise<unknown>): Promise<void> => {
    try {
      if (channel === undefined) {
        channel = await connection.createChannel();
        channel.on('error', () => undefined);
      }
      await operation(channel);
    } catch (error) {
      channel = undefined;
      failures.push(`${what}: ${describe(error)}`);
    }
  };
  for (const queue of new Set(names.queues)) await attempt(`queue ${queue}`, (ch) => ch.deleteQueue(queue));
  for (const exchange of new Set(names.exchanges)) await attempt(`exchange ${exchange}`, (ch) => ch.deleteExchange(exchange));
  await connection.close();
  return failures;
}

const run = promisify(execFile);

async function listNames(kind: 'list_queues' | 'list_exchanges', marker: string): Promise<string[]> {
  const { stdout } = await run('rabbitmqctl', ['-q', kind, 'name'], { timeout: 60_000 });
  return stdout
    .split('\n')
    .map((line) => line.trim())
    .filter((name) => name.includes(marker));
}

/** Names containing `marker` still on the broker, or undefined when rabbitmqctl cannot tell. */
export async function leftovers(marker: string): Promise<BrokerNames | undefined> {
  try {
    return { queues: await listNames('list_queues', marker), exchanges: await listNames('list_exchanges', marker) };
  } catch {
    return undefined;
  }
}
