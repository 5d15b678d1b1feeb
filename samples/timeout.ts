import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { QAMAbortException, QAMProxy, QAMServer, QAMTimeoutException } from '../lib/index.js';

/** Timeouts in seconds (as in QAM), and cancelling an awaited call with an AbortSignal. */
export async function timeoutSample(print: (line: string) => void = console.log): Promise<void> {
  const serverId = `timeout_${randomBytes(4).toString('hex')}`;
  const server = new QAMServer({ serverId }).registerFunction(async (seconds: number) => {
    await delay(seconds * 1000);
    return 'done';
  }, 'sleep');
  await server.serve();
  const proxy = new QAMProxy<{ sleep(seconds: number): string }>({ serverId, timeout: 10 });

  try {
    await proxy.setTimeout(0.25).sleep(1);
  } catch (error) {
    if (error instanceof QAMTimeoutException) print('remote function is too slow, timeout occurred');
  }

  const controller = new AbortController();
  const call = proxy.withSignal(controller.signal).sleep(5);
  setTimeout(() => controller.abort(), 50);
  try {
    await call;
  } catch (error) {
    if (error instanceof QAMAbortException) print(`cancelled: ${error.code}`);
  }

  print(`sleep(0.1) = ${await proxy.sleep(0.1)}`);
  await proxy.close();
  await server.close({ deleteQueue: true });
}
