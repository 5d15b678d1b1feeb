/**
 * qam and a Postage-shaped Python component (pika) exchanging Postage's message dictionaries:
 * an RPC command from qam's raw rpc() answered with a Postage result message, and a
 * fire-and-forget command from qam's raw publish().
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { QAMConnection, silentLogger } from '../../lib/index.js';
import { brokerUrl, uniqueName } from '../support/broker.js';

const script = fileURLToPath(new URL('./postage_peer.py', import.meta.url));

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
