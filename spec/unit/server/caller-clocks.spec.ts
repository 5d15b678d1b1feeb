import { CallerClocks } from '../../../lib/server/caller-clocks.js';

/** A request written at `writtenAt` (caller's clock) with a deadline `timeoutMs` later, arriving at `now` (server's clock). */
function request(clocks: CallerClocks, caller: string, writtenAt: number, timeoutMs: number, now: number): number | undefined {
  return clocks.deadline(`amq.rabbitmq.reply-to.${caller}`, timeoutMs, writtenAt + timeoutMs, now);
}

describe('CallerClocks', () => {
  it("takes a caller's first request at arrival plus expiration, whatever the clocks say", () => {
    const clocks = new CallerClocks();
    // The caller's clock is an hour behind; the request took 3 ms.
    expect(request(clocks, 'a', 1_000_000 - 3_600_000, 5000, 1_000_003)).toBe(1_005_003);
  });

  it('takes a later request that waited on its way at its real deadline, once an earlier one told the clocks apart', () => {
    const clocks = new CallerClocks();
    const skew = 3_600_000;
    request(clocks, 'a', 1_000_000 - skew, 5000, 1_000_002);
    // Written at 1,010,000 (server's clock), it arrives 20 s later with its whole expiration to run.
    const deadline = request(clocks, 'a', 1_010_000 - skew, 5000, 1_030_000);
    expect(deadline).toBe(1_015_002);
  });

  it('is never earlier than the real deadline when the server clock runs ahead', () => {
    const clocks = new CallerClocks();
    const ahead = 40_000;
    for (const [writtenAt, transit] of [
      [0, 5],
      [1000, 2],
      [2000, 900],
    ] as const) {
      const deadline = request(clocks, 'a', writtenAt, 1000, writtenAt + ahead + transit);
      expect(deadline).toBeGreaterThanOrEqual(writtenAt + ahead + 1000);
    }
  });

  it('keeps callers apart by direct reply-to address, and takes requests with another or none at arrival plus expiration', () => {
    const clocks = new CallerClocks();
    request(clocks, 'quick', 0, 1000, 1);
    expect(request(clocks, 'other', 0, 1000, 500)).toBe(1500);
    expect(clocks.deadline(undefined, 1000, 1000, 500)).toBe(1500);
    clocks.deadline('client_guest_ex_1', 1000, 1000, 1);
    expect(clocks.deadline('client_guest_ex_1', 1000, 1000, 500)).toBe(1500);
    expect(request(clocks, 'quick', 100, 1000, 600)).toBe(1101);
  });

  it('uses the body deadline without an expiration, and nothing without either', () => {
    const clocks = new CallerClocks();
    expect(clocks.deadline('a', undefined, 1234, 0)).toBe(1234);
    expect(clocks.deadline('a', undefined, undefined, 0)).toBeUndefined();
    expect(clocks.deadline('a', 1000, undefined, 0)).toBe(1000);
  });

  it("forgets a caller's lag after two windows, so a clock set back is trusted again", () => {
    const clocks = new CallerClocks(1000);
    request(clocks, 'a', 0, 500, 1);
    // The caller's clock is set back by 10 s: its requests now look 10 s late.
    expect(request(clocks, 'a', 500 - 10_000, 500, 510)).toBe(-8999);
    expect(request(clocks, 'a', 1500 - 10_000, 500, 1510)).toBeLessThan(2010);
    expect(request(clocks, 'a', 2600 - 10_000, 500, 2610)).toBe(3110);
  });

  it('remembers at most maxCallers callers, forgetting the longest known first', () => {
    const clocks = new CallerClocks(60_000, 2);
    request(clocks, 'a', 0, 1000, 1);
    request(clocks, 'b', 0, 1000, 1);
    request(clocks, 'c', 0, 1000, 1);
    expect(request(clocks, 'a', 100, 1000, 600)).toBe(1600);
    expect(request(clocks, 'c', 100, 1000, 600)).toBe(1101);
  });
});
