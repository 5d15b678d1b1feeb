import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { pathToFileURL } from 'node:url';
import { QAMException, QAMProxy, QAMServer, QAMTimeoutException, type ServerApi } from '../lib/index.js';

class Calculator {
  adder_function(a: number, b: number): number {
    return a + b;
  }

  async slow_square(x: number): Promise<number> {
    await new Promise((resolve) => setTimeout(resolve, 300));
    return x * x;
  }
}

function add(x: number, y: number): number {
  return x + y;
}

/** Builds the demo server; its type tells the proxy what it may call. */
function buildServer(serverId: string, url?: string) {
  return new QAMServer({ serverId, workers: 4, ...(url === undefined ? {} : { url }) })
    .registerFunction(add, 'add')
    .registerClass(new Calculator(), 'my_instance');
}

type Api = ServerApi<ReturnType<typeof buildServer>>;

/**
 * Starts a server, calls it through a proxy in each mode, and prints what comes back. `url` names
 * the broker (default: `QAM_URL`, else amqp://localhost).
 */
export async function demo(print: (line: string) => void = console.log, url?: string): Promise<void> {
  const serverId = `demo_${randomBytes(4).toString('hex')}`;
  const server = buildServer(serverId, url);
  await server.serve();
  const proxy = new QAMProxy<Api>({ serverId, timeout: 10, ...(url === undefined ? {} : { url }) });
  try {
    print(`add(2, 3) = ${await proxy.add(2, 3)}`);
    print(`my_instance.adder_function(2, 4) = ${await proxy.my_instance.adder_function(2, 4)}`);

    const done = new Promise<number>((resolve, reject) => {
      const uid = proxy.callback(resolve, reject).my_instance.slow_square(7);
      print(`callback call started, uid ${uid}, state ${proxy.getCallbackState(uid)}`);
    });
    print(`callback result: my_instance.slow_square(7) = ${await done}`);

    try {
      await proxy.setTimeout(0.1).my_instance.slow_square(3);
    } catch (error) {
      if (!(error instanceof QAMTimeoutException)) throw error;
      print(`setTimeout(0.1).my_instance.slow_square(3) -> ${error.name} (${error.code})`);
    }
  } finally {
    await proxy.close();
    await server.close({ deleteQueue: true });
  }
}

/** True when something accepts TCP connections on `port` of this host within a second. */
function answers(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: 1000 });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.once('connect', () => done(true));
    socket.once('timeout', () => done(false));
    socket.once('error', () => done(false));
  });
}

/**
 * The demo's broker: `QAM_URL` when it is set (and then that one or a clear error, never another);
 * else RabbitMQ on localhost when it answers; else the embedded in-process broker.
 */
export async function demoBroker(print: (line: string) => void): Promise<string | undefined> {
  if (process.env['QAM_URL'] !== undefined) {
    print('broker: QAM_URL');
    return undefined;
  }
  if (await answers('127.0.0.1', 5672)) {
    print('broker: RabbitMQ on localhost:5672');
    return 'amqp://guest:guest@127.0.0.1:5672/';
  }
  print('broker: nothing answers on localhost:5672, so the embedded broker (memory://demo)');
  return 'memory://demo';
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  demoBroker(console.log)
    .then((url) => demo(console.log, url))
    .catch((error: unknown) => {
      // qam's own errors say what went wrong in their message; anything else gets its stack.
      console.error(error instanceof QAMException ? `demo failed: ${error.name}: ${error.message}` : error);
      process.exitCode = 1;
    });
}
