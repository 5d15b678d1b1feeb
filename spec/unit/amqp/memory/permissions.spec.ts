import type { AmqpChannel } from '../../../../lib/amqp/port.js';
import { closeBrokers, connect, declare, freshBroker, open, publishConfirmed, whenClosed } from './helpers.js';

afterEach(closeBrokers);

/**
 * A user as in the RabbitMQ probe these expectations come from: configure on `cfg*` and
 * server-named queues, write on `wr*`, read on `rd*`.
 */
async function setup(): Promise<{ url: string; user: string; admin: AmqpChannel }> {
  const { url, broker } = freshBroker();
  broker.addUser('app', 'secret');
  broker.setPermissions('app', '/', { configure: '^(cfg|amq\\.gen).*', write: '^wr.*', read: '^rd.*' });
  const { channel: admin } = await open(url);
  for (const queue of ['cfgq', 'wrq', 'rdq']) await declare(admin, queue);
  for (const exchange of ['wrx', 'rdx']) await admin.declareExchange(exchange, 'direct', { durable: false, autoDelete: false });
  return { url: url.replace('memory://', 'memory://app:secret@'), user: 'app', admin };
}

const refused = (kind: 'queue' | 'exchange', name: string): object => ({
  kind: 'access-refused',
  replyCode: 403,
  message: `ACCESS_REFUSED - access to ${kind} '${name}' in vhost '/' refused for user 'app'`,
});

describe('embedded broker: permissions', () => {
  it('needs configure to declare and delete', async () => {
    const { url } = await setup();
    const channel = async (): Promise<AmqpChannel> => (await open(url)).channel;
    await expect(declare(await channel(), 'cfgq')).resolves.toBeUndefined();
    await expect(declare(await channel(), 'wrq')).rejects.toMatchObject(refused('queue', 'wrq'));
    await expect((await channel()).deleteQueue('wrq')).rejects.toMatchObject(refused('queue', 'wrq'));
    // Permission comes before existence.
    await expect((await channel()).deleteQueue('nosuch')).rejects.toMatchObject(refused('queue', 'nosuch'));
    await expect((await channel()).declareExchange('wrx', 'direct', { durable: false, autoDelete: false })).rejects.toMatchObject(
      refused('exchange', 'wrx'),
    );
    await expect((await channel()).deleteExchange('wrx')).rejects.toMatchObject(refused('exchange', 'wrx'));
    await expect(declare(await channel(), '', { exclusive: true })).resolves.toBeUndefined();
  });

  it('needs write on the exchange to publish (the default exchange is amq.default), checked before existence', async () => {
    const { url } = await setup();
    for (const [exchange, name] of [
      ['', 'amq.default'],
      ['rdx', 'rdx'],
      ['nosuch', 'nosuch'],
    ] as const) {
      const { channel } = await open(url);
      const closed = whenClosed(channel);
      await expect(publishConfirmed(channel, exchange, 'k', 'x')).resolves.toMatchObject(refused('exchange', name));
      await expect(closed).resolves.toMatchObject(refused('exchange', name));
    }
    expect(await publishConfirmed((await open(url)).channel, 'wrx', 'k', 'x')).toBeUndefined();
  });

  it('needs write on the queue, then read on the exchange, to bind', async () => {
    const { url } = await setup();
    await expect((await open(url)).channel.bindQueue('wrq', 'rdx', 'k')).resolves.toBeUndefined();
    await expect((await open(url)).channel.bindQueue('rdq', 'rdx', 'k')).rejects.toMatchObject(refused('queue', 'rdq'));
    await expect((await open(url)).channel.bindQueue('wrq', 'wrx', 'k')).rejects.toMatchObject(refused('exchange', 'wrx'));
  });

  it('needs read on the queue to consume; nothing to consume replies or to check an exchange', async () => {
    const { url } = await setup();
    await expect((await open(url)).channel.consume('rdq', () => undefined, { noAck: true })).resolves.toMatch(/^amq\.ctag-/);
    await expect((await open(url)).channel.consume('wrq', () => undefined, { noAck: true })).rejects.toMatchObject(refused('queue', 'wrq'));
    await expect((await open(url)).channel.consume('amq.rabbitmq.reply-to', () => undefined, { noAck: true })).resolves.toMatch(
      /^amq\.ctag-/,
    );
    await expect((await open(url)).channel.checkExchange('wrx')).resolves.toBeUndefined();
  });

  it('reads an empty expression as "nothing" and applies changed permissions to open connections', async () => {
    const { url, broker } = freshBroker();
    broker.addUser('app', 'secret');
    broker.setPermissions('app', '/', { configure: '', write: '.*', read: '.*' });
    const appUrl = url.replace('memory://', 'memory://app:secret@');
    const { connection } = await open(appUrl);
    await expect(declare(await connection.openChannel({ confirms: false }), 'q')).rejects.toMatchObject({ replyCode: 403 });
    broker.setPermissions('app', '/', { configure: '.*', write: '.*', read: '.*' });
    await expect(declare(await connection.openChannel({ confirms: false }), 'q')).resolves.toBeUndefined();
  });

  it('refuses a bad login with access-refused, a missing vhost with connect-failed (unknown-vhost), a vhost without permissions with access-refused', async () => {
    const { url, broker } = freshBroker();
    broker.addUser('app', 'secret');
    broker.addVhost('staging');
    await expect(connect(url.replace('memory://', 'memory://app:wrong@'))).rejects.toMatchObject({
      kind: 'access-refused',
      replyCode: 403,
      message: 'ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. For details see the broker logfile.',
    });
    await expect(connect(url.replace('memory://', 'memory://nobody:secret@'))).rejects.toMatchObject({ kind: 'access-refused' });
    await expect(connect(`${url}/nosuch`)).rejects.toMatchObject({
      kind: 'connect-failed',
      reason: 'unknown-vhost',
      replyCode: 530,
    });
    await expect(connect(`${url.replace('memory://', 'memory://app:secret@')}/staging`)).rejects.toMatchObject({
      kind: 'access-refused',
      replyCode: 530,
      message: "NOT_ALLOWED - access to vhost 'staging' refused for user 'app'",
    });
    broker.setPermissions('app', 'staging', { configure: '.*', write: '.*', read: '.*' });
    const connection = await connect(`${url.replace('memory://', 'memory://app:secret@')}/staging`);
    expect(connection.username).toBe('app');
  });

  it('checks its own hooks: unknown users and vhosts, invalid expressions', () => {
    const { broker } = freshBroker();
    const everything = { configure: '.*', write: '.*', read: '.*' };
    expect(() => broker.setPermissions('nobody', '/', everything)).toThrow(
      expect.objectContaining({ code: 'NO_SUCH_USER' }) as unknown as Error,
    );
    expect(() => broker.setPermissions('guest', 'nowhere', everything)).toThrow(
      expect.objectContaining({ code: 'NO_SUCH_VHOST' }) as unknown as Error,
    );
    expect(() => broker.setPermissions('guest', '/', { ...everything, read: '(' })).toThrow(
      expect.objectContaining({ code: 'BAD_PERMISSIONS' }) as unknown as Error,
    );
    expect(() => broker.addUser('guest', 'x')).toThrow(expect.objectContaining({ code: 'USER_EXISTS' }) as unknown as Error);
    expect(() => broker.addVhost('/')).toThrow(expect.objectContaining({ code: 'VHOST_EXISTS' }) as unknown as Error);
  });
});
