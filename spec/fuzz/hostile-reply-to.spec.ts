/**
 * The fuzzing of broker.spec.ts with reply_to values that look like reply routes but that the
 * broker refuses: malformed direct reply-to addresses (on RabbitMQ 3.10 the broker closes the
 * replying connection, 541) and callme client exchanges that do not exist (404 on the replying
 * channel). Issue 10 item 1: such a request must run at most once, cost the server neither its
 * connection nor its consuming channel, and leave every other request answered.
 */
import { describe, it } from '@jest/globals';
import { brokerUrl } from '../support/broker.js';
import { fuzzServer } from '../support/fuzz-broker.js';
import { expectCleanServerRun } from '../support/fuzz-checks.js';

const url = brokerUrl();
const seed = Number(process.env['QAM_FUZZ_SEED'] ?? Date.now() % 2 ** 31);

describe('a QAMServer fed fuzzed requests with hostile reply_to values through RabbitMQ', () => {
  it('runs each at most once, answers every other request, and keeps its connection', async () => {
    const figures = await fuzzServer({ url, messages: 400, seed, batch: 200, replyTimeoutMs: 30_000, hostileReplyTo: true });
    expectCleanServerRun(figures);
  }, 150_000);
});
