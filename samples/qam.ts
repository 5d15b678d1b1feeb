import { randomBytes } from 'node:crypto';
import { QAMMethodNotFoundException, QAMProxy, QAMRemoteException, QAMServer } from '../lib/index.js';

class Calculator {
  adder_function(a: number, b: number): number {
    return a + b;
  }
}

/**
 * One server answering both kinds of proxy: Python QAM's JSON wire format (`protocol: 'qam'`, what
 * a Python QAM proxy speaks) and qam's own. A QAM-format proxy calls it as a Python QAM server.
 */
export async function qamSample(print: (line: string) => void = console.log): Promise<void> {
  const serverId = `calc_${randomBytes(4).toString('hex')}`;
  const server = new QAMServer({ serverId, protocol: ['native', 'qam'] })
    .registerFunction((a: number, b: number) => a + b, 'add')
    .registerFunction(() => {
      throw Object.assign(new Error('boom'), { args: ['boom', 42] });
    }, 'raises')
    .registerClass(new Calculator(), 'my_instance');
  await server.serve();

  const legacy = new QAMProxy({ serverId, protocol: 'qam', timeout: 10 });
  print(`QAM format: my_instance.adder_function(2, 4) = ${await legacy['my_instance']['adder_function'](2, 4)}`);
  try {
    await legacy['raises']();
  } catch (error) {
    if (error instanceof QAMRemoteException) print(`QAM format: raises -> args ${JSON.stringify(error.args)}`);
  }
  try {
    await legacy['nosuch']();
  } catch (error) {
    if (error instanceof QAMMethodNotFoundException) print(`QAM format: nosuch -> ${error.message}`);
  }

  const modern = new QAMProxy({ serverId });
  print(`native format: add(2, 3) = ${await modern['add'](2, 3)}`);

  await Promise.all([legacy.close(), modern.close()]);
  await server.close({ deleteQueue: true });
}
