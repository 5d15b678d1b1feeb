import { QAMInvalidCallException, QAMProxy, QAMServer, silentLogger } from '../../lib/index.js';
import { BROKER_HOST, BROKER_PORT, uniqueName } from '../support/broker.js';
import { Servers, url } from './fixtures.js';

const servers = new Servers();
const proxies: QAMProxy[] = [];
afterAll(async () => {
  await Promise.all(proxies.map((proxy) => proxy.close()));
  await servers.closeAll();
});

const callme = { amqp_host: BROKER_HOST, amqp_port: BROKER_PORT, amqp_user: 'guest', amqp_password: 'guest', amqp_vhost: '/' };

describe("QAM's and callme's names", () => {
  it('serves with register_function, register_class, server_id, amqp_* and start(); calls with set_timeout and the state names', async () => {
    const serverId = uniqueName('spec-qam-names');
    const server = new QAMServer({ server_id: serverId, ...callme, logger: silentLogger })
      .register_function((a: number, b: number) => a + b, 'add')
      .register_class(
        new (class {
          adder_function(a: number, b: number): number {
            return a + b;
          }
        })(),
        'my_instance',
      );
    await server.start();
    try {
      expect(server.serverId).toBe(serverId);
      const proxy = new QAMProxy<{ add(a: number, b: number): number }>({ server_id: serverId, ...callme, logger: silentLogger });
      proxies.push(proxy);
      await expect(proxy.set_timeout(10).add(1, 2)).resolves.toBe(3);
      await expect((proxy as unknown as QAMProxy).invoke('my_instance.adder_function', 2, 4)).resolves.toBe(6);
      let done!: () => void;
      const finished = new Promise<void>((resolve) => (done = resolve));
      const uid = proxy.callback(() => done()).add(2, 2);
      expect([0, 1, 2]).toContain(proxy.get_callback_state(uid));
      await finished;
      expect(proxy.get_num_waiting_callbacks()).toBe(proxy.getNumWaitingCallbacks());
      expect(proxy.get_callback_state(uid)).toBe(2);
    } finally {
      await server.close({ deleteQueue: true });
    }
  });

  it("takes QAM's client_id for the QAM reply queue", async () => {
    const server = servers.create({ protocol: 'qam' });
    server.registerFunction((a: number, b: number) => a + b, 'add');
    await server.serve();
    const clientId = uniqueName('spec-client');
    const proxy = new QAMProxy({ server_id: server.serverId, client_id: clientId, protocol: 'qam', url, logger: silentLogger });
    proxies.push(proxy);
    await expect(proxy['add'](2, 5)).resolves.toBe(7);
  });

  it.each([
    [{ serverId: 'a', server_id: 'a' }, "'serverId' and 'server_id'"],
    [{ serverId: 'a', hostname: 'h', amqp_host: 'h' }, "'hostname' and 'amqp_host'"],
    [{ serverId: 'a', port: 5672, amqp_port: 5672 }, "'port' and 'amqp_port'"],
    [{ serverId: 'a', username: 'u', amqp_user: 'u' }, "'username' and 'amqp_user'"],
    [{ serverId: 'a', password: 'p', amqp_password: 'p' }, "'password' and 'amqp_password'"],
    [{ serverId: 'a', vhost: 'v', amqp_vhost: 'v' }, "'vhost' and 'amqp_vhost'"],
    [{ serverId: 'a', clientId: 'c', client_id: 'c', protocol: 'qam' }, "'clientId' and 'client_id'"],
  ])('refuses both spellings of one option with a TypeError: %j', (options, named) => {
    expect(() => new QAMProxy(options as never)).toThrow(TypeError);
    expect(() => new QAMProxy(options as never)).toThrow(named);
  });

  it('keeps other unknown options a TypeError, and checks the value of an alias under its own name', () => {
    expect(() => new QAMProxy({ serverId: 'a', amqp_hostname: 'h' } as never)).toThrow(TypeError);
    expect(() => new QAMServer({ server_id: 'a', amqp_port: 'x' } as never)).toThrow("Option 'amqp_port'");
    expect(() => new QAMServer({ serverId: 'a', server_id: 'a' } as never)).toThrow("'serverId' and 'server_id'");
  });
});

describe('useServer', () => {
  it("calls several servers through one proxy's connection and reply consumer, typed per server", async () => {
    const calc = servers.create();
    calc.registerFunction((a: number, b: number) => a + b, 'add');
    const greeter = servers.create();
    greeter.registerFunction((name: string) => `hello ${name}`, 'hello');
    await Promise.all([calc.serve(), greeter.serve()]);
    for (const replies of ['direct', 'callme'] as const) {
      const proxy = new QAMProxy({ url, replies, logger: silentLogger });
      proxies.push(proxy);
      const first = proxy.useServer<{ add(a: number, b: number): number }>(calc.serverId);
      const second = proxy.use_server<{ hello(name: string): string }>(greeter.serverId);
      await expect(Promise.all([first.add(1, 1), second.hello('olivia')])).resolves.toEqual([2, 'hello olivia']);
      // The bound proxies are views of the one client: a call through one is pending in all.
      let done!: () => void;
      const answered = new Promise<void>((resolve) => (done = resolve));
      first.callback(() => done()).add(3, 4);
      expect([proxy.getStats().pending, second.getStats().pending]).toEqual([1, 1]);
      await answered;
      expect(String(second)).toBe(`QAMProxy(server ${greeter.serverId})`);
    }
  });

  it('fails every call of a proxy without a server at once with a clear error, until useServer', async () => {
    const proxy = new QAMProxy({ url, logger: silentLogger });
    proxies.push(proxy);
    const failure = proxy['add'](1, 2);
    await expect(failure).rejects.toBeInstanceOf(QAMInvalidCallException);
    await expect(failure).rejects.toThrow('useServer');
    expect(String(proxy)).toBe('QAMProxy(no server)');
  });

  it('keeps the settings of the proxy it is called on, and refuses a bad id', () => {
    const proxy = new QAMProxy({ url, logger: silentLogger });
    proxies.push(proxy);
    expect(() => proxy.useServer('bad id!')).toThrow(TypeError);
    expect(() => new QAMProxy({ url, protocol: 'qam', logger: silentLogger })).toThrow(TypeError);
    const qam = new QAMProxy({ serverId: 'x', url, protocol: 'qam', logger: silentLogger });
    proxies.push(qam);
    expect(() => qam.useServer('y')).toThrow(TypeError);
  });
});
