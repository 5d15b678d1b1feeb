/**
 * Property-based fuzzing against RabbitMQ, a short run (spec/support/fuzz-broker.ts; the long run
 * is scripts/fuzz.ts). Fuzzed requests of both protocols, published with raw amqplib to a real
 * QAMServer: every one with a reply address is answered once, with an error or the tagged result
 * of a registered function; canaries never run; no prototype is polluted; the server keeps its
 * connection and answers normal calls after. Fuzzed replies to a real QAMProxy of each transport,
 * each followed by a proper one: each call settles with the outcome of the first reply that names
 * it; the proxy keeps working. Replay a failure with QAM_FUZZ_SEED=<seed of its batch>.
 */
import { describe, expect, it } from '@jest/globals';
import { brokerUrl } from '../support/broker.js';
import { fuzzProxy, fuzzServer, type ProxyTransport } from '../support/fuzz-broker.js';
import { expectCleanServerRun } from '../support/fuzz-checks.js';

const url = brokerUrl();
const seed = Number(process.env['QAM_FUZZ_SEED'] ?? Date.now() % 2 ** 31);

describe('a QAMServer fed fuzzed requests through RabbitMQ', () => {
  it('answers each request with a reply address, runs only what is registered, pollutes nothing and keeps serving', async () => {
    const figures = await fuzzServer({ url, messages: 400, seed, batch: 200, replyTimeoutMs: 30_000 });
    expectCleanServerRun(figures);
    expect(figures.registeredCalls).toBeGreaterThan(0);
  }, 150_000);
});

describe.each<[ProxyTransport, number]>([
  ['direct', 1],
  ['callme', 2],
  ['qam', 3],
])('a QAMProxy (%s) fed fuzzed replies through RabbitMQ', (transport, index) => {
  it('settles each call with the outcome its reply stands for and keeps working', async () => {
    const figures = await fuzzProxy({ url, transport, calls: 300, seed: seed + index * 1_000_000 });
    expect(figures.problems).toEqual([]);
    expect(figures).toMatchObject({ calls: 300, wrongOutcome: 0, hangs: 0, pollution: [], alive: true });
    expect(figures.values + figures.errors + figures.followUps).toBe(300);
    expect(figures.values).toBeGreaterThan(0);
    expect(figures.errors).toBeGreaterThan(0);
  }, 120_000);
});
