import * as amqp from 'amqplib';
import { QAMProxy, silentLogger } from '../../lib/index.js';
import { waitUntil } from '../support/broker.js';
import { Servers, recordingLogger, url } from './fixtures.js';

/**
 * What a server logs and answers about a request quotes what the request says, and anyone who may
 * publish to its queue writes that: one line each, short, and not one line per request.
 */
const servers = new Servers();
afterAll(() => servers.closeAll());

const opened: Array<{ close(): Promise<unknown> }> = [];
afterEach(() => Promise.all(opened.splice(0).map((resource) => resource.close().catch(() => undefined))));

/** Sends raw native requests for `methods` and resolves with the error replies, in order. */
async function callRaw(serverId: string, methods: string[]): Promise<Array<{ error: { code: string; message: string } }>> {
  const connection = await amqp.connect(url);
  opened.push(connection);
  const channel = await connection.createChannel();
  const replies: Array<{ error: { code: string; message: string } }> = [];
  await channel.consume('amq.rabbitmq.reply-to', (message) => message !== null && replies.push(JSON.parse(message.content.toString())), {
    noAck: true,
  });
  for (const method of methods) {
    channel.sendToQueue(`server_${serverId}_queue`, Buffer.from(JSON.stringify({ method, params: [] })), {
      replyTo: 'amq.rabbitmq.reply-to',
      correlationId: 'c',
      contentType: 'application/json',
    });
  }
  await waitUntil(() => replies.length === methods.length, { message: 'every reply' });
  return replies;
}

describe('log lines about requests', () => {
  it('escape the line breaks of a method name instead of writing forged lines', async () => {
    const logger = recordingLogger();
    const server = servers.create({ logger });
    await server.serve();
    const forged = 'nosuch\nqam: server ready, admin password reset\r\n\u001b[2K';
    const [reply] = await callRaw(server.serverId, [forged]);
    expect(reply?.error.code).toBe('METHOD_NOT_FOUND');
    const refusal = logger.lines.filter((line) => line.includes('refused a request'));
    expect(refusal).toEqual([expect.stringContaining("'nosuch\\nqam: server ready, admin password reset\\r\\n\\u001b[2K'")]);
    expect(logger.lines.every((line) => !line.includes('\n') && !line.includes('\r') && !line.includes('\u001b'))).toBe(true);
  });

  it('cap a 100,000-character method name, in the log and in the error reply', async () => {
    const logger = recordingLogger();
    const server = servers.create({ logger });
    await server.serve();
    const [reply] = await callRaw(server.serverId, ['m'.repeat(100_000)]);
    expect(reply?.error.code).toBe('METHOD_NOT_FOUND');
    expect(reply?.error.message.length).toBeLessThan(400);
    expect(reply?.error.message).toContain('(100000 characters)');
    expect(Math.max(...logger.lines.map((line) => line.length))).toBeLessThan(800);
  });

  it('are rate-limited: 300 calls to unknown methods log 10 lines, and one more counting the rest', async () => {
    const logger = recordingLogger();
    const server = servers.create({ logger });
    await server.serve();
    const proxy = new QAMProxy({ serverId: server.serverId, url, logger: silentLogger });
    opened.push(proxy);
    const failures = await Promise.all(Array.from({ length: 300 }, (_, i) => proxy[`nosuch${i}`]().catch((error: unknown) => error)));
    expect(failures.every((error) => (error as { code?: unknown }).code === 'METHOD_NOT_FOUND')).toBe(true);
    expect(server.stats().failed).toBe(300);
    // Within one minute's window (generous: the calls take well under a second); close() ends it.
    expect(logger.lines.filter((line) => line.includes('refused a request'))).toHaveLength(10);
    await server.close({ deleteQueue: true });
    expect(logger.lines.filter((line) => line.includes('more refused or dropped requests'))).toEqual([
      `server ${server.serverId}: 290 more refused or dropped requests in the last 60 s were not logged`,
    ]);
  });
});
