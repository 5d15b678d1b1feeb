import { randomBytes } from 'node:crypto';
import { QAMConnection, QAMProcessor } from '../lib/index.js';

/**
 * Raw RPC and publishing (Shrapnel's `rpc.call` and confirmed publish): a service that is not a
 * qam server, called with a body and properties of the caller's choosing.
 */
export async function rawRpcSample(print: (line: string) => void = console.log, url?: string): Promise<void> {
  const queue = `pumpkin_${randomBytes(4).toString('hex')}`;
  const connection = new QAMConnection(url === undefined ? {} : { url });
  // The service: a Postage-style component answering on its queue (any RPC service would do).
  let noted!: (messageId: unknown) => void;
  const notice = new Promise<unknown>((resolve) => (noted = resolve));
  const service = new QAMProcessor({ connection, bindings: [{ queue }] })
    .onRpc('command', 'GetPumpkinData', () => ({ weight: 12 }))
    .on('command', 'noted', (_content, { properties }) => noted(properties.messageId));
  try {
    await service.start();
    const request = { type: 'command', name: 'GetPumpkinData', category: 'rpc', version: '2', fingerprint: {}, content: {}, _reserved: {} };
    const reply = await connection.rpc('', queue, JSON.stringify(request), {
      properties: { contentType: 'application/json', deliveryMode: 2, messageId: 'pumpkin-1' },
      timeout: 10,
    });
    const result = JSON.parse(reply.body.toString()) as { content: { type: string; value: unknown } };
    print(`reply: ${reply.properties.contentType} ${result.content.type} ${JSON.stringify(result.content.value)}`);
    print(`reply fields: exchange "${reply.fields.exchange}", redelivered ${reply.fields.redelivered}`);

    // A raw publish resolves once the broker confirmed it.
    const message = { type: 'command', name: 'noted', category: 'message', version: '2', fingerprint: {}, content: {}, _reserved: {} };
    await connection.publish('', queue, JSON.stringify(message), { properties: { contentType: 'application/json', messageId: 'msg_1' } });
    print('notice confirmed by the broker');
    print(`the service noted message ${String(await notice)}`);
  } finally {
    await service.close({ deleteQueues: true });
    await connection.close();
  }
}
