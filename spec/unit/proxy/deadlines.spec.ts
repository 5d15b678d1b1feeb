import { jest } from '@jest/globals';
import { setTimeout as delay } from 'node:timers/promises';
import { Deadlines, now } from '../../../lib/proxy/deadlines.js';

/** A table of waiting ids with their deadlines, as PendingCalls keeps it. */
function harness() {
  const waiting = new Map<string, number>();
  const expired: string[] = [];
  const deadlines = new Deadlines(
    (id) => waiting.get(id),
    (id) => {
      waiting.delete(id);
      expired.push(id);
    },
  );
  const start = (id: string, timeoutMs: number): void => {
    const deadline = now() + timeoutMs;
    waiting.set(id, deadline);
    deadlines.schedule(id, timeoutMs, deadline);
  };
  const finish = (id: string, timeoutMs: number): void => {
    waiting.delete(id);
    deadlines.finished(timeoutMs);
  };
  return { waiting, expired, deadlines, start, finish };
}

describe('Deadlines', () => {
  it('expires calls of different lengths in deadline order, skipping finished ones', async () => {
    const { expired, start, finish } = harness();
    start('long', 60);
    start('short', 20);
    start('done', 20);
    start('short2', 30);
    finish('done', 20);
    await delay(100);
    expect(expired).toEqual(['short', 'short2', 'long']);
  });

  it('honours a call re-scheduled with a later deadline, not its first one', () => {
    jest.useFakeTimers();
    try {
      const { waiting, expired, deadlines } = harness();
      const first = now() + 20;
      waiting.set('a', first);
      deadlines.schedule('a', 20, first);
      jest.advanceTimersByTime(10);
      const second = now() + 20;
      waiting.set('a', second);
      deadlines.schedule('a', 20, second);
      jest.advanceTimersByTime(15);
      expect(expired).toEqual([]);
      jest.advanceTimersByTime(30);
      expect(expired).toEqual(['a']);
    } finally {
      jest.useRealTimers();
    }
  });

  it('keeps memory to the waiting calls when most finish early', () => {
    const { waiting, start, finish, deadlines } = harness();
    for (let i = 0; i < 10_000; i++) {
      start(`c${i}`, 60_000);
      if (i % 10 !== 0) finish(`c${i}`, 60_000);
    }
    expect(waiting.size).toBe(1000);
    expect(deadlines.queued).toBeLessThan(3 * 1024);
    expect(deadlines.queued).toBeGreaterThanOrEqual(1000);
    deadlines.clear();
  });

  it('clear stops every timer', async () => {
    const { expired, start, deadlines } = harness();
    start('a', 10);
    deadlines.clear();
    await delay(30);
    expect(expired).toEqual([]);
  });

  it('one call at a time arms one timer, not one per call', () => {
    const { start, finish, deadlines } = harness();
    const armed = jest.spyOn(globalThis, 'setTimeout');
    const cleared = jest.spyOn(globalThis, 'clearTimeout');
    try {
      for (let i = 0; i < 100; i++) {
        start(`c${i}`, 60_000);
        finish(`c${i}`, 60_000);
        deadlines.idle();
      }
      expect(armed).toHaveBeenCalledTimes(1);
      expect(cleared).not.toHaveBeenCalled();
    } finally {
      armed.mockRestore();
      cleared.mockRestore();
      deadlines.clear();
    }
  });

  it('an idle timer keeps no process alive; the next call references it again', () => {
    const timers = (): number => process.getActiveResourcesInfo().filter((kind) => kind === 'Timeout').length;
    const before = timers();
    const { start, finish, deadlines } = harness();
    start('a', 60_000);
    expect(timers()).toBe(before + 1);
    finish('a', 60_000);
    deadlines.idle();
    expect(timers()).toBe(before);
    start('b', 60_000);
    expect(timers()).toBe(before + 1);
    deadlines.clear();
    expect(timers()).toBe(before);
  });

  it('calls started after an idle spell expire on time, and the idle ones never', async () => {
    const { waiting, expired, start, finish, deadlines } = harness();
    start('early', 20);
    finish('early', 20);
    deadlines.idle();
    await delay(10);
    start('late', 20);
    await delay(15);
    // The timer armed for 'early' went off and found 'late' not due yet.
    expect(expired).toEqual([]);
    await delay(40);
    expect(expired).toEqual(['late']);
    expect(waiting.size).toBe(0);
  });
});
