import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { QAMProxy, QAMServer } from '../lib/index.js';

/** A long job polled from the caller: still queued, or running, and on which server instance. */
export async function startedSample(print: (line: string) => void = console.log): Promise<void> {
  const serverId = `started_${randomBytes(4).toString('hex')}`;
  const server = new QAMServer({ serverId }).registerFunction(async (seconds: number) => {
    await delay(seconds * 1000);
    return 'report ready';
  }, 'build_report');
  await server.serve();
  const proxy = new QAMProxy<{ build_report(seconds: number): string }>({ serverId });

  const jobs = proxy
    .withStartNotice((_uid, instanceId) => print(`started by ${instanceId === server.instanceId ? 'our server' : instanceId}`))
    .callback((result: string) => print(result));
  const uid = jobs.build_report(0.3);
  print(`sent: state ${proxy.getRemoteState(uid)}`);
  while (proxy.getRemoteState(uid) === 0) await delay(10);
  print(`running: state ${proxy.getRemoteState(uid)}, the server says ${server.getCallbackState(uid)}`);
  while (proxy.getCallbackState(uid) !== 2) await delay(10);
  print(`done: state ${proxy.getRemoteState(uid)}, the server says ${server.getCallbackState(uid)}`);

  await proxy.close();
  await server.close({ deleteQueue: true });
}
