import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { QAMProxy, QAMServer, QAMTimeoutException } from '../lib/index.js';

/** QAM's asynchronous mode: callback(ok, err), polling the state of a uid, and a timeout in that mode. */
export async function callbackSample(print: (line: string) => void = console.log): Promise<void> {
  const serverId = `callback_${randomBytes(4).toString('hex')}`;
  const server = new QAMServer({ serverId })
    .registerFunction((x: number, y: number) => x + y, 'add')
    .registerFunction(async (seconds: number) => {
      await delay(seconds * 1000);
      return 'finally';
    }, 'sleep');
  await server.serve();
  const proxy = new QAMProxy<{ add(x: number, y: number): number; sleep(seconds: number): string }>({ serverId });

  const success = (result: number | string): void => print(`success: ${result}`);
  const error = (reason: Error): void => {
    if (reason instanceof QAMTimeoutException) print('error: timeout occurred');
    else print(`error: ${reason.message}`);
  };

  const uid = proxy.callback(success, error).add(2, 4);
  while (proxy.getCallbackState(uid) !== 2) await delay(10);

  const slow = proxy.callback(success, error).setTimeout(0.2).sleep(1);
  while (proxy.getCallbackState(slow) !== 2) await delay(10);
  print(`callbacks still waiting: ${proxy.getNumWaitingCallbacks()}`);

  await proxy.close();
  await server.close({ deleteQueue: true });
}
