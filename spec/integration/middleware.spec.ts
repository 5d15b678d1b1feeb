/**
 * Server middleware and params validation with Standard Schema libraries, end to end over RabbitMQ.
 */
import { z } from 'zod';
import { QAMInvalidParamsException, QAMProxy, QAMRemoteException, currentCall, silentLogger, type CallContext } from '../../lib/index.js';
import { Servers, url } from './fixtures.js';

const servers = new Servers();
afterAll(() => servers.closeAll());

const proxyFor = (serverId: string): QAMProxy => new QAMProxy({ serverId, url, timeout: 10, logger: silentLogger });

describe('middleware', () => {
  const seen: string[] = [];
  let proxy: QAMProxy;

  beforeAll(async () => {
    const server = servers
      .create()
      .registerFunction((a: number, b: number) => {
        seen.push(`add ${a} ${b}`);
        return a + b;
      }, 'add')
      .registerFunction(() => {
        throw Object.assign(new Error('boom'), { code: 'BOOM' });
      }, 'fails')
      .registerFunction(() => currentCall()?.method, 'whoami')
      .use(async (call, next) => {
        seen.push(`outer before ${call.method} ${JSON.stringify(call.params)}`);
        try {
          const result = await next();
          seen.push(`outer after ${String(result)}`);
          return result;
        } catch (error) {
          seen.push(`outer saw ${(error as Error).message}`);
          throw error;
        }
      })
      .use((call, next) => {
        seen.push(`inner before ${currentCall()?.method}`);
        if (call.params[0] === 'forbidden') throw Object.assign(new Error('refused by middleware'), { code: 'FORBIDDEN' });
        if (call.params[0] === 10) call.params[0] = 100;
        if (call.method === 'whoami') return next().then((name) => `${String(name)}, wrapped`);
        return next();
      });
    await server.serve();
    proxy = proxyFor(server.serverId);
  });
  afterAll(() => proxy.close());
  beforeEach(() => seen.splice(0));

  it('runs around each call in the order added, and sees its method, params and result', async () => {
    await expect(proxy.add(2, 3)).resolves.toBe(5);
    expect(seen).toEqual(['outer before add [2,3]', 'inner before add', 'add 2 3', 'outer after 5']);
  });

  it('may change the params and the result', async () => {
    await expect(proxy.add(10, 1)).resolves.toBe(101);
    await expect(proxy.whoami()).resolves.toBe('whoami, wrapped');
  });

  it('refuses a call by throwing: the caller gets the error, the function does not run', async () => {
    const error = await proxy.add('forbidden', 1).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(QAMRemoteException);
    expect(error).toMatchObject({ code: 'REMOTE_ERROR', remoteCode: 'FORBIDDEN', message: 'refused by middleware' });
    expect(seen.some((line) => line.startsWith('add '))).toBe(false);
    expect(seen).toContain('outer saw refused by middleware');
  });

  it("sees the function's error after next()", async () => {
    await expect(proxy.fails()).rejects.toMatchObject({ remoteCode: 'BOOM' });
    expect(seen).toContain('outer saw boom');
  });

  it('refuses what is not a function', () => {
    expect(() => servers.create().use('nope' as unknown as () => unknown)).toThrow(TypeError);
  });
});

describe('middleware calling next() twice', () => {
  it('gets an error from the second call, and the function runs once', async () => {
    let runs = 0;
    const server = servers
      .create()
      .registerFunction(() => ++runs, 'count')
      .use(async (_call, next) => {
        await next();
        return next();
      });
    await server.serve();
    const proxy = proxyFor(server.serverId);
    try {
      await expect(proxy.count()).rejects.toMatchObject({ code: 'REMOTE_ERROR', message: expect.stringMatching(/next\(\) called twice/) });
      expect(runs).toBe(1);
    } finally {
      await proxy.close();
    }
  });
});

