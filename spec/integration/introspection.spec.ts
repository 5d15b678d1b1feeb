import { z } from 'zod';
import { QAMInvalidCallException, QAMMethodNotFoundException, type ServerDescription } from '../../lib/index.js';
import { brokers } from '../support/brokers.js';

class Calculator {
  mul(a: number, b: number): number {
    return a * b;
  }
  negate(a: number): number {
    return -a;
  }
}

/** Introspection: `proxy.getRemoteMethods()` answered by the server itself (a request of kind `describe`). */
describe.each(brokers)('introspection on %s', (_name, useBroker) => {
  const broker = useBroker();

  it('lists every method with its parameter count and the descriptions given at registration', async () => {
    const server = broker
      .server({ workers: 1 })
      .registerFunction((a: number, b: number) => a + b, 'add', { description: 'adds two numbers', params: [z.number(), z.number()] })
      .registerFunction((name: string, greeting = 'hello') => `${greeting} ${name}`, 'greet')
      .registerClass(new Calculator(), 'calc', { descriptions: { mul: 'multiplies' } })
      .registerWorkerFunction(new URL('../fixtures/cpu-work.mjs', import.meta.url), 'fib');
    await server.serve();
    const proxy = broker.proxy<{ add(a: number, b: number): number }>({ serverId: server.serverId, timeout: 10 });
    const description: ServerDescription = await proxy.getRemoteMethods();
    expect(description).toEqual({
      serverId: server.serverId,
      instanceId: server.instanceId,
      methods: [
        { name: 'add', params: 2, description: 'adds two numbers' },
        { name: 'calc.mul', params: 2, description: 'multiplies' },
        { name: 'calc.negate', params: 1 },
        // The worker thread's module is never imported here: its parameter count is unknown.
        { name: 'fib' },
        // A parameter with a default is not counted (the function's length).
        { name: 'greet', params: 1 },
      ],
    });
    // Answered by the server itself: no worker taken, no middleware, no call counted per method.
    expect(server.stats().methods).toEqual({});
    expect(await proxy.add(2, 3)).toBe(5);
  });

  it('is answered beside a running call, through the proxy settings (useServer, timeout)', async () => {
    let release = (): void => undefined;
    const server = broker.server({ workers: 2 }).registerFunction(() => new Promise<void>((resolve) => (release = resolve)), 'hold');
    await server.serve();
    const proxy = broker.proxy({ timeout: 10 });
    const other = proxy.useServer(server.serverId);
    const held = other['hold']();
    try {
      while (server.stats().active < 1) await new Promise((resolve) => setTimeout(resolve, 10));
      await expect(other.setTimeout(5).getRemoteMethods()).resolves.toMatchObject({ methods: [{ name: 'hold', params: 0 }] });
    } finally {
      release();
      await held;
    }
  });

  it('can be turned off: callers get METHOD_NOT_FOUND, as from a server that predates it', async () => {
    const server = broker.server({ introspection: false }).registerFunction((a: number) => a, 'echo');
    await server.serve();
    const proxy = broker.proxy({ serverId: server.serverId, timeout: 10 });
    const refused = proxy.getRemoteMethods();
    await expect(refused).rejects.toBeInstanceOf(QAMMethodNotFoundException);
    await expect(refused).rejects.toThrow(`Server ${server.serverId} does not answer introspection (its option introspection is false)`);
    expect(await proxy['echo'](1)).toBe(1);
  });

  it("a remote function named like the helper is reached with invoke; QAM's protocol has no introspection", async () => {
    const server = broker.server({ protocol: ['native', 'qam'] }).registerFunction(() => 'remote', 'getRemoteMethods');
    await server.serve();
    const proxy = broker.proxy<{ getRemoteMethods(): string }>({ serverId: server.serverId, timeout: 10 });
    expect(await proxy.invoke('getRemoteMethods')).toBe('remote');
    await expect(proxy.getRemoteMethods()).resolves.toMatchObject({ methods: [{ name: 'getRemoteMethods', params: 0 }] });
    const qam = broker.proxy({ serverId: server.serverId, protocol: 'qam', timeout: 10 });
    await expect(qam.getRemoteMethods()).rejects.toBeInstanceOf(QAMInvalidCallException);
    const unbound = broker.proxy({ timeout: 10 });
    await expect(unbound.getRemoteMethods()).rejects.toBeInstanceOf(QAMInvalidCallException);
  });

  it('refuses descriptions of methods the instance does not expose', () => {
    const server = broker.server();
    expect(() => server.registerClass(new Calculator(), 'calc', { descriptions: { nosuch: 'x' } as never })).toThrow(
      "registerClass: 'calc' exposes no method 'nosuch' to describe",
    );
    expect(() => server.registerFunction(() => 1, 'one', { description: 1 as never })).toThrow(TypeError);
  });
});
