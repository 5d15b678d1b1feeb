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
    table.add('b', 'add', 1000, { kind: 'callback', ok: () => { throw new Error('ok broke'); }, err: undefined });
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
