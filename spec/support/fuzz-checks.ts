/** Assertions shared by the fuzz specs (jest only; scripts/fuzz.ts prints the figures instead). */
import { expect } from '@jest/globals';
import type { ServerFuzzFigures } from './fuzz-broker.js';

/**
 * What every run of fuzzServer must show: no problem, every request that must be answered
 * answered once and correctly, no canary run, nothing polluted, no connection or channel lost,
 * the server alive, and enough requests that had to be answered to mean something.
 */
export function expectCleanServerRun(figures: ServerFuzzFigures): void {
  expect(figures.problems).toEqual([]);
  expect(figures).toMatchObject({
    missing: 0,
    duplicates: 0,
    stray: 0,
    malformed: 0,
    wrongMethod: 0,
    canaryCalls: 0,
    pollution: [],
    serverConnectionLosses: 0,
    publisherChannelLosses: 0,
    unpublishable: 0,
    alive: true,
  });
  expect(figures.registeredCalls).toBeLessThanOrEqual(figures.messages);
  expect(figures.mustReply).toBeGreaterThan(100);
}
