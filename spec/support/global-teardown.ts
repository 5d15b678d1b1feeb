/**
 * Jest global teardown: the suite must leave the broker as it found it. Lists the vhosts, users,
 * queues and exchanges whose names carry this run's tag (see global-setup.ts), removes them, and
 * fails the run if there were any, naming them. Names of other programs never carry the tag.
 *
 * Self-contained: Jest loads global hooks outside the test module system, so `./broker.js` (a
 * TypeScript file mapped by moduleNameMapper in tests) cannot be imported here.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import * as amqp from 'amqplib';

const run = promisify(execFile);

async function names(...args: string[]): Promise<string[]> {
  const { stdout } = await run('rabbitmqctl', [...args, '--quiet', '--no-table-headers'], {
    timeout: 120_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  return stdout.split('\n').filter((line) => line !== '');
}

/** rabbitmqctl cannot delete an exchange; a guest connection to vhost / can. */
async function deleteExchanges(exchanges: readonly string[]): Promise<void> {
  const connection = await amqp.connect('amqp://guest:guest@127.0.0.1:5672/%2F');
  try {
    const channel = await connection.createChannel();
    for (const exchange of exchanges) await channel.deleteExchange(exchange);
  } finally {
    await connection.close();
  }
}

export default async function globalTeardown(): Promise<void> {
  const tag = process.env['QAM_TEST_RUN'];
  if (tag === undefined || tag === '') return;
  const ours = (name: string): boolean => name.includes(tag);
  const vhosts = (await names('list_vhosts', 'name')).filter(ours);
  const users = (await names('list_users')).map((line) => line.split('\t')[0] ?? '').filter(ours);
  const queues = (await names('list_queues', '-p', '/', 'name')).filter(ours);
  const exchanges = (await names('list_exchanges', '-p', '/', 'name')).filter(ours);
  for (const queue of queues) await run('rabbitmqctl', ['delete_queue', '-p', '/', queue]);
  if (exchanges.length > 0) await deleteExchanges(exchanges);
  for (const vhost of vhosts) await run('rabbitmqctl', ['delete_vhost', vhost]);
  for (const user of users) await run('rabbitmqctl', ['delete_user', user]);
  const left = [
    ...vhosts.map((name) => `vhost ${name}`),
    ...users.map((name) => `user ${name}`),
    ...queues.map((name) => `queue ${name}`),
    ...exchanges.map((name) => `exchange ${name}`),
  ];
  if (left.length > 0) throw new Error(`the tests left ${left.length} things on the broker (now removed): ${left.join(', ')}`);
}
