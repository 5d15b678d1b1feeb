import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { X509Certificate } from 'node:crypto';
import * as amqp from 'amqplib';
import type { ChannelModel, SocketOptions } from 'amqplib';
import {
  brokerUrl,
  closeConnections,
  closeConnectionsOfClient,
  connectionsOfClient,
  createUser,
  createVhost,
  deleteExchanges,
  deleteQueues,
  exchangeExists,
  listConnections,
  listExchanges,
  listQueues,
  parseClientProperties,
  queueExists,
  queueMessageCount,
  rabbitmqctl,
  RUN_TAG,
  uniqueName,
  waitUntil,
} from './broker.js';
import { TcpProxy } from './tcp-proxy.js';
import { createTlsFixture } from './tls.js';
import type { TlsFixture } from './tls.js';

/** Resolves with the connection's close event argument (the error, for an abnormal close). */
function closed(conn: ChannelModel): Promise<Error | undefined> {
  return new Promise((resolve) => conn.once('close', (err?: Error) => resolve(err)));
}

async function settleWithin<T>(p: Promise<T>, ms: number): Promise<{ settled: boolean }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<{ settled: boolean }>((resolve) => {
    timer = setTimeout(() => resolve({ settled: false }), ms);
  });
  const done = p.then(
    () => ({ settled: true }),
    () => ({ settled: true }),
  );
  try {
    return await Promise.race([done, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Open connections to close in case a test fails half way. */
const opened = new Set<ChannelModel>();
async function open(url: string, opts: SocketOptions = {}): Promise<ChannelModel> {
  const conn = await amqp.connect(url, opts);
  conn.on('error', () => {});
  opened.add(conn);
  conn.once('close', () => opened.delete(conn));
  return conn;
}
afterAll(async () => {
  await Promise.all([...opened].map((c) => c.close().catch(() => {})));
});

describe('broker helpers', () => {
  it("uniqueName gives distinct AMQP-safe names carrying the run's tag", () => {
    const a = uniqueName('qam_t');
    const b = uniqueName('qam_t');
    expect(RUN_TAG).toMatch(/^r[0-9a-f]{6}r$/);
    expect(a).toMatch(new RegExp(`^qam_t_${RUN_TAG}[0-9a-f]{10}$`));
    expect(a).not.toBe(b);
  });

  it('rabbitmqctl resolves stdout and rejects with stderr', async () => {
    const [vhosts, failure] = await Promise.all([
      rabbitmqctl('list_vhosts', 'name', '--silent'),
      rabbitmqctl('no_such_command_xyz').then(
        () => undefined,
        (e: unknown) => e,
      ),
    ]);
    expect(vhosts).toMatch(/^\/$/m);
    expect(failure).toMatchObject({ message: expect.stringMatching(/no_such_command_xyz/) });
  });

  it('lists, counts and deletes queues and exchanges, ignoring missing ones', async () => {
    const q = uniqueName('qam_spec_q');
    const x = uniqueName('qam_spec_x');
    const conn = await open(brokerUrl());
    try {
      const ch = await conn.createConfirmChannel();
      await ch.assertQueue(q, { durable: false });
      await ch.assertExchange(x, 'direct', { durable: false, autoDelete: false });
      for (let i = 0; i < 3; i++) ch.sendToQueue(q, Buffer.from(`m${i}`));
      await ch.waitForConfirms();
      await ch.close();

      const [queues, exists, count, exchanges, missing] = await Promise.all([
        listQueues(),
        queueExists(q),
        queueMessageCount(q),
        listExchanges(),
        queueMessageCount(uniqueName('qam_spec_missing')).catch((e: unknown) => e),
      ]);
      expect(queues).toContain(q);
      expect(exists).toBe(true);
      expect(count).toBe(3);
      expect(exchanges).toEqual(expect.arrayContaining([x, '', 'amq.direct']));
      expect(missing).toMatchObject({ message: expect.stringMatching(/does not exist/) });

      await Promise.all([deleteQueues([uniqueName('qam_spec_missing'), q]), deleteExchanges([x, uniqueName('qam_spec_missing')])]);
      expect(await Promise.all([queueExists(q), exchangeExists(x)])).toEqual([false, false]);
    } finally {
      await conn.close().catch(() => {});
      await deleteQueues([q]);
      await deleteExchanges([x]);
    }
  });

  it('deleteQueues removes a queue exclusive to another connection', async () => {
    const conn = await open(brokerUrl());
    const ch = await conn.createChannel();
    const { queue } = await ch.assertQueue('', { exclusive: true });
    try {
      await deleteQueues([queue]);
      expect(await queueExists(queue)).toBe(false);
    } finally {
      await conn.close().catch(() => {});
    }
  });

  it('createVhost and createUser grant exactly the given permissions', async () => {
    const { vhost, remove: removeVhost } = await createVhost();
    const userName = uniqueName('qam_user');
    try {
      const user = await createUser(userName, 'p@ss/word:1', vhost, {
        configure: '^allowed_.*',
        write: '.*',
        read: '.*',
      });
      try {
        // guest can work in the new vhost (needed for cleanup)
        const guestConn = await open(brokerUrl(vhost));
        const gch = await guestConn.createChannel();
        await gch.assertQueue('guest_q', { durable: false });
        await guestConn.close();

        const conn = await open(brokerUrl(vhost, userName, 'p@ss/word:1'));
        const ok = await conn.createChannel();
        await ok.assertQueue('allowed_q', { durable: false });
        const denied = await conn.createChannel();
        denied.on('error', () => {});
        await expect(denied.assertQueue('forbidden_q', { durable: false })).rejects.toMatchObject({ code: 403 });
        expect(await listQueues(vhost)).toEqual(expect.arrayContaining(['allowed_q', 'guest_q']));

        // deleting the user makes the broker drop its connections
        const gone = closed(conn);
        await user.remove();
        await gone;
        await user.remove(); // idempotent
        const [users, refused] = await Promise.all([
          rabbitmqctl('list_users', '--silent'),
          amqp.connect(brokerUrl(vhost, userName, 'p@ss/word:1')).catch((e: unknown) => e),
        ]);
        expect(users).not.toContain(userName);
        expect(refused).toMatchObject({ message: expect.stringMatching(/ACCESS_REFUSED|403/) });
      } finally {
        await user.remove();
      }
    } finally {
      await removeVhost();
    }
    expect((await rabbitmqctl('list_vhosts', 'name', '--silent')).split('\n')).not.toContain(vhost);
    await removeVhost(); // idempotent
  });

  it('closeConnectionsOfClient closes only the connections with that connection_name', async () => {
    const name = uniqueName('qam_spec_conn');
    const other = uniqueName('qam_spec_conn');
    const a1 = await open(brokerUrl(), { clientProperties: { connection_name: name } });
    const a2 = await open(brokerUrl(), { clientProperties: { connection_name: name } });
    const b = await open(brokerUrl(), { clientProperties: { connection_name: other } });
    try {
      const infos = await connectionsOfClient(name);
      expect(infos).toHaveLength(2);
      expect(infos[0]).toMatchObject({ user: 'guest', vhost: '/', connectionName: name });
      expect(infos[0]?.name).toMatch(/^127\.0\.0\.1:\d+ -> 127\.0\.0\.1:5672$/);
      expect(infos[0]?.clientProperties).toContain(`{"connection_name","${name}"}`);
      expect(infos[0]?.properties['product']).toBe('amqplib');

      const c1 = closed(a1);
      const c2 = closed(a2);
      expect(await closeConnectionsOfClient(name, 'spec says bye')).toBe(2);
      const [e1, e2] = await Promise.all([c1, c2]);
      expect(e1?.message).toMatch(/CONNECTION_FORCED - spec says bye/);
      expect(e2?.message).toMatch(/320/);

      // the other connection still works
      const ch = await b.createChannel();
      await ch.checkExchange('amq.direct');
      expect(await closeConnectionsOfClient(name)).toBe(0);
    } finally {
      await b.close().catch(() => {});
    }
  });

  it('listConnections decodes odd connection names; closeConnections takes a predicate', async () => {
    const name = `${uniqueName('qam_spec odd')}\t"quoted" é {x} \\ \x01\x7f 😀`;
    const conn = await open(brokerUrl(), { clientProperties: { connection_name: name } });
    const gone = closed(conn);
    const info = (await listConnections()).find((c) => c.connectionName === name);
    expect(info).toBeDefined();
    // a name with non-printable characters is printed by rabbitmqctl as a list of code points
    expect(info?.clientProperties).toMatch(/^\[\{"connection_name",\[\d+(,\d+)*\]\}/);
    expect(await closeConnections((c) => c.pid === info?.pid && c.connectionName === name)).toBe(1);
    expect((await gone)?.message).toMatch(/CONNECTION_FORCED - closed by test/);
  });

  it('parseClientProperties handles the printed forms', () => {
    expect(parseClientProperties('[{"connection_name",[97,1,98]},{"n",5},{"t",[{"b",true}]}]')).toEqual({
      properties: { connection_name: 'a\u0001b', n: 5, t: { b: true } },
      connectionName: 'a\u0001b',
    });
    expect(parseClientProperties('[]')).toEqual({ properties: {}, connectionName: undefined });
    expect(parseClientProperties('garbage {"connection_name","x\\ty"} ???').connectionName).toBe('x\ty');
  });
});

describe('TcpProxy', () => {
  it('forwards an amqplib connection and counts it', async () => {
    const proxy = await TcpProxy.start();
    try {
      expect(proxy.port).toBeGreaterThan(0);
      expect(proxy.url()).toBe(`amqp://guest:guest@127.0.0.1:${proxy.port}`);
      expect(proxy.url('/')).toBe(`amqp://guest:guest@127.0.0.1:${proxy.port}/%2F`);
      const conn = await open(proxy.url('/'));
      expect(proxy.connectionCount).toBe(1);
      const ch = await conn.createChannel();
      const { queue } = await ch.assertQueue('', { exclusive: true });
      ch.sendToQueue(queue, Buffer.from('through the proxy'));
      const msg = await waitUntil(() => ch.get(queue, { noAck: true }));
      expect(msg.content.toString()).toBe('through the proxy');
      await conn.close();
      await waitUntil(() => proxy.connectionCount === 0);
    } finally {
      await proxy.close();
    }
  });

  it('cutAll makes the client connection emit error and close', async () => {
    const proxy = await TcpProxy.start();
    try {
      const conn = await amqp.connect(proxy.url());
      opened.add(conn);
      const errors: Error[] = [];
      conn.on('error', (e: Error) => errors.push(e));
      const gone = closed(conn);
      await conn.createChannel();
      proxy.cutAll();
      const err = await gone;
      opened.delete(conn);
      expect(err?.message).toBeTruthy();
      expect(errors.length).toBeGreaterThan(0);
      expect(proxy.connectionCount).toBe(0);
      // the proxy keeps serving
      const again = await open(proxy.url());
      await again.close();
    } finally {
      await proxy.close();
    }
  });

  it('refuse makes connect fail until turned off', async () => {
    const proxy = await TcpProxy.start();
    try {
      proxy.refuse(true);
      await expect(amqp.connect(proxy.url())).rejects.toThrow();
      expect(proxy.connectionCount).toBe(0);
      proxy.refuse(false);
      const conn = await open(proxy.url());
      await conn.close();
    } finally {
      await proxy.close();
    }
  });

  it('freeze holds traffic in both directions until unfrozen', async () => {
    const proxy = await TcpProxy.start();
    try {
      const conn = await open(proxy.url());
      const ch = await conn.createChannel();
      proxy.freeze(true);
      const pending = ch.checkExchange('amq.direct');
      expect(await settleWithin(pending, 400)).toEqual({ settled: false });
      // new connections hang as well
      const late = amqp.connect(proxy.url());
      expect(await settleWithin(late, 300)).toEqual({ settled: false });
      proxy.freeze(false);
      await expect(pending).resolves.toBeDefined();
      const lateConn = await late;
      lateConn.on('error', () => {});
      await lateConn.close();
      await conn.close();
    } finally {
      await proxy.close();
    }
  });

  it('close stops listening and drops connections', async () => {
    const proxy = await TcpProxy.start();
    const conn = await amqp.connect(proxy.url());
    conn.on('error', () => {});
    const gone = closed(conn);
    await proxy.close();
    expect((await gone)?.message).toBeTruthy();
    await expect(amqp.connect(proxy.url())).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    await proxy.close(); // idempotent
  });
});

describe('TLS fixture', () => {
  let fx: TlsFixture;
  beforeAll(async () => {
    fx = await createTlsFixture();
  });
  afterAll(async () => {
    await fx?.close();
  });

  it('exposes PEMs, files and an amqps URL', () => {
    expect(fx.url).toBe(`amqps://guest:guest@localhost:${fx.port}/`);
    for (const pem of [fx.ca, fx.cert, fx.untrustedCa, fx.untrustedCert]) {
      expect(pem).toMatch(/^-----BEGIN CERTIFICATE-----/);
    }
    expect(fx.key).toMatch(/PRIVATE KEY-----/);
    expect(fx.untrustedKey).toMatch(/PRIVATE KEY-----/);
    const subject = new X509Certificate(fx.serverCert).subjectAltName ?? '';
    expect(subject).toContain('DNS:localhost');
    expect(subject).toContain('IP Address:127.0.0.1');
  });

  it('accepts a client with a CA-signed certificate', async () => {
    const name = uniqueName('qam_spec_tls');
    const conn = await open(fx.url, {
      ca: [fx.ca],
      cert: fx.cert,
      key: fx.key,
      servername: 'localhost',
      clientProperties: { connection_name: name },
    });
    const ch = await conn.createChannel();
    await ch.checkExchange('amq.topic');
    expect(fx.connectionCount).toBe(1);
    expect(await connectionsOfClient(name)).toHaveLength(1);
    const viaUrlFor = await open(fx.urlFor('/'), fx.socketOptions());
    await viaUrlFor.close();
    await conn.close();
    await waitUntil(() => fx.connectionCount === 0);
  });

  it('refuses a client certificate signed by an untrusted CA', async () => {
    // With TLS 1.3 the client finishes its side of the handshake first; the server then verifies the
    // client certificate and drops the socket (node sends no alert), so amqplib sees an abrupt close.
    await expect(
      amqp.connect(fx.url, { ca: [fx.ca], cert: fx.untrustedCert, key: fx.untrustedKey, servername: 'localhost' }),
    ).rejects.toThrow(/closed abruptly|ECONNRESET|certificate|alert/i);
    expect(fx.connectionCount).toBe(0);
  });

  it('refuses a client without a certificate', async () => {
    const err = await amqp.connect(fx.url, { ca: [fx.ca], servername: 'localhost' }).catch((e: unknown) => e);
    // e.g. ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED
    expect(err).toMatchObject({ message: expect.stringMatching(/certificate required|closed abruptly|ECONNRESET/i) });
  });

  it('fails with a certificate error when the client does not trust the CA', async () => {
    const err = await amqp
      .connect(fx.url, { ca: [fx.untrustedCa], cert: fx.cert, key: fx.key, servername: 'localhost' })
      .catch((e: unknown) => e);
    // e.g. SELF_SIGNED_CERT_IN_CHAIN (node's TLS server sends the CA along with its certificate)
    expect(err).toMatchObject({ code: expect.stringMatching(/CERT|SIGNATURE|ISSUER/) });
  });
});
