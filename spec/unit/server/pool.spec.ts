import { WorkerPool } from '../../../lib/server/pool.js';

describe('WorkerPool', () => {
  it('runs at most size tasks at once and starts waiting ones in order as workers free up', async () => {
    const errors: unknown[] = [];
    const pool = new WorkerPool(2, (error) => errors.push(error));
    const started: number[] = [];
    const finish: Array<() => void> = [];
    for (let i = 0; i < 5; i++) {
      pool.run((done) => {
        started.push(i);
        finish.push(done);
      });
    }
    expect(started).toEqual([0, 1]);
    expect(pool.active).toBe(2);
    finish[1]?.();
    expect(started).toEqual([0, 1, 2]);
    finish[0]?.();
    expect(started).toEqual([0, 1, 2, 3]);
    const idle = pool.idle();
    finish[2]?.();
    finish[3]?.();
    finish[4]?.();
    await idle;
    expect(pool.active).toBe(0);
    expect(errors).toEqual([]);
  });

  it('starts 100,000 waiting tasks that end at once without growing the stack', () => {
    const pool = new WorkerPool(1, (error) => {
      throw error;
    });
    let hold: () => void = () => undefined;
    pool.run((done) => (hold = done));
    let ran = 0;
    for (let i = 0; i < 100_000; i++) {
      pool.run((done) => {
        ran++;
        done();
      });
    }
    expect(ran).toBe(0);
    hold();
    expect(ran).toBe(100_000);
    expect(pool.active).toBe(0);
  });

  it('counts a second done of the same task once', () => {
    const pool = new WorkerPool(1, () => undefined);
    let first: () => void = () => undefined;
    pool.run((done) => (first = done));
    let second = false;
    pool.run(() => (second = true));
    first();
    first();
    expect(second).toBe(true);
    expect(pool.active).toBe(1);
  });

  it('frees the worker of a task that throws and reports the error', () => {
    const errors: unknown[] = [];
    const pool = new WorkerPool(1, (error) => errors.push(error));
    pool.run(() => {
      throw new Error('boom');
    });
    expect(pool.active).toBe(0);
    expect(errors).toEqual([new Error('boom')]);
    let ran = false;
    pool.run((done) => {
      ran = true;
      done();
    });
    expect(ran).toBe(true);
  });

  it('refuses a size that is not a positive integer', () => {
    expect(() => new WorkerPool(0, () => undefined)).toThrow(TypeError);
    expect(() => new WorkerPool(1.5, () => undefined)).toThrow(TypeError);
  });
});
