/**
 * Faults only a network makes, on RabbitMQ through a TCP proxy: a broker that refuses
 * connections for a while, a first connection that fails. The faults the brokers' hooks can make
 * (cuts, deleted queues and exchanges) run on both brokers in faults-hooks.spec.ts.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { QAMConnection, QAMException, QAMProxy, QAMServer, silentLogger } from '../../lib/index.js';
import { uniqueName } from '../support/broker.js';
import { TcpProxy } from '../support/tcp-proxy.js';
import { Servers } from './fixtures.js';

const servers = new Servers();
let tcp: TcpProxy;

beforeEach(async () => {
  tcp = await TcpProxy.start();
});
afterEach(() => tcp.close());
afterAll(() => servers.closeAll());

const fastReconnect = { reconnectDelay: { min: 0.05, max: 0.5 }, logger: silentLogger };

async function slowServer(): Promise<QAMServer> {
  const server = servers.create({ workers: 200 });
  server.registerFunction(async (ms: number, value: unknown) => {
    await delay(ms);
    return value;
  }, 'slow');
  await server.serve();
  return server;
}

describe('connection loss under the proxy', () => {
  it('makes calls wait while the broker is unreachable, until their timeout or the reconnect', async () => {
    const server = await slowServer();
    const connection = new QAMConnection({ url: tcp.url(), ...fastReconnect });
    const failures: number[] = [];
    connection.on('reconnect-failed', (_error, attempt) => failures.push(attempt));
    const proxy = new QAMProxy({ serverId: server.serverId, connection, timeout: 5 });
    await proxy['slow'](0, 'warm');
    tcp.refuse(true);
    tcp.cutAll();
    await delay(50);
    await expect(proxy.setTimeout(0.5)['slow'](0, 'lost')).rejects.toMatchObject({ code: 'TIMEOUT' });
    expect(failures.length).toBeGreaterThan(0);
    const waiting = proxy['slow'](0, 'after');
    await delay(300);
    tcp.refuse(false);
    await expect(waiting).resolves.toBe('after');
    expect(proxy.getStats().pending).toBe(0);
    await proxy.close();
    await connection.close();
  });
});

describe('first connection', () => {
  it('fails at once with a clear error for a wrong password or an unreachable broker', async () => {
    const wrong = new QAMServer({ serverId: uniqueName('spec'), url: 'amqp://guest:wrong@127.0.0.1:5672', logger: silentLogger });
    await expect(wrong.serve()).rejects.toMatchObject({ code: 'ACCESS_REFUSED' });
    tcp.refuse(true);
    const unreachable = new QAMProxy({ serverId: 'x', url: tcp.url(), logger: silentLogger, timeout: 5 });
    const started = Date.now();
    await expect(unreachable['ping']()).rejects.toMatchObject({ code: 'CONNECT_FAILED' });
    expect(Date.now() - started).toBeLessThan(2000);
    await unreachable.close();
  });
});

describe('stuck states', () => {
  it('sends again once the broker is back after a first call with an already aborted signal failed to connect', async () => {
    const server = await slowServer();
    tcp.refuse(true);
    const proxy = new QAMProxy({ serverId: server.serverId, url: tcp.url(), logger: silentLogger, timeout: 15 });
    const controller = new AbortController();
    controller.abort();
    await expect(proxy.withSignal(controller.signal)['slow'](0, 'aborted')).rejects.toMatchObject({ code: 'ABORTED' });
    await expect(proxy['slow'](0, 'refused')).rejects.toBeInstanceOf(QAMException);
    tcp.refuse(false);
    await expect(proxy['slow'](0, 'back')).resolves.toBe('back');
    expect(proxy.getStats().pending).toBe(0);
    await proxy.close();
  });

  it('tries to connect again for calls that retry after the first connection failed, instead of leaving them to time out', async () => {
    const server = await slowServer();
    tcp.refuse(true);
    const proxy = new QAMProxy({ serverId: server.serverId, url: tcp.url(), logger: silentLogger, timeout: 10 });
    const retried = [proxy.retry(1)['slow'](0, 1), proxy.retry(1)['slow'](0, 2)];
    const outcomes = await Promise.allSettled(retried);
    expect(outcomes.map((outcome) => outcome.status)).toEqual(['rejected', 'rejected']);
    expect(outcomes.map((outcome) => (outcome.status === 'rejected' ? (outcome.reason as QAMException).code : undefined))).not.toContain(
      'TIMEOUT',
    );
    tcp.refuse(false);
    await expect(proxy['slow'](0, 'back')).resolves.toBe('back');
    await proxy.close();
  });
});
