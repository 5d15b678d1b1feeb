/**
 * At most once within a window (`dedupe`), on RabbitMQ and on the embedded broker: a call re-sent
 * by `retry` after a timeout, and a request the broker delivers again after the server's
 * connection was cut mid-call, run their function once; without `dedupe` they run again.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { silentLogger, type QAMServer, type QAMServerOptions } from '../../lib/index.js';
import { waitUntil } from '../support/broker.js';
import { brokers } from '../support/brokers.js';

const fastReconnect = { reconnectDelay: { min: 0.05, max: 0.5 }, logger: silentLogger };

describe.each(brokers)('on %s', (_name, useBroker) => {
  const broker = useBroker();

  /** A server whose `slow(ms, tag)` counts its runs by tag. */
  async function slowServer(options: Partial<QAMServerOptions>): Promise<{ server: QAMServer; runs: Map<string, number> }> {
    const runs = new Map<string, number>();
    const server = broker.server({ workers: 32, ...options });
    server.registerFunction(async (ms: number, tag: string) => {
      runs.set(tag, (runs.get(tag) ?? 0) + 1);
      await delay(ms);
      return tag;
    }, 'slow');
    await server.serve();
    return { server, runs };
  }

  it.each([
    ['without dedupe runs again', undefined],
    ['with dedupe runs once', true],
  ] as const)('a call retried after timeouts while its first attempt runs: %s', async (_title, dedupe) => {
    const { server, runs } = await slowServer(dedupe === undefined ? {} : { dedupe });
    const proxy = broker.proxy({ serverId: server.serverId, logger: silentLogger });
    // Attempts time out every 0.3 s while the function runs 1.5 s: several go out under one uid.
    await expect(proxy.setTimeout(0.3).retry(20)['slow'](1500, 'job')).resolves.toBe('job');
    if (dedupe === undefined) {
      expect(runs.get('job')).toBeGreaterThan(1);
      expect(server.stats().deduplicated).toBe(0);
    } else {
      expect(runs.get('job')).toBe(1);
      expect(server.stats().deduplicated).toBeGreaterThan(0);
    }
    await proxy.close();
  });

  it.each([
    ['without dedupe runs again', undefined],
    ['with dedupe runs once', true],
  ] as const)('a request delivered again after its server’s connection was cut mid-call (ack afterReply): %s', async (_title, dedupe) => {
    const faulty = await broker.faulty();
    const { server, runs } = await slowServer({ ...faulty.options, ...fastReconnect, ...(dedupe === undefined ? {} : { dedupe }) });
    const proxy = broker.proxy({ serverId: server.serverId, logger: silentLogger, timeout: 20 });
    await expect(proxy['slow'](0, 'warm')).resolves.toBe('warm');
    const call = proxy['slow'](1500, 'job');
    await waitUntil(() => runs.get('job') === 1, { timeoutMs: 10_000, message: 'the call running' });
    faulty.cut();
    await expect(call).resolves.toBe('job');
    // The broker delivers the request again once the server consumes again: wait until it was
    // answered too (warm-up, first run, redelivery).
    await waitUntil(() => server.stats().served + server.stats().failed >= 3, {
      timeoutMs: 15_000,
      message: 'the redelivered request answered',
    });
    if (dedupe === undefined) {
      expect(runs.get('job')).toBe(2);
    } else {
      expect(runs.get('job')).toBe(1);
      expect(server.stats().deduplicated).toBe(1);
    }
    await proxy.close();
  });
});
