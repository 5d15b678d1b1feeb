/**
 * A long-running server, as a service runs it:
 *
 *   npm run build && node dist/samples/server.js calc      # or QAM_SERVER_ID=calc
 *
 * The broker comes from QAM_URL (default amqp://guest:guest@localhost:5672/), the number of calls
 * run at once from QAM_WORKERS (default 16). It prints `READY <id>` once it consumes. On SIGTERM or
 * SIGINT it stops taking requests, lets the calls running finish and reply, and exits 0; requests
 * it did not take stay queued for the other servers with the same id, or for its next start.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { QAMServer, currentCall, type ServerApi } from '../lib/index.js';

/** Which process served a call, and whether the broker redelivered the request to it. */
export interface Served {
  pid: number;
  redelivered: boolean;
}

function served(): Served {
  return { pid: process.pid, redelivered: currentCall()?.redelivered ?? false };
}

/** The server: a few functions, one of them slow, and a CPU-bound one on worker threads. */
export function buildServer(serverId: string, workers?: number) {
  const server = new QAMServer(workers === undefined ? { serverId } : { serverId, workers })
    .registerFunction((x: number, y: number) => x + y, 'add')
    .registerFunction(served, 'whoami')
    .registerFunction(async (seconds: number): Promise<Served> => {
      await delay(seconds * 1000);
      return served();
    }, 'sleep')
    .registerWorkerFunction<typeof import('./cpu.js'), 'fib'>(new URL('./cpu.js', import.meta.url), 'fib');
  return server.registerFunction(() => server.stats(), 'stats');
}

/** What proxies of this server may call: `new QAMProxy<Api>({ serverId })`. */
export type Api = ServerApi<ReturnType<typeof buildServer>>;

async function main(): Promise<void> {
  const serverId = process.argv[2] ?? process.env['QAM_SERVER_ID'];
  if (serverId === undefined) {
    console.error('usage: node dist/samples/server.js <serverId>   (or set QAM_SERVER_ID)');
    process.exitCode = 2;
    return;
  }
  const workers = process.env['QAM_WORKERS'];
  const server = buildServer(serverId, workers === undefined ? undefined : Number(workers));
  // Once: a second signal while draining gets the default action and ends the process at once.
  const stop = (signal: NodeJS.Signals): void => {
    process.off('SIGTERM', stop).off('SIGINT', stop);
    console.log(`${signal}: closing`);
    server.close().then(
      () => console.log('CLOSED'),
      (error: unknown) => {
        console.error(error);
        process.exitCode = 1;
      },
    );
  };
  process.on('SIGTERM', stop).on('SIGINT', stop);
  await server.serve();
  console.log(`READY ${serverId}`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
