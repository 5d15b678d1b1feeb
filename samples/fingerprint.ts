import { randomBytes } from 'node:crypto';
import { QAMConnection, QAMProxy, QAMServer, currentCall } from '../lib/index.js';

/** Fingerprints: who sent a call, as the caller claims it, beside the user the broker verified. */
export async function fingerprintSample(print: (line: string) => void = console.log, url?: string): Promise<void> {
  const serverId = `ledger_${randomBytes(4).toString('hex')}`;
  const where = url === undefined ? {} : { url };
  const server = new QAMServer({ serverId, ...where, fingerprint: { name: 'ledger', type: 'service' } }).registerFunction(() => {
    const call = currentCall();
    const claimed = call?.fingerprint; // what the caller says of itself: never verified
    return `${claimed?.name} (${claimed?.type}, ${claimed?.library}) as user ${call?.userId}`; // userId: checked by RabbitMQ
  }, 'whoami');
  const connection = new QAMConnection({ ...where, fingerprint: { name: 'billing', type: 'worker' } });
  const proxy = new QAMProxy<{ whoami(): string }>({ serverId, connection, timeout: 10 });
  try {
    await server.serve();
    const { name, type, pid } = connection.fingerprint;
    print(`this connection's fingerprint: ${name} (${type}), pid ${pid === process.pid ? 'of this process' : 'other'}`);
    print(`the server sees: ${await proxy.whoami()}`);
  } finally {
    await proxy.close();
    await connection.close();
    await server.close({ deleteQueue: true });
  }
}
