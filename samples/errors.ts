import { randomBytes } from 'node:crypto';
import { QAMMethodNotFoundException, QAMProxy, QAMRemoteException, QAMServer } from '../lib/index.js';

/** A custom error class, shared by server and proxy, arrives as itself; inheritance is kept. */
export class InsufficientFunds extends Error {
  override name = 'InsufficientFunds';
}
export class AccountOverdrawn extends InsufficientFunds {
  override name = 'AccountOverdrawn';
}

export async function errorsSample(print: (line: string) => void = console.log): Promise<void> {
  const serverId = `errors_${randomBytes(4).toString('hex')}`;
  const server = new QAMServer({ serverId })
    .registerFunction((amount: number) => {
      throw new AccountOverdrawn(`cannot withdraw ${amount}`);
    }, 'withdraw')
    .registerFunction(() => {
      throw Object.assign(new Error('disk full'), { code: 'ENOSPC' });
    }, 'save');
  await server.serve();
  const proxy = new QAMProxy({ serverId, errors: [InsufficientFunds, AccountOverdrawn] });

  try {
    await proxy['withdraw'](100);
  } catch (error) {
    if (error instanceof InsufficientFunds) print(`${error.name}: ${error.message}`);
  }
  try {
    await proxy['save']();
  } catch (error) {
    if (error instanceof QAMRemoteException) print(`remote ${error.remoteName} (${error.remoteCode}): ${error.message}`);
  }
  try {
    await proxy['nosuch']();
  } catch (error) {
    if (error instanceof QAMMethodNotFoundException) print(`not found: ${error.code}`);
  }

  await proxy.close();
  await server.close({ deleteQueue: true });
}
