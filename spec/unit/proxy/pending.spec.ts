import { jest } from '@jest/globals';
import { CallbackState, PendingCalls } from '../../../lib/proxy/pending.js';
import { silentLogger, type Logger } from '../../../lib/logger.js';

function promiseCall(table: PendingCalls, id: string, timeoutMs = 1000, signal?: AbortSignal): Promise<unknown> {
  return new Promise((resolve, reject) => table.add(id, 'add', timeoutMs, { kind: 'promise', resolve, reject }, signal));
}

describe('PendingCalls', () => {
  it('settles a call exactly once and forgets it', async () => {
    const table = new PendingCalls(silentLogger);
    const result = promiseCall(table, 'a');
    expect(table.settle('a', { value: 5 })).toBe(true);
    expect(table.settle('a', { value: 6 })).toBe(false);
    await expect(result).resolves.toBe(5);
    expect(table.size).toBe(0);
  });

  it('times out with QAMTimeoutException and then drops the late reply', async () => {
    const table = new PendingCalls(silentLogger);
    await expect(promiseCall(table, 'a', 20)).rejects.toMatchObject({ code: 'TIMEOUT', name: 'QAMTimeoutException' });
    expect(table.settle('a', { value: 1 })).toBe(false);
    expect(table.size).toBe(0);
  });

  it('aborts at once through a signal, also one aborted before the call', async () => {
    const table = new PendingCalls(silentLogger);
    const controller = new AbortController();
    const call = promiseCall(table, 'a', 10_000, controller.signal);
    controller.abort();
    await expect(call).rejects.toMatchObject({ code: 'ABORTED' });
    await expect(promiseCall(table, 'b', 10_000, AbortSignal.abort())).rejects.toMatchObject({ code: 'ABORTED' });
    expect(table.size).toBe(0);
  });

  it('reports QAM states 0, 1 and 2 around an async ok callback', async () => {
    const table = new PendingCalls(silentLogger);
    let finish!: () => void;
    const ok = jest.fn(() => new Promise<void>((resolve) => (finish = resolve)));
    table.add('a', 'add', 1000, { kind: 'callback', ok, err: undefined });
    expect(table.state('a')).toBe(CallbackState.waiting);
    expect(table.waitingCallbacks).toBe(1);
    table.settle('a', { value: 3 });
    expect(ok).toHaveBeenCalledWith(3);
    expect(table.state('a')).toBe(CallbackState.processing);
    finish();
    await new Promise((resolve) => setImmediate(resolve));
    expect(table.state('a')).toBe(CallbackState.finished);
    expect(table.waitingCallbacks).toBe(0);
    expect(table.state('never-seen')).toBe(CallbackState.finished);
  });

  it('logs a failure without err and an exception thrown by ok, disturbing nothing', () => {
    const errors: string[] = [];
    const logger: Logger = { ...silentLogger, error: (message) => errors.push(message) };
    const table = new PendingCalls(logger);
    table.add('a', 'add', 1000, { kind: 'callback', ok: () => undefined, err: undefined });
    table.add('b', 'add', 1000, {
      kind: 'callback',
      ok: () => {
        throw new Error('ok broke');
      },
      err: undefined,
    });
    table.settle('a', new Error('remote broke'));
    table.settle('b', { value: 1 });
    expect(errors).toEqual([expect.stringContaining('remote broke'), expect.stringContaining('ok broke')]);
    expect(table.waitingCallbacks).toBe(0);
    expect(table.state('b')).toBe(CallbackState.finished);
  });

  it('settleAll ends every call with the given error', async () => {
    const table = new PendingCalls(silentLogger);
    const calls = [promiseCall(table, 'a'), promiseCall(table, 'b')];
    table.settleAll(new Error('gone'));
    await expect(Promise.allSettled(calls)).resolves.toEqual([
      { status: 'rejected', reason: new Error('gone') },
      { status: 'rejected', reason: new Error('gone') },
    ]);
    expect(table.size).toBe(0);
  });
});

