import { randomBytes } from 'node:crypto';
import { QAMProxy, QAMServer } from '../lib/index.js';

/** Fire-and-forget calls: `noReply()` resolves once the broker took the request; the server replies nothing. */
export async function noReplySample(print: (line: string) => void = console.log, url?: string): Promise<void> {
  const serverId = `audit_${randomBytes(4).toString('hex')}`;
  const where = url === undefined ? {} : { url };
  const entries: string[] = [];
  let recorded!: () => void;
  const done = new Promise<void>((resolve) => (recorded = resolve));
  const server = new QAMServer({ serverId, ...where }).registerFunction((entry: string) => {
    entries.push(entry);
    recorded();
  }, 'record');
  await server.serve();
  const proxy = new QAMProxy<{ record(entry: string): void }>({ serverId, ...where });

  await proxy.noReply().record('user 42 logged in'); // resolves once the broker confirmed the request
  print('request confirmed by the broker');
  await done;
  print(`server recorded: ${entries.join(', ')}`);
  print(`server stats: oneWay ${server.stats().oneWay}, served ${server.stats().served}`);

  await proxy.close();
  await server.close({ deleteQueue: true });
}
