import { memoryBroker, memoryPort, parseMemoryUrl } from '../../../../lib/amqp/memory/index.js';
import { closeBrokers, connect, declare, freshBroker, open, target, whenClosed } from './helpers.js';

afterEach(closeBrokers);

describe('embedded broker: URLs', () => {
  it.each([
    ['memory://', { broker: 'default', username: 'guest', password: 'guest', vhost: '/' }],
    ['memory://tests', { broker: 'tests', username: 'guest', password: 'guest', vhost: '/' }],
    ['memory://tests/', { broker: 'tests', username: 'guest', password: 'guest', vhost: '/' }],
    ['memory://tests/%2F', { broker: 'tests', username: 'guest', password: 'guest', vhost: '/' }],
    ['memory://app:s%40cret@tests/%2Fstaging?heartbeat=10', { broker: 'tests', username: 'app', password: 's@cret', vhost: '/staging' }],
    ['memory://My%20Broker/v', { broker: 'My Broker', username: 'guest', password: 'guest', vhost: 'v' }],
  ])('reads %s', (url, expected) => {
    expect(parseMemoryUrl(url)).toEqual(expected);
  });

  it.each(['amqp://localhost', 'memory:tests', 'memory://a/%E0'])('refuses %s with a PortError', async (url) => {
    await expect(memoryPort.connect(target(url))).rejects.toMatchObject({ name: 'PortError', kind: 'other' });
  });
});

describe('embedded broker: named brokers', () => {
  it('reaches the same broker by name from the registry and through the port; brokers of other names are separate', async () => {
    const { url, broker, name } = freshBroker();
    const other = freshBroker();
    expect(memoryBroker(name)).toBe(broker);
    const { channel } = await open(url);
    await declare(channel, 'only-here');
    expect(broker.queues().map((queue) => queue.name)).toEqual(['only-here']);
    expect(other.broker.queues()).toEqual([]);
  });

  it('forgets a closed broker: its connections close, the name reaches a new broker, the old one refuses connections', async () => {
    const { url, broker, name } = freshBroker();
    const connection = await connect(url);
    const closed = whenClosed(connection);
    await declare(await connection.openChannel({ confirms: false }), 'q');
    broker.close();
    await expect(closed).resolves.toMatchObject({ replyCode: 320 });
    await expect(broker.connect()).rejects.toMatchObject({ kind: 'connect-failed', reason: 'refused' });
    const fresh = memoryBroker(name);
    expect(fresh).not.toBe(broker);
    expect(fresh.queues()).toEqual([]);
  });

  it('names a connection after connectionName and logs it in as the URL user', async () => {
    const { url, broker } = freshBroker();
    broker.addUser('app', 'pw');
    broker.setPermissions('app', '/', { configure: '.*', write: '.*', read: '.*' });
    const connection = await connect(url.replace('memory://', 'memory://app:pw@'), 'my-service');
    expect(connection.username).toBe('app');
    expect(broker.connections()).toEqual([expect.objectContaining({ name: 'my-service', user: 'app', vhost: '/' })]);
    await connection.close();
    expect(broker.connections()).toEqual([]);
    await expect(connection.close()).resolves.toBeUndefined();
    await expect(connection.openChannel({ confirms: false })).rejects.toMatchObject({ kind: 'closed' });
  });
});
