/**
 * A connection that cannot be made is CONNECT_FAILED with a reason, for `serve()` and for calls
 * alike; CONNECTION_LOST is kept for a connection that existed.
 */
import * as net from 'node:net';
import { once } from 'node:events';
import {
  QAMConnection,
  QAMProxy,
  QAMServer,
  silentLogger,
  type ConnectionOptions,
  type QAMConnectFailedException,
  type QAMProxyOptions,
} from '../../lib/index.js';
import { brokerUrl, rabbitmqctl, uniqueName } from '../support/broker.js';
import { TcpProxy } from '../support/tcp-proxy.js';

/** A loopback TCP server that accepts connections and lets `onSocket` handle them; `close()` stops it. */
async function loopbackServer(onSocket: (socket: net.Socket) => void): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
    onSocket(socket);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  return {
    port,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      server.close();
      await once(server, 'close');
    },
  };
}

/** A loopback port nothing listens on: one the system just handed out and took back. */
async function closedPort(): Promise<number> {
  const server = await loopbackServer(() => undefined);
  await server.close();
  return server.port;
}

const replyKinds: Array<[string, Partial<QAMProxyOptions>]> = [
  ['direct reply-to', {}],
  ["callme's reply names", { replies: 'callme' }],
  ["QAM's protocol", { protocol: 'qam' }],
];

/** What `serve()` and a call of each kind of proxy fail with, given these connection options. */
async function failures(options: ConnectionOptions): Promise<unknown[]> {
  const server = new QAMServer({ serverId: uniqueName('spec'), logger: silentLogger, ...options });
  const errors = [await server.serve().catch((error: unknown) => error)];
  for (const [, kind] of replyKinds) {
    const proxy = new QAMProxy({ serverId: uniqueName('spec'), timeout: 20, logger: silentLogger, ...options, ...kind });
    errors.push(await proxy['ping']().catch((error: unknown) => error));
    await proxy.close();
  }
  return errors;
}

describe('a connection that cannot be made', () => {
  it('is CONNECT_FAILED, reason refused, when nothing listens on the port', async () => {
    const port = await closedPort();
    const errors = await failures({ hostname: '127.0.0.1', port });
    expect(errors).toHaveLength(1 + replyKinds.length);
    for (const error of errors)
      expect(error).toMatchObject({ name: 'QAMConnectFailedException', code: 'CONNECT_FAILED', reason: 'refused' });
  });

  it('is CONNECT_FAILED, reason unknown-host, for a host name that does not resolve', async () => {
    // .invalid never resolves (RFC 6761), with or without a network.
    const errors = await failures({ url: `amqp://guest:guest@${uniqueName('qam')}.invalid:5672/` });
    for (const error of errors) expect(error).toMatchObject({ code: 'CONNECT_FAILED', reason: 'unknown-host' });
  });

  it('is CONNECT_FAILED, reason timeout, when the port accepts and never answers', async () => {
    const silent = await loopbackServer(() => undefined);
    try {
      const errors = await failures({ hostname: '127.0.0.1', port: silent.port, connectTimeout: 0.3 });
      for (const error of errors) expect(error).toMatchObject({ code: 'CONNECT_FAILED', reason: 'timeout' });
    } finally {
      await silent.close();
    }
  });

  it('is CONNECT_FAILED, reason handshake, when the port is not an AMQP broker', async () => {
    const web = await loopbackServer((socket) => socket.end('HTTP/1.1 400 Bad Request\r\n\r\n'));
    try {
      const errors = await failures({ hostname: '127.0.0.1', port: web.port });
      for (const error of errors) expect(error).toMatchObject({ code: 'CONNECT_FAILED', reason: 'handshake' });
    } finally {
      await web.close();
    }
  });

  it("is CONNECT_FAILED, reason unknown-vhost, with the broker's own words, for a vhost that does not exist", async () => {
    const vhost = uniqueName('qam_absent');
    const errors = await failures({ url: brokerUrl(vhost) });
    for (const error of errors) {
      expect(error).toMatchObject({ code: 'CONNECT_FAILED', reason: 'unknown-vhost' });
      // RabbitMQ answers connection.open with `530 NOT_ALLOWED - vhost <name> not found`.
      expect((error as QAMConnectFailedException).message).toContain('NOT_ALLOWED');
    }
    const discrete = await failures({ hostname: '127.0.0.1', vhost });
    for (const error of discrete) expect(error).toMatchObject({ code: 'CONNECT_FAILED', reason: 'unknown-vhost' });
  });

  it('is ACCESS_REFUSED for a vhost the user has no permission on', async () => {
    const vhost = uniqueName('qam_closed');
    await rabbitmqctl('add_vhost', vhost);
    try {
      const errors = await failures({ url: brokerUrl(vhost) });
      for (const error of errors) expect(error).toMatchObject({ name: 'QAMAccessRefusedException', code: 'ACCESS_REFUSED' });
    } finally {
      await rabbitmqctl('delete_vhost', vhost);
    }
  });

  it('lets a later call connect once the broker can be reached', async () => {
    const tcp = await TcpProxy.start();
    try {
      const serverId = uniqueName('spec');
      const server = new QAMServer({ serverId, url: brokerUrl(), logger: silentLogger });
      await server.registerFunction(() => 'pong', 'ping').serve();
      const proxy = new QAMProxy({ serverId, url: tcp.url(), timeout: 20, logger: silentLogger });
      tcp.refuse(true);
      await expect(proxy['ping']()).rejects.toMatchObject({ code: 'CONNECT_FAILED', reason: 'handshake' });
      tcp.refuse(false);
      await expect(proxy['ping']()).resolves.toBe('pong');
      await proxy.close();
      await server.close({ deleteQueue: true });
    } finally {
      await tcp.close();
    }
  });
});

describe('a connection that existed', () => {
  it('is lost with CONNECTION_LOST, and each failed reconnect attempt is CONNECT_FAILED', async () => {
    const tcp = await TcpProxy.start();
    const connection = new QAMConnection({ url: tcp.url(), reconnectDelay: { min: 0.05, max: 0.2 }, logger: silentLogger });
    try {
      await (await connection.openChannel({ confirms: false })).close();
      const lost = once(connection, 'disconnect');
      const failed = once(connection, 'reconnect-failed');
      tcp.refuse(true);
      tcp.cutAll();
      const [disconnect] = (await lost) as [Error];
      expect(disconnect).toMatchObject({ code: 'CONNECTION_LOST' });
      const [attempt] = (await failed) as [Error];
      expect(attempt).toMatchObject({ code: 'CONNECT_FAILED', reason: 'handshake' });
      const back = once(connection, 'connect');
      tcp.refuse(false);
      await back;
    } finally {
      await connection.close();
      await tcp.close();
    }
  });
});
