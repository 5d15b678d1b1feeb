import { randomBytes } from 'node:crypto';
import { QAMConnection, QAMProcessor, QAMProducer, type ExchangeDescription } from '../lib/index.js';

/** Postage's typed messages: a processor dispatching commands and answering RPC messages, a producer sending them. */
export async function messagesSample(print: (line: string) => void = console.log, url?: string): Promise<void> {
  const suffix = randomBytes(4).toString('hex');
  const connection = new QAMConnection({ ...(url === undefined ? {} : { url }), fingerprint: { name: 'billing', type: 'worker' } });
  const jobs: ExchangeDescription = { name: `jobs_${suffix}`, type: 'direct', durable: false, autoDelete: true };
  let quit!: () => void;
  const quitting = new Promise<void>((resolve) => (quit = resolve));
  const processor = new QAMProcessor({ connection, bindings: [{ exchange: jobs, queue: `worker_${suffix}`, key: 'work' }] })
    .on('command', 'quit', (_content, { fingerprint }) => {
      print(`quit from ${fingerprint?.name} (${fingerprint?.type})`);
      quit();
    })
    .onRpc('command', 'square', ({ parameters }) => (parameters as { n: number }).n ** 2)
    .onRpc('command', 'divide', async ({ parameters }, reply) => {
      const { a, b } = parameters as { a: number; b: number };
      if (b === 0) await reply.error('division by zero');
      else await reply(a / b);
    })
    .onRpc('command', 'explode', () => {
      throw new RangeError('out of range');
    });
  const producer = new QAMProducer({ connection, eks: [[jobs, 'work']], timeout: 10 });
  try {
    await processor.start();
    const square = await producer.rpc('square', { n: 7 });
    print(`square: ${square.kind} ${String(square.value)}`);
    const divided = await producer.rpc('divide', { a: 1, b: 0 });
    print(`divide: ${divided.kind} "${divided.message}"`);
    const exploded = await producer.rpc('explode');
    print(`explode: ${exploded.kind} ${String(exploded.value)} "${exploded.message}"`);
    await producer.command('quit'); // fire and forget
    await quitting;
    const { received, replies, handlerErrors } = processor.stats();
    print(`processor: received ${received}, replies ${replies}, handler errors ${handlerErrors}`);
  } finally {
    await producer.close();
    await processor.close({ deleteQueues: true });
    await connection.close();
  }
}
