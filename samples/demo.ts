import { randomBytes } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { QAMProxy, QAMServer, QAMTimeoutException, type ServerApi } from '../lib/index.js';

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
function buildServer(serverId: string) {
  return new QAMServer({ serverId, workers: 4 }).registerFunction(add, 'add').registerClass(new Calculator(), 'my_instance');
}

type Api = ServerApi<ReturnType<typeof buildServer>>;

/** Starts a server, calls it through a proxy in each mode, and prints what comes back. */
export async function demo(print: (line: string) => void = console.log): Promise<void> {
  const serverId = `demo_${randomBytes(4).toString('hex')}`;
  const server = buildServer(serverId);
  await server.serve();
  const proxy = new QAMProxy<Api>({ serverId, timeout: 10 });
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

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  demo().catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
