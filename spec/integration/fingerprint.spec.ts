/**
 * Fingerprints: every native request and reply says who sent it (Postage's fields, the library's
 * name and version) in the header `x-qam-fingerprint`; a server function reads its caller's in
 * `currentCall()`. A fingerprint is a claim: hostile ones are read defensively.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { QAMConnection, QAMProxy, currentCall, libraryVersion, silentLogger, type Fingerprint } from '../../lib/index.js';
import { Servers, rawChannel, url } from './fixtures.js';

const servers = new Servers();
afterEach(() => servers.closeAll());

async function whoamiServer(): Promise<string> {
  const server = servers
    .create({ fingerprint: { name: 'ledger', type: 'service' } })
    .registerFunction(() => currentCall()?.fingerprint ?? null, 'whoami');
  await server.serve();
  return server.serverId;
}

/** A hand-made request with these headers; resolves with the reply's body and headers. */
async function rawWhoami(serverId: string, headers: Record<string, unknown>): Promise<{ body: unknown; headers: Record<string, unknown> }> {
  const channel = await rawChannel();
  const correlationId = randomUUID();
  const reply = new Promise<{ body: unknown; headers: Record<string, unknown> }>((resolve) => {
    void channel.consume(
      'amq.rabbitmq.reply-to',
      (message) => {
        if (message?.properties.correlationId === correlationId) {
          resolve({ body: JSON.parse(message.content.toString()), headers: (message.properties.headers ?? {}) as Record<string, unknown> });
        }
      },
      { noAck: true },
    );
  });
  channel.sendToQueue(`server_${serverId}_queue`, Buffer.from(JSON.stringify({ method: 'whoami', params: [] })), {
    replyTo: 'amq.rabbitmq.reply-to',
    correlationId,
    contentType: 'application/json',
    headers,
  });
  return reply;
}

describe('fingerprints', () => {
  it("a server function reads its caller's fingerprint: the options' name and type, the process's and connection's values", async () => {
    const serverId = await whoamiServer();
    const proxy = new QAMProxy({ serverId, url, logger: silentLogger, fingerprint: { name: 'billing', type: 'worker' } });
    try {
      const fingerprint = (await proxy.whoami()) as Fingerprint;
      expect(fingerprint).toEqual({
        name: 'billing',
        type: 'worker',
        pid: process.pid,
        host: hostname(),
        user: expect.any(String),
        vhost: '/',
        library: 'qam',
        version: libraryVersion,
      });
      expect(await proxy.noReply().whoami()).toBeUndefined();
    } finally {
      await proxy.close();
    }
  });

  it("replies carry the server's fingerprint, and a request without one reads as undefined", async () => {
    const serverId = await whoamiServer();
    const reply = await rawWhoami(serverId, {});
    expect(reply.body).toEqual({ result: null });
    const header = reply.headers['x-qam-fingerprint'];
    expect(JSON.parse(String(header))).toMatchObject({ name: 'ledger', type: 'service', pid: process.pid, library: 'qam' });
  });

  it('a hostile or malformed fingerprint is a claim read defensively, and never fails the call', async () => {
    const serverId = await whoamiServer();
    expect((await rawWhoami(serverId, { 'x-qam-fingerprint': 'not json' })).body).toEqual({ result: null });
    expect((await rawWhoami(serverId, { 'x-qam-fingerprint': 'x'.repeat(10_000) })).body).toEqual({ result: null });
    expect((await rawWhoami(serverId, { 'x-qam-fingerprint': '[1,2]' })).body).toEqual({ result: null });
    const forged = JSON.stringify({ name: 'n'.repeat(1000), pid: 'one', host: 7, __proto__: { admin: true }, extra: 1 });
    const read = (await rawWhoami(serverId, { 'x-qam-fingerprint': forged })).body as { result: Record<string, unknown> };
    expect(read.result).toEqual({ name: 'n'.repeat(256), type: null, pid: 0, host: '', user: '', vhost: '', library: '', version: '' });
  });

  it('takes the vhost from the URL, the name and type from the options only', () => {
    const connection = new QAMConnection({ url: 'amqp://u:p@somewhere:5672/%2Fbilling', logger: silentLogger });
    expect(connection.fingerprint).toMatchObject({ vhost: '/billing', type: null, pid: process.pid });
    expect(() => new QAMConnection({ fingerprint: { nmae: 'x' } as never })).toThrow(TypeError);
    expect(() => new QAMConnection({ fingerprint: { name: 3 } as never })).toThrow(TypeError);
  });

  it("names the library's version as package.json does", () => {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(libraryVersion).toBe(pkg.version);
  });
});
