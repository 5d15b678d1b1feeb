import { once } from 'node:events';
import { jest } from '@jest/globals';
import { QAMConnection, resolveConnection, type ConnectionOptions } from '../../../lib/amqp/connection.js';
import { PortError } from '../../../lib/amqp/port.js';
import { silentLogger } from '../../../lib/logger.js';
import { FakePort, turns } from '../../support/fake-port.js';

const resolveAll = (options: ConnectionOptions): ReturnType<typeof resolveConnection> => resolveConnection(options, silentLogger);
const resolve = (options: ConnectionOptions): ReturnType<typeof resolveConnection>[0] => resolveAll(options)[0];

describe('resolveConnection', () => {
  const saved = process.env['QAM_URL'];
  afterEach(() => {
    if (saved === undefined) delete process.env['QAM_URL'];
    else process.env['QAM_URL'] = saved;
  });
  beforeEach(() => {
    delete process.env['QAM_URL'];
  });

  it('takes the url as given, with its user decoded and its password masked in the label', () => {
    const target = resolve({ url: 'amqp://app%20user:s3cret@rabbit:5673/prod' });
    expect(target.url).toBe('amqp://app%20user:s3cret@rabbit:5673/prod');
    expect(target.username).toBe('app user');
    expect(target.label).not.toContain('s3cret');
    expect(target.label).toBe('amqp://app%20user:***@rabbit:5673/prod');
  });

  it('logs in as guest when the url names no user, and applies the socket defaults', () => {
    const target = resolve({ url: 'amqps://rabbit' });
    expect(target).toMatchObject({
      username: 'guest',
      heartbeatSeconds: 10,
      connectTimeoutMs: 10_000,
      connectionName: undefined,
      tls: undefined,
    });
  });

  it('accepts memory:// URLs, which name an embedded broker', () => {
    const target = resolve({ url: 'memory://app:pw@tests/staging' });
    expect(target.url).toBe('memory://app:pw@tests/staging');
    expect(target.username).toBe('app');
    expect(target.label).toBe('memory://app:***@tests/staging');
  });

  it('accepts the scheme of a port registered for tests (fake:)', () => {
    const port = new FakePort();
    expect(resolve({ url: port.url }).url).toBe(port.url);
  });

  it('refuses a url of another scheme, or one that does not parse, naming the option', () => {
    expect(() => resolve({ url: 'http://rabbit' })).toThrow(TypeError);
    expect(() => resolve({ url: 'http://rabbit' })).toThrow(/'url'/);
    expect(() => resolve({ url: 'rabbit:5672' })).toThrow(/'url'/);
    expect(() => resolve({ url: 'not a url' })).toThrow(/'url'/);
  });

  it('never shows the password of a url it refuses', () => {
    let message = '';
    try {
      resolve({ url: 'amqp://user:hunter2@[bad' });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toContain("'url'");
    expect(message).not.toContain('hunter2');
  });

  it('uses QAM_URL when neither url nor a discrete field is given', () => {
    process.env['QAM_URL'] = 'amqp://envuser:envpass@envhost:5674/envvhost';
    const target = resolve({});
    expect(target.url).toBe('amqp://envuser:envpass@envhost:5674/envvhost');
    expect(target.username).toBe('envuser');
    expect(target.label).not.toContain('envpass');
  });

  it('prefers url, and any discrete field, to QAM_URL', () => {
    process.env['QAM_URL'] = 'amqp://envhost';
    expect(resolve({ url: 'amqp://given' }).url).toBe('amqp://given');
    expect(resolve({ hostname: 'discrete' }).url).toBe('amqp://guest:guest@discrete:5672/%2F');
    expect(resolve({ vhost: 'v' }).url).toBe('amqp://guest:guest@localhost:5672/v');
  });

  it('says that a bad address came from QAM_URL', () => {
    process.env['QAM_URL'] = 'http://envhost';
    expect(() => resolve({})).toThrow(/QAM_URL/);
    process.env['QAM_URL'] = '::nonsense::';
    expect(() => resolve({})).toThrow(/QAM_URL/);
  });

  it('refuses ssl beside an amqp:// url or QAM_URL rather than connecting in plain text', () => {
    expect(() => resolve({ url: 'amqp://rabbit', ssl: true })).toThrow(/amqps:/);
    process.env['QAM_URL'] = 'amqp://rabbit';
    expect(() => resolve({ ssl: true })).toThrow(/QAM_URL/);
    expect(resolve({ url: 'amqps://rabbit', ssl: { servername: 'rabbit' } }).tls).toEqual({ servername: 'rabbit' });
    expect(resolve({ url: 'amqp://rabbit', ssl: false }).url).toBe('amqp://rabbit');
  });

  it('builds the URL from the discrete fields with their defaults', () => {
    const target = resolve({});
    expect(target.url).toBe('amqp://guest:guest@localhost:5672/%2F');
    expect(target.label).toBe('amqp://guest@localhost:5672/%2F');
    expect(target.username).toBe('guest');
  });

  it('encodes user, password and vhost, keeping the password out of the label', () => {
    const target = resolve({ hostname: 'rabbit', port: 5700, username: 'a@b', password: 'p:w/d@x', vhost: '/prod' });
    expect(target.url).toBe('amqp://a%40b:p%3Aw%2Fd%40x@rabbit:5700/%2Fprod');
    expect(new URL(target.url).password).toBe('p%3Aw%2Fd%40x');
    expect(target.label).toBe('amqp://a@b@rabbit:5700/%2Fprod');
    expect(target.username).toBe('a@b');
  });

  it('brackets an IPv6 host', () => {
    expect(resolve({ hostname: '::1' }).url).toBe('amqp://guest:guest@[::1]:5672/%2F');
  });

  it('switches to amqps on port 5671 with ssl, keeping a copy of the TLS material', () => {
    expect(resolve({ ssl: true })).toMatchObject({ url: 'amqps://guest:guest@localhost:5671/%2F', tls: undefined });
    const ssl = { ca: 'PEM', rejectUnauthorized: false };
    const target = resolve({ hostname: 'rabbit', ssl });
    expect(target.url).toBe('amqps://guest:guest@rabbit:5671/%2F');
    expect(target.tls).toEqual(ssl);
    expect(target.tls).not.toBe(ssl);
    expect(resolve({ ssl: true, port: 6000 }).url).toBe('amqps://guest:guest@localhost:6000/%2F');
  });

  it('takes several URLs, as an array or a comma-separated QAM_URL, each with its own credentials', () => {
    const targets = resolveAll({ url: ['amqp://a:pa@rabbit-1', 'amqp://b:pb@rabbit-2:5673/v'] });
    expect(targets.map((target) => [target.url, target.username, target.label])).toEqual([
      ['amqp://a:pa@rabbit-1', 'a', 'amqp://a:***@rabbit-1'],
      ['amqp://b:pb@rabbit-2:5673/v', 'b', 'amqp://b:***@rabbit-2:5673/v'],
    ]);
    process.env['QAM_URL'] = 'amqp://a:pa@rabbit-1, amqp://b:pb@rabbit-2';
    expect(resolveAll({}).map((target) => target.url)).toEqual(['amqp://a:pa@rabbit-1', 'amqp://b:pb@rabbit-2']);
  });

  it('checks each of several URLs, naming which one is wrong', () => {
    expect(() => resolveAll({ url: ['amqp://rabbit-1', 'http://rabbit-2'] })).toThrow(/'url' \(URL 2 of 2\)/);
    expect(() => resolveAll({ url: ['amqps://rabbit-1', 'amqp://rabbit-2'], ssl: true })).toThrow(/URL 2 of 2.*amqps:/);
    process.env['QAM_URL'] = 'amqp://rabbit-1,';
    expect(() => resolveAll({})).toThrow(/QAM_URL environment variable \(URL 2 of 2\)/);
  });

  it('keeps ssl.servername for every URL when given, and sets none otherwise (each node is checked against its own host name)', () => {
    const urls = ['amqps://rabbit-1', 'amqps://rabbit-2'];
    expect(resolveAll({ url: urls, ssl: { ca: 'PEM' } }).map((target) => target.tls)).toEqual([{ ca: 'PEM' }, { ca: 'PEM' }]);
    expect(resolveAll({ url: urls, ssl: { servername: 'rabbit' } }).map((target) => target.tls?.['servername'])).toEqual([
      'rabbit',
      'rabbit',
    ]);
  });

  it('converts the socket settings', () => {
    expect(resolve({ heartbeat: 0, connectTimeout: 2.5, connectionName: 'svc' })).toMatchObject({
      heartbeatSeconds: 0,
      connectTimeoutMs: 2500,
      connectionName: 'svc',
    });
  });
});

describe('QAMConnection over the port', () => {
  let port: FakePort;
  let connection: QAMConnection;
  beforeEach(() => {
    port = new FakePort();
    connection = port.connection();
  });
  afterEach(async () => {
    jest.useRealTimers();
    await connection.close();
  });

  it('connects once for any number of channels opened at the same time', async () => {
    const [confirming, plain] = await Promise.all([
      connection.openChannel({ confirms: true }),
      connection.openChannel({ confirms: false }),
      connection.link(),
    ]);
    expect(port.connections).toHaveLength(1);
    expect([confirming.confirms, plain.confirms]).toEqual([true, false]);
    expect(connection.connected).toBe(true);
    expect(connection.username).toBe('guest');
  });

  it.each([
    ['access-refused', new PortError('access-refused', 'login refused', { replyCode: 403 }), { code: 'ACCESS_REFUSED' }],
    [
      'connect-failed (refused)',
      new PortError('connect-failed', 'refused', { reason: 'refused' }),
      { code: 'CONNECT_FAILED', reason: 'refused' },
    ],
    [
      'connect-failed (unknown vhost)',
      new PortError('connect-failed', 'no vhost', { reason: 'unknown-vhost' }),
      { code: 'CONNECT_FAILED', reason: 'unknown-vhost' },
    ],
    ['tls', new PortError('tls', 'bad certificate'), { code: 'TLS_FAILED' }],
    ['other', new PortError('other', 'odd'), { code: 'CONNECT_FAILED', reason: 'handshake' }],
  ])('fails the first connection at once, without retrying, with what the port said: %s', async (_, refusal, expected) => {
    port.refuseConnect = refusal;
    const failed = jest.fn();
    connection.on('reconnect-failed', failed);
    await expect(connection.openChannel({ confirms: false })).rejects.toMatchObject(expected);
    expect(failed).not.toHaveBeenCalled();
    expect(connection.connected).toBe(false);
    // Nothing is left in a state that blocks the next attempt.
    port.refuseConnect = undefined;
    await expect(connection.openChannel({ confirms: false })).resolves.toBeDefined();
  });

  it('tells its users of a loss and reconnects at once, then tells them again', async () => {
    await connection.link();
    const events: string[] = [];
    connection.attach({
      onConnect: () => events.push('connect'),
      onDisconnect: (error) => events.push(`disconnect ${(error as { code?: string }).code}`),
    });
    port.lastConnection.lose(new PortError('closed', 'socket died', { connection: true }));
    expect(connection.connected).toBe(false);
    await port.until(() => port.connections.length === 2);
    await turns();
    expect(events).toEqual(['disconnect CONNECTION_LOST', 'connect']);
    expect(connection.connected).toBe(true);
  });

  it('retries a lost connection with a growing, jittered backoff until the broker is back', async () => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
    connection = port.connection({ reconnectDelay: { min: 1, max: 4 } });
    await connection.link();
    const failures: Array<[number, number]> = [];
    connection.on('reconnect-failed', (_error, attempt, delayMs) => failures.push([attempt, delayMs]));
    port.refuseConnect = new PortError('connect-failed', 'refused', { reason: 'refused' });
    port.lastConnection.lose();
    await turns();
    expect(failures).toHaveLength(1);
    for (let attempt = 2; attempt <= 4; attempt++) {
      await jest.advanceTimersByTimeAsync(failures.at(-1)![1]);
      await turns();
      expect(failures).toHaveLength(attempt);
    }
    expect(failures.map(([attempt]) => attempt)).toEqual([1, 2, 3, 4]);
    const bounds = [1000, 2000, 4000, 4000];
    failures.forEach(([, delayMs], index) => {
      expect(delayMs).toBeGreaterThanOrEqual(bounds[index]! / 2);
      expect(delayMs).toBeLessThanOrEqual(bounds[index]!);
    });
    port.refuseConnect = undefined;
    await jest.advanceTimersByTimeAsync(failures.at(-1)![1]);
    await port.until(() => connection.connected);
    expect(port.connections).toHaveLength(2);
  });

  it('close() while it waits to reconnect returns at once and stops reconnecting', async () => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
    connection = port.connection({ reconnectDelay: { min: 60, max: 60 } });
    await connection.link();
    port.refuseConnect = new PortError('connect-failed', 'refused', { reason: 'refused' });
    port.lastConnection.lose();
    await turns();
    const closed = jest.fn();
    void connection.close().then(closed);
    await turns();
    expect(closed).toHaveBeenCalled();
    port.refuseConnect = undefined;
    await jest.advanceTimersByTimeAsync(120_000);
    expect(port.connections).toHaveLength(1);
    await expect(connection.openChannel({ confirms: false })).rejects.toMatchObject({ code: 'CLOSED' });
  });

  it('passes on blocked and unblocked', async () => {
    const events: string[] = [];
    connection.on('blocked', (reason) => events.push(`blocked ${reason}`));
    connection.on('unblocked', () => events.push('unblocked'));
    await connection.link();
    port.lastConnection.block('low on memory');
    expect(connection.blocked).toBe(true);
    port.lastConnection.unblock();
    expect(connection.blocked).toBe(false);
    expect(events).toEqual(['blocked low on memory', 'unblocked']);
  });

  it('closes the port connection on close(), and opens nothing afterwards', async () => {
    const link = await connection.link();
    await connection.close();
    expect(port.lastConnection.closed).toBe(true);
    expect(port.lastConnection).toBe(link);
    expect(connection.closed).toBe(true);
    await expect(connection.openChannel({ confirms: false })).rejects.toMatchObject({ code: 'CLOSED' });
    expect(port.connections).toHaveLength(1);
  });
});

