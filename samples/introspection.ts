import { randomBytes } from 'node:crypto';
import { setTimeout as wait } from 'node:timers/promises';
import { QAMAbortException, QAMProxy, QAMServer, currentCall } from '../lib/index.js';

class Calculator {
  adder_function(a: number, b: number): number {
    return a + b;
  }
}

/** Asks a server which methods it serves, then cancels a running call: the server function sees it. */
export async function introspectionSample(print: (line: string) => void = console.log): Promise<void> {
  const serverId = `described_${randomBytes(4).toString('hex')}`;
  const server = new QAMServer({ serverId })
    .registerFunction((a: number, b: number) => a + b, 'add', { description: 'adds two numbers' })
    .registerClass(new Calculator(), 'calc', { descriptions: { adder_function: 'adds, the QAM way' } })
    .registerFunction(async (seconds: number) => {
      const signal = currentCall()!.signal;
      try {
        await wait(seconds * 1000, undefined, { signal });
        return 'report ready';
      } catch {
        print(signal.reason instanceof QAMAbortException ? 'server: cancelled by the caller' : 'server: deadline passed');
        return 'no report';
      }
    }, 'build_report');
  await server.serve();
  const proxy = new QAMProxy({ serverId });

  const { methods } = await proxy.getRemoteMethods();
  for (const { name, params, description } of methods)
    print(`${name}/${params ?? '?'}${description === undefined ? '' : `: ${description}`}`);

  const controller = new AbortController();
  const report = proxy
    .withStartNotice(() => controller.abort()) // cancel once a server instance runs it
    .withSignal(controller.signal)
    .invoke('build_report', 60);
  await report.catch((error: QAMAbortException) => print(`caller: ${error.code}`));

  await proxy.close();
  await server.close({ deleteQueue: true }); // lets build_report finish: it ends once the cancel arrives
}
