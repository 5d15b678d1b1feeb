/**
 * The verified caller identity: proxies set the AMQP `user_id` property to their connection's user,
 * RabbitMQ refuses a message whose `user_id` is not the user its publisher authenticated as, and
 * the server exposes it as `currentCall().userId`. On a vhost and user of this suite's own.
 */
import * as net from 'node:net';
import * as amqp from 'amqplib';
import { QAMConnection, QAMProxy, QAMServer, currentCall, silentLogger } from '../../lib/index.js';
import { brokerUrl, createUser, createVhost, uniqueName, waitUntil, type TempUser, type TempVhost } from '../support/broker.js';

describe('caller identity', () => {
  const password = 'identity-secret';
  const serverId = uniqueName('identity');
  let vhost: TempVhost;
  let alice: TempUser;
  let server: QAMServer;
  const runs: Array<string | undefined> = [];

  beforeAll(async () => {
    vhost = await createVhost('qam_identity');
    alice = await createUser(uniqueName('alice'), password, vhost.vhost, { configure: '.*', write: '.*', read: '.*' });
    server = new QAMServer({ serverId, url: brokerUrl(vhost.vhost), logger: silentLogger }).registerFunction(() => {
      const userId = currentCall()?.userId;
      runs.push(userId);
      return userId ?? null;
    }, 'whoami');
    await server.serve();
    // rabbitmqctl takes seconds a command on a loaded machine.
  }, 120_000);

  afterAll(async () => {
    await server.close({ deleteQueue: true });
    await alice.remove();
    await vhost.remove();
  }, 120_000);

  beforeEach(() => runs.splice(0));

  it("is the proxy's connection user, whatever the server connects as", async () => {
    const proxy = new QAMProxy({ serverId, url: brokerUrl(vhost.vhost, alice.name, password), logger: silentLogger });
    const guest = new QAMProxy({ serverId, url: brokerUrl(vhost.vhost), logger: silentLogger });
    try {
      await expect(proxy.whoami()).resolves.toBe(alice.name);
      await expect(guest.whoami()).resolves.toBe('guest');
    } finally {
      await Promise.all([proxy.close(), guest.close()]);
    }
  });

  it("is also sent with callme's reply names", async () => {
    const proxy = new QAMProxy({ serverId, url: brokerUrl(vhost.vhost, alice.name, password), replies: 'callme', logger: silentLogger });
    try {
      await expect(proxy.whoami()).resolves.toBe(alice.name);
    } finally {
      await proxy.close();
    }
  });

  it('is the user of the URL the connection is on, not of the first one it was given', async () => {
    // The first URL names guest on a port nothing listens on: the connection moves on to alice's.
    const closed = net.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as net.AddressInfo;
    await new Promise((resolve) => closed.close(resolve));
    const connection = new QAMConnection({
      url: [`amqp://guest:guest@127.0.0.1:${port}/${encodeURIComponent(vhost.vhost)}`, brokerUrl(vhost.vhost, alice.name, password)],
      logger: silentLogger,
    });
    const proxy = new QAMProxy({ serverId, connection });
    try {
      await expect(proxy.whoami()).resolves.toBe(alice.name);
      expect(connection.username).toBe(alice.name);
      expect(connection.label).toContain(`${alice.name}:***@`);
    } finally {
      await proxy.close();
      await connection.close();
    }
  });

  it('is undefined for a proxy with userId: false', async () => {
    const proxy = new QAMProxy({ serverId, url: brokerUrl(vhost.vhost, alice.name, password), userId: false, logger: silentLogger });
    try {
      await expect(proxy.whoami()).resolves.toBeNull();
    } finally {
      await proxy.close();
    }
  });

  it('cannot be forged: RabbitMQ refuses a request whose user_id is not its publisher, and nothing runs', async () => {
    const connection = await amqp.connect(brokerUrl(vhost.vhost, alice.name, password));
    try {
      const channel = await connection.createChannel();
      const closed = new Promise<unknown>((resolve) => channel.on('error', resolve));
      channel.publish('', `server_${serverId}_queue`, Buffer.from(JSON.stringify({ method: 'whoami', params: [] })), {
        contentType: 'application/json',
        correlationId: '1',
        userId: 'guest',
      });
      const error = await closed;
      expect(error).toMatchObject({
        code: 406,
        message: expect.stringMatching(/user_id property set to 'guest' but authenticated user was/),
      });
      // Without a reply address: the server runs it and drops the reply.
      // The same request under its own user is served, so the refusal was the forged user_id alone.
      const honest = await connection.createChannel();
      honest.publish('', `server_${serverId}_queue`, Buffer.from(JSON.stringify({ method: 'whoami', params: [] })), {
        contentType: 'application/json',
        correlationId: '2',
        userId: alice.name,
      });
      await waitUntil(() => runs.length > 0, { message: 'the honest request to run' });
      // Queued after the forged one: had that been routed, it would have run first.
      expect(runs).toEqual([alice.name]);
    } finally {
      await connection.close().catch(() => undefined);
    }
  });
});