describe('QAMConnection over several brokers', () => {
  let ports: FakePort[];
  let connection: QAMConnection;
  beforeEach(() => {
    ports = [new FakePort(), new FakePort(), new FakePort()];
  });
  afterEach(async () => {
    jest.useRealTimers();
    await connection.close();
  });
  const refused = (): PortError => new PortError('connect-failed', 'refused', { reason: 'refused' });

  it('connects to the first that answers, in the order given, and says which', async () => {
    ports[0]!.refuseConnect = refused();
    connection = new QAMConnection({ url: ports.map((port) => port.url), logger: silentLogger });
    const connected = jest.fn();
    connection.on('connect', connected);
    await connection.link();
    expect(ports.map((port) => port.connections.length)).toEqual([0, 1, 0]);
    expect(connected).toHaveBeenCalledWith(ports[1]!.url);
    expect(connection.label).toBe(ports[1]!.url);
    expect(connection.labels).toEqual(ports.map((port) => port.url));
  });

  it("fails the first connection with the first broker's error once every broker refused", async () => {
    ports[0]!.refuseConnect = new PortError('access-refused', 'login refused', { replyCode: 403 });
    ports[1]!.refuseConnect = refused();
    ports[2]!.refuseConnect = refused();
    connection = new QAMConnection({ url: ports.map((port) => port.url), logger: silentLogger });
    await expect(connection.link()).rejects.toMatchObject({ code: 'ACCESS_REFUSED' });
    expect(connection.connected).toBe(false);
  });

  it('after a loss, reconnects to the next broker round from the one it lost, skipping those that do not answer', async () => {
    connection = new QAMConnection({ url: ports.map((port) => port.url), logger: silentLogger });
    const labels: string[] = [];
    connection.on('connect', (label) => labels.push(label));
    await connection.link();
    ports[1]!.refuseConnect = refused();
    let reconnected = once(connection, 'connect');
    ports[0]!.lastConnection.lose(new PortError('closed', 'node stopped', { connection: true }));
    await reconnected;
    reconnected = once(connection, 'connect');
    ports[2]!.lastConnection.lose(new PortError('closed', 'node stopped', { connection: true }));
    await reconnected;
    expect(ports.map((port) => port.connections.length)).toEqual([2, 0, 1]);
    expect(labels).toEqual([ports[0]!.url, ports[2]!.url, ports[0]!.url]);
  });

  it('waits the backoff only after a round in which no broker answered', async () => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
    connection = new QAMConnection({ url: ports.map((port) => port.url), logger: silentLogger, reconnectDelay: { min: 1, max: 1 } });
    await connection.link();
    const failures: Array<[number, number]> = [];
    connection.on('reconnect-failed', (_error, attempt, delayMs) => failures.push([attempt, delayMs]));
    for (const port of ports) port.refuseConnect = refused();
    ports[0]!.lastConnection.lose();
    await turns();
    expect(failures.map(([attempt]) => attempt)).toEqual([1, 2, 3]);
    expect(failures.slice(0, 2).map(([, delayMs]) => delayMs)).toEqual([0, 0]);
    expect(failures[2]![1]).toBeGreaterThanOrEqual(500);
    ports[2]!.refuseConnect = undefined;
    await jest.advanceTimersByTimeAsync(1000);
    await turns();
    // The round after the wait goes on from broker 2 (refused again, at once), then 3.
    expect(failures.map(([attempt]) => attempt)).toEqual([1, 2, 3, 4]);
    expect(failures[3]![1]).toBe(0);
    expect(connection.connected).toBe(true);
    expect(connection.label).toBe(ports[2]!.url);
  });
});
