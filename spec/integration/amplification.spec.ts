import { randomUUID } from 'node:crypto';
import * as amqp from 'amqplib';
import { QAMBadMessageException, QAMProxy, silentLogger, type QAMServerOptions } from '../../lib/index.js';
import { uniqueName } from '../support/broker.js';
import { Servers, url } from './fixtures.js';

/**
 * A 2 KB superjson request whose references share each level of an array twice, 25 levels deep:
 * unfolded (by JSON.stringify, by superjson's encoder, by a function walking its argument) it
 * has 2^25 leaves. Published with raw amqplib, as an attacker would.
 */

const servers = new Servers();
afterAll(() => servers.closeAll());

/** The request `{ method, params: [dag] }`, or with `method` undefined the reply `{ result: dag }`. */
function dagBody(levels: number, method?: string): Buffer {
  let node: unknown = [0, 0];
  for (let level = 1; level < levels; level++) node = [node, 0];
  const references: Record<string, string[]> = {};
  let path = method === undefined ? 'result' : 'params.0';
  for (let level = 1; level < levels; level++) {
    references[`${path}.0`] = [`${path}.1`];
    path += '.0';
  }
  const json = method === undefined ? { result: node } : { method, params: [node] };
  return Buffer.from(JSON.stringify({ json, meta: { referentialEqualities: references, v: 1 } }));
}

/** Publishes `body` to the server's exchange as superjson and resolves with the reply's envelope. */
async function callRaw(serverId: string, body: Buffer): Promise<Record<string, unknown>> {
  const connection = await amqp.connect(url);
  try {
    const channel = await connection.createChannel();
    const correlationId = randomUUID();
    const reply = new Promise<Record<string, unknown>>((resolve) => {
      void channel.consume(
        'amq.rabbitmq.reply-to',
        (message) => {
          if (message?.properties.correlationId !== correlationId) return;
          const parsed = JSON.parse(message.content.toString()) as Record<string, unknown>;
          resolve((message.properties.contentType === 'application/x-superjson' ? parsed['json'] : parsed) as Record<string, unknown>);
        },
        { noAck: true },
      );
    });
    channel.publish(`server_${serverId}_ex`, serverId, body, {
      contentType: 'application/x-superjson',
      correlationId,
      replyTo: 'amq.rabbitmq.reply-to',
    });
    return await reply;
  } finally {
    await connection.close();
  }
}

async function amplifiedServer(options: Partial<QAMServerOptions> = {}) {
  const runs = { echo: 0, stringify: 0 };
  const server = servers.create(options);
  server
    .registerFunction((value: unknown) => {
      runs.echo++;
      return value;
    }, 'echo')
    .registerFunction((value: unknown) => {
      runs.stringify++;
      return JSON.stringify(value).length;
    }, 'stringify')
    .registerFunction((a: number, b: number) => a + b, 'add');
  await server.serve();
  return { server, runs };
}

describe('a 2 KB superjson request whose references unfold into 2^25 values', () => {
  it('is refused with BAD_MESSAGE before any function runs, and the server answers the next call', async () => {
    const { server, runs } = await amplifiedServer();
    for (const method of ['echo', 'stringify']) {
      const body = dagBody(25, method);
      expect(body.length).toBeLessThan(2500);
      const reply = await callRaw(server.serverId, body);
      expect(reply['error']).toMatchObject({ name: 'QAMBadMessageException', code: 'BAD_MESSAGE', origin: 'server' });
    }
    expect(runs).toEqual({ echo: 0, stringify: 0 });
    const proxy = new QAMProxy({ serverId: server.serverId, url, logger: silentLogger, serializer: 'superjson', timeout: 10 });
    try {
      await expect(proxy['add'](2, 3)).resolves.toBe(5);
    } finally {
      await proxy.close();
    }
  });

  it('is refused at once by a server that accepts JSON only', async () => {
    const { server, runs } = await amplifiedServer({ acceptSerializers: ['json'] });
    const reply = await callRaw(server.serverId, dagBody(25, 'echo'));
    expect(reply['error']).toMatchObject({ code: 'BAD_MESSAGE', message: expect.stringContaining('does not accept superjson') });
    expect(runs.echo).toBe(0);
  });
});

describe('acceptSerializers', () => {
  it('must name at least one serializer qam knows', () => {
    expect(() => servers.create({ acceptSerializers: [] })).toThrow(TypeError);
    expect(() => servers.create({ acceptSerializers: ['pickle' as 'json'] })).toThrow(/pickle/);
  });
});

describe('superjson proxies calling a default server', () => {
  it('keep working, shared values and all', async () => {
    const { server } = await amplifiedServer();
    const proxy = new QAMProxy({ serverId: server.serverId, url, logger: silentLogger, serializer: 'superjson', timeout: 10 });
    try {
      const shared = { when: new Date(0), tags: new Set(['a']) };
      const back = (await proxy['echo']({ first: shared, second: shared, map: new Map([[1, shared]]) })) as {
        first: unknown;
        second: unknown;
        map: Map<number, unknown>;
      };
      expect(back).toEqual({ first: shared, second: shared, map: new Map([[1, shared]]) });
      expect(back.second).toBe(back.first);
      expect(back.map.get(1)).toBe(back.first);
    } finally {
      await proxy.close();
    }
  });
});

describe('a superjson reply whose references unfold into 2^25 values', () => {
  it('fails its call with BAD_MESSAGE at the proxy, which goes on working', async () => {
    // A server of our own making: it answers every request with the amplifying body.
    const serverId = uniqueName('spec');
    const connection = await amqp.connect(url);
    const proxy = new QAMProxy({ serverId, url, logger: silentLogger, serializer: 'superjson', timeout: 10 });
    try {
      const channel = await connection.createChannel();
      await channel.assertExchange(`server_${serverId}_ex`, 'direct', { durable: true, autoDelete: false });
      await channel.assertQueue(`server_${serverId}_queue`, { durable: true, exclusive: false, autoDelete: false });
      await channel.bindQueue(`server_${serverId}_queue`, `server_${serverId}_ex`, serverId);
      let answered = 0;
      await channel.consume(`server_${serverId}_queue`, (message) => {
        if (message === null) return;
        const body = answered++ === 0 ? dagBody(25) : Buffer.from(JSON.stringify({ json: { result: 'fine' } }));
        channel.publish('', message.properties.replyTo as string, body, {
          contentType: 'application/x-superjson',
          correlationId: message.properties.correlationId as string,
        });
        channel.ack(message);
      });
      await expect(proxy['anything']()).rejects.toBeInstanceOf(QAMBadMessageException);
      await expect(proxy['anything']()).resolves.toBe('fine');
      await channel.deleteQueue(`server_${serverId}_queue`);
      await channel.deleteExchange(`server_${serverId}_ex`);
    } finally {
      await proxy.close();
      await connection.close();
    }
  });
});
