import { inspect } from 'node:util';
import { jest } from '@jest/globals';
import { QAMConnection, QAMProxy, silentLogger } from '../../../lib/index.js';

/** A proxy on a connection that is never opened: any remote call would have to open a channel. */
function offlineProxy() {
  const connection = new QAMConnection({ url: 'amqp://guest:guest@127.0.0.1:1', logger: silentLogger });
  const model = jest.spyOn(connection, 'openChannel');
  const proxy = new QAMProxy({ serverId: 'traps', connection, timeout: 1 });
  return { proxy, model };
}

describe('QAMProxy traps', () => {
  it('is not a thenable at any level, so awaiting it sends nothing', async () => {
    const { proxy, model } = offlineProxy();
    expect(await proxy).toBe(proxy);
    const instance = proxy['my_instance'];
    expect(await instance).toBe(instance);
    expect(proxy['then']).toBeUndefined();
    expect(model).not.toHaveBeenCalled();
  });

  it('prints a label and sends nothing', () => {
    const { proxy, model } = offlineProxy();
    const method = proxy['my_instance']['add'];
    expect(String(method)).toBe('QAMProxy(my_instance.add)');
    expect(`${proxy}`).toBe('QAMProxy(server traps)');
    expect(JSON.stringify({ method })).toBe('{"method":"QAMProxy(my_instance.add)"}');
    expect(inspect(method)).toBe('QAMProxy(my_instance.add)');
    expect(Object.prototype.toString.call(proxy)).toBe('[object QAMProxy]');
    expect(proxy[Symbol.iterator as unknown as string]).toBeUndefined();
    expect(proxy['constructor']).toBeUndefined();
    expect(proxy['__proto__' as string]).toBeUndefined();
    expect(proxy['asymmetricMatch']).toBeUndefined();
    expect(proxy['$$typeof']).toBeUndefined();
    expect(proxy['nodeType']).toBeUndefined();
    expect(model).not.toHaveBeenCalled();
  });

  it('survives jest matchers', () => {
    const { proxy, model } = offlineProxy();
    expect(proxy).toBeDefined();
    expect(proxy['add']).toBe(proxy['add']);
    expect(proxy).toEqual(proxy);
    expect(() => expect(proxy).toBe(proxy['add'])).toThrow();
    expect(model).not.toHaveBeenCalled();
  });

  it('cannot be modified', () => {
    const { proxy } = offlineProxy();
    expect(() => {
      (proxy as Record<string, unknown>)['add'] = 1;
    }).toThrow(TypeError);
  });

  it('rejects a deeper path locally, before connecting', async () => {
    const { proxy, model } = offlineProxy();
    await expect(proxy['a']['b']['c'](1)).rejects.toMatchObject({ code: 'INVALID_CALL' });
    await expect(proxy.invoke('a.b.c', 1)).rejects.toMatchObject({ code: 'INVALID_CALL' });
    await expect(proxy.invoke('')).rejects.toMatchObject({ code: 'INVALID_CALL' });
    expect(model).not.toHaveBeenCalled();
  });

  it('reports a deeper path to err in callback mode, after returning the uid', async () => {
    const { proxy } = offlineProxy();
    const err = jest.fn();
    const uid = proxy.callback(() => undefined, err)['a']['b']['c']();
    expect(typeof uid).toBe('string');
    expect(err).not.toHaveBeenCalled();
    await new Promise((resolve) => setImmediate(resolve));
    expect(err).toHaveBeenCalledWith(expect.objectContaining({ code: 'INVALID_CALL' }));
    expect(proxy.getCallbackState(uid)).toBe(2);
  });

  it('configures new proxies and leaves the original alone', () => {
    const { proxy } = offlineProxy();
    const slow = proxy.setTimeout(10);
    expect(slow).not.toBe(proxy);
    expect(() => proxy.setTimeout(0)).toThrow(expect.objectContaining({ code: 'INVALID_CALL' }));
    expect(() => proxy.setTimeout(Number.NaN)).toThrow(expect.objectContaining({ code: 'INVALID_CALL' }));
    expect(() => proxy.callback('nope' as never)).toThrow(expect.objectContaining({ code: 'INVALID_CALL' }));
    expect(() => proxy.withSignal({} as AbortSignal)).toThrow(expect.objectContaining({ code: 'INVALID_CALL' }));
  });

  it('rejects calls after close without connecting', async () => {
    const { proxy, model } = offlineProxy();
    await proxy.close();
    await expect(proxy['add'](1, 2)).rejects.toMatchObject({ code: 'CLOSED' });
    expect(model).not.toHaveBeenCalled();
  });

  it('refuses a bad server id at construction', () => {
    expect(() => new QAMProxy({ serverId: 'has space' })).toThrow(TypeError);
    expect(() => new QAMProxy({ serverId: '' })).toThrow(TypeError);
  });
});
