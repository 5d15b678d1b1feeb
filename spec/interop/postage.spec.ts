/**
 * qam and Postage-shaped Python components (pika) exchanging Postage's message dictionaries:
 * - qam's raw rpc() and publish() with a component answering RPC commands;
 * - a Postage producer sending commands, a status, a bad body and RPC commands (each with a reply
 *   queue of its own, no correlation id) to a QAMProcessor, and a Postage MessageProcessor
 *   answering a QAMProducer's RPC command through Postage's rpc_reply and quitting on its command.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { QAMConnection, QAMProcessor, QAMProducer, silentLogger, type ExchangeDescription } from '../../lib/index.js';
import { brokerUrl, uniqueName } from '../support/broker.js';

const script = fileURLToPath(new URL('./postage_peer.py', import.meta.url));
const component = fileURLToPath(new URL('./postage_component.py', import.meta.url));

it('qam sends Postage RPC and command messages to a pika component and reads its result message', async () => {
  const queue = uniqueName('postage');
  const connection = new QAMConnection({ url: brokerUrl(), logger: silentLogger, fingerprint: { name: 'qam_side', type: 'test' } });
  const setup = await connection.openChannel({ confirms: false });
  await setup.declareQueue(queue, { durable: false, exclusive: false, autoDelete: false });
  const peer = spawn('/usr/bin/python3', [script, queue], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: peer.stdout! });
  const seen: string[] = [];
  const ready = new Promise<void>((resolve) => lines.on('line', (line) => (seen.push(line), line === 'READY' && resolve())));
  try {
    await ready;
    const message = (type: string, name: string, category: string, parameters: object): string =>
      JSON.stringify({ type, name, category, version: 2, fingerprint: connection.fingerprint, content: { parameters }, _reserved: {} });
    const reply = await connection.rpc('', queue, message('command', 'ping', 'rpc', { n: 1 }), {
      properties: { contentType: 'application/json' },
      timeout: 30,
    });
    expect(JSON.parse(reply.body.toString())).toMatchObject({
      type: 'result',
      name: 'success',
      fingerprint: { name: 'postage_peer', type: 'python' },
      content: { value: { command: 'ping', parameters: { n: 1 }, sender: 'qam_side', header_sender: 'qam_side' }, message: '' },
    });
    await connection.publish('', queue, message('command', 'quit', 'message', {}), { properties: { contentType: 'application/json' } });
    const [code] = (await once(peer, 'exit')) as [number | null];
    expect(code).toBe(0);
    expect(seen).toContain('QUIT');
  } finally {
    if (peer.exitCode === null) peer.kill();
    await setup.deleteQueue(queue);
    await connection.close();
  }
}, 60_000);

it('a Postage producer talks to a QAMProcessor, and a QAMProducer to a Postage MessageProcessor', async () => {
  const exchange: ExchangeDescription = { name: uniqueName('postage_ex'), type: 'direct' }; // Postage's defaults: durable, not auto-delete
  const processorQueue = uniqueName('qam_processor');
  const componentQueue = uniqueName('postage_component');
  const connection = new QAMConnection({ url: brokerUrl(), logger: silentLogger, fingerprint: { name: 'qam_side', type: 'test' } });
  const received: string[] = [];
  const processor = new QAMProcessor({ connection, bindings: [{ exchange, queue: processorQueue, key: 'qam' }] })
    .on(
      'command',
      'note',
      (content, { fingerprint }) => void received.push(`note ${JSON.stringify(content)} from ${fingerprint?.name} pid ${fingerprint?.pid}`),
    )
    .onFullBody('status', 'online', (message) => void received.push(`status ${message.name} version ${String(message.version)}`))
    .onRpc('command', 'square', ({ parameters }) => (parameters as { n: number }).n ** 2)
    .onRpc('command', 'explode', () => {
      throw new RangeError('out of range');
    });
  const producer = new QAMProducer({ connection, eks: [[exchange, 'py']], timeout: 20, maxRetry: 0 });
  let peer: ReturnType<typeof spawn> | undefined;
  try {
    await processor.start();
    peer = spawn('/usr/bin/python3', [component, exchange.name, 'qam', componentQueue, 'py'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const lines = createInterface({ input: peer.stdout! });
    const seen: string[] = [];
    const ready = new Promise<void>((resolve) => lines.on('line', (line) => (seen.push(line), line === 'READY' && resolve())));
    await ready;
    expect(seen.filter((line) => line.startsWith('RESULT'))).toEqual([
      'RESULT square {"message": "", "type": "success", "value": 49}',
      'RESULT explode {"message": "out of range", "type": "exception", "value": "RangeError"}',
      `RESULT nosuch {"message": "No RPC handler for command 'nosuch'", "type": "error", "value": null}`,
    ]);
    expect(received).toEqual([
      `note {"parameters":{"text":"hello from Postage"}} from postage_component pid ${peer.pid}`,
      'status online version 2',
    ]);
    expect(processor.stats()).toMatchObject({ received: 6, handled: 4, notJson: 1, unhandled: 1, handlerErrors: 1, replies: 3 });

    const result = await producer.rpc('echo', { x: 1 });
    expect(result).toMatchObject({
      kind: 'value',
      message: 'echoed',
      value: { command: 'echo', parameters: { x: 1 }, version: '2', sender: 'qam_side', header_sender: 'qam_side' },
      fingerprint: { name: 'postage_component', type: 'python', pid: peer.pid },
    });
    await producer.command('quit');
    const [code] = (await once(peer, 'exit')) as [number | null];
    expect(code).toBe(0);
    expect(seen).toContain('QUIT');
  } finally {
    if (peer !== undefined && peer.exitCode === null) peer.kill();
    await producer.close();
    await processor.close({ deleteQueues: true });
    const cleanup = await connection.openChannel({ confirms: false });
    await cleanup.deleteQueue(componentQueue);
    await cleanup.deleteExchange(exchange.name);
    await connection.close();
  }
}, 90_000);