/** A value that throws whenever it is looked at: every trap of its Proxy throws. */
function hostileValue(): object {
  const trap = (): never => {
    throw new Error('trap');
  };
  return new Proxy({}, { get: trap, getPrototypeOf: trap, has: trap, ownKeys: trap, getOwnPropertyDescriptor: trap, apply: trap });
}

/** What an `ok` or `err` may do to the caller, each of which is logged and ends its call. */
const hostileCallbacks: [string, () => unknown][] = [
  [
    'throws an Error',
    () => {
      throw new Error('callback broke');
    },
  ],
  [
    'throws a Proxy whose traps throw',
    () => {
      throw hostileValue();
    },
  ],
  [
    'returns a thenable whose then() throws',
    () => ({
      then: () => {
        throw new Error('then broke');
      },
    }),
  ],
  [
    'returns a thenable whose then() throws a Proxy whose traps throw',
    () => ({
      then: () => {
        throw hostileValue();
      },
    }),
  ],
  [
    'returns a thenable whose then getter throws',
    () => ({
      get then(): never {
        throw new Error('then getter broke');
      },
    }),
  ],
  ['returns a rejected promise of a Proxy whose traps throw', () => Promise.reject(hostileValue())],
  ['returns a Proxy whose traps throw', () => hostileValue()],
];

describe('PendingCalls with hostile callbacks', () => {
  afterEach(() => {
    jest.useRealTimers();
  });

  it.each(hostileCallbacks)('logs an ok that %s on the reply path, throwing nothing at the caller', async (_name, ok) => {
    const errors: string[] = [];
    const table = new PendingCalls({ ...silentLogger, error: (message) => errors.push(message) });
    table.add('a', 'add', 1000, { kind: 'callback', ok, err: undefined });
    const other = promiseCall(table, 'b');
    expect(() => table.settle('a', { value: 1 })).not.toThrow();
    expect(table.settle('b', { value: 2 })).toBe(true);
    await expect(other).resolves.toBe(2);
    await new Promise((resolve) => setImmediate(resolve));
    expect(errors).toEqual([expect.stringContaining('callback of call a to add threw')]);
    expect(table.waitingCallbacks).toBe(0);
    expect(table.state('a')).toBe(CallbackState.finished);
  });

  it.each(hostileCallbacks)('logs an err that %s on the timeout path, and the other calls still time out', async (_name, err) => {
    jest.useFakeTimers();
    const errors: string[] = [];
    const table = new PendingCalls({ ...silentLogger, error: (message) => errors.push(message) });
    table.add('a', 'add', 100, { kind: 'callback', ok: () => undefined, err });
    const others = [promiseCall(table, 'b', 100), promiseCall(table, 'c', 100)];
    expect(() => jest.advanceTimersByTime(200)).not.toThrow();
    await expect(Promise.allSettled(others)).resolves.toEqual([
      { status: 'rejected', reason: expect.objectContaining({ code: 'TIMEOUT' }) },
      { status: 'rejected', reason: expect.objectContaining({ code: 'TIMEOUT' }) },
    ]);
    await jest.runAllTimersAsync();
    expect(errors).toEqual([expect.stringContaining('callback of call a to add threw')]);
    expect(table.size).toBe(0);
    expect(table.waitingCallbacks).toBe(0);
  });

  it('keeps a callback whose thenable never settles processing, disturbing no other call', async () => {
    const table = new PendingCalls(silentLogger);
    table.add('a', 'add', 1000, { kind: 'callback', ok: () => ({ then: () => undefined }), err: undefined });
    table.settle('a', { value: 1 });
    const other = promiseCall(table, 'b');
    table.settle('b', { value: 2 });
    await expect(other).resolves.toBe(2);
    expect(table.state('a')).toBe(CallbackState.processing);
    expect(table.size).toBe(0);
  });
});