describe('params validation', () => {
  const runs: unknown[][] = [];
  let proxy: QAMProxy;
  let contexts: CallContext[];

  class Accounts {
    open(owner: string, limit: number): string {
      runs.push(['open', owner, limit]);
      return `${owner}:${limit}`;
    }
    close(owner: string): string {
      runs.push(['close', owner]);
      return owner;
    }
  }

  beforeAll(async () => {
    contexts = [];
    const server = servers
      .create()
      .registerFunction(
        (a: number, b: number) => {
          runs.push(['add', a, b]);
          return a + b;
        },
        'add',
        { params: [z.number(), z.number()] },
      )
      .registerFunction(
        (when: Date, times: number) => {
          runs.push(['schedule', when instanceof Date, times]);
          return `${when.toISOString()} x${times}`;
        },
        'schedule',
        { params: z.tuple([z.coerce.date(), z.number().int().default(1)]) },
      )
      .registerFunction(
        (name: string) => {
          runs.push(['reserve', name]);
          return name;
        },
        'reserve',
        { params: [z.string().refine(async (name) => name !== 'taken', 'name is taken')] },
      )
      .registerClass(new Accounts(), 'accounts', { params: { open: [z.string().min(1), z.number().positive()] } })
      .use((call, next) => {
        contexts.push(call);
        return next();
      });
    await server.serve();
    proxy = proxyFor(server.serverId);
  });
  afterAll(() => proxy.close());
  beforeEach(() => runs.splice(0));

  it('runs the function with params the schema accepts', async () => {
    await expect(proxy.add(2, 3)).resolves.toBe(5);
    expect(runs).toEqual([['add', 2, 3]]);
  });

  it('answers params the schema refuses with INVALID_PARAMS and the issues; nothing runs', async () => {
    const error = await proxy.add(2, 'three').catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(QAMInvalidParamsException);
    const invalid = error as QAMInvalidParamsException;
    expect(invalid.code).toBe('INVALID_PARAMS');
    expect(invalid.message).toMatch(/^Invalid params for add: 1: /);
    expect(invalid.issues).toEqual([{ message: expect.any(String), path: [1] }]);
    expect(runs).toEqual([]);
  });

  it('refuses more params than schemas', async () => {
    await expect(proxy.add(1, 2, 3)).rejects.toMatchObject({
      code: 'INVALID_PARAMS',
      message: expect.stringMatching(/at most 2 params, got 3/),
    });
    expect(runs).toEqual([]);
  });

  it("gives the function the schema's output (coerced, defaulted)", async () => {
    await expect(proxy.schedule('2020-01-02T03:04:05.000Z')).resolves.toBe('2020-01-02T03:04:05.000Z x1');
    expect(runs).toEqual([['schedule', true, 1]]);
    await expect(proxy.schedule('not a date', 2)).rejects.toMatchObject({
      code: 'INVALID_PARAMS',
      issues: [expect.objectContaining({ path: [0] })],
    });
  });

  it('waits for asynchronous schemas', async () => {
    await expect(proxy.reserve('free')).resolves.toBe('free');
    await expect(proxy.reserve('taken')).rejects.toMatchObject({
      code: 'INVALID_PARAMS',
      issues: [{ message: 'name is taken', path: [0] }],
    });
    expect(runs).toEqual([['reserve', 'free']]);
  });

  it("validates an instance's methods that have a schema, and only those", async () => {
    await expect(proxy.accounts.open('ann', 5)).resolves.toBe('ann:5');
    await expect(proxy.accounts.open('', -1)).rejects.toMatchObject({
      code: 'INVALID_PARAMS',
      issues: [expect.objectContaining({ path: [0] }), expect.objectContaining({ path: [1] })],
    });
    await expect(proxy.accounts.close(42)).resolves.toBe(42);
    expect(runs).toEqual([
      ['open', 'ann', 5],
      ['close', 42],
    ]);
  });

  it('validates inside the middleware, which sees the params as they arrived', async () => {
    contexts.splice(0);
    await expect(proxy.add('x', 1)).rejects.toMatchObject({ code: 'INVALID_PARAMS' });
    expect(contexts.map((call) => [call.method, call.params])).toEqual([['add', ['x', 1]]]);
  });

  it('refuses what is not a schema, and schemas of methods an instance does not expose', () => {
    const server = servers.create();
    expect(() => server.registerFunction(() => 1, 'one', { params: { parse: () => 1 } as never })).toThrow(
      /Option 'params' of registerFunction must be a Standard Schema/,
    );
    expect(() => server.registerFunction(() => 1, 'two', { parms: [] } as never)).toThrow(/Unknown option 'parms'.*did you mean 'params'/);
    expect(() => server.registerClass(new Accounts(), 'a', { params: { nosuch: [z.string()] } as never })).toThrow(
      /exposes no method 'nosuch'/,
    );
  });
});
