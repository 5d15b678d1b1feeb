import { QAMProxy, silentLogger, type QAMServer } from '../../lib/index.js';
import { brokers } from '../support/brokers.js';
import { recordingLogger } from './fixtures.js';

/**
 * A callme proxy's reply exchange is its own and goes away with it. A reply published to it after
 * that meets a 404, which closes the server's reply channel, and the broker drops every reply
 * published on that channel after it: the server must publish those again.
 */
describe.each(brokers)('on %s', (_name, useBroker) => {
  const broker = useBroker();
  const servers = { create: (options: Parameters<typeof broker.server>[0] = {}): QAMServer => broker.server(options) };
  let url: string;
  beforeAll(() => {
    url = broker.url;
  });
  describe('callme replies when a proxy has gone', () => {
    it("a reply to a gone proxy's exchange does not lose the replies published right after it", async () => {
      const waiting: Array<() => void> = [];
      const logger = recordingLogger();
      const server = servers
        .create({ workers: 100, logger })
        .registerFunction((value: number) => new Promise<number>((resolve) => waiting.push(() => resolve(value))), 'wait')
        .registerFunction(() => {
          for (const release of waiting.splice(0)) release();
        }, 'release');
      await server.serve();
      type Api = { wait(value: number): number; release(): void };
      const gone = new QAMProxy<Api>({ serverId: server.serverId, url, replies: 'callme', timeout: 10, logger: silentLogger });
      const staying = new QAMProxy<Api>({ serverId: server.serverId, url, replies: 'callme', timeout: 5, logger: silentLogger });
      const releaser = new QAMProxy<Api>({ serverId: server.serverId, url, logger: silentLogger });
      try {
        const lost = gone.wait(-1).catch((error: unknown) => error);
        while (waiting.length < 1) await new Promise((resolve) => setTimeout(resolve, 10));
        const calls = Array.from({ length: 50 }, (_, i) => staying.wait(i));
        while (waiting.length < 51) await new Promise((resolve) => setTimeout(resolve, 10));
        await gone.close();
        await expect(lost).resolves.toMatchObject({ code: 'CLOSED' });

        // All 51 replies are published in one turn, the one to the gone exchange first.
        await releaser.release();
        await expect(Promise.all(calls)).resolves.toEqual(Array.from({ length: 50 }, (_, i) => i));
        expect(logger.lines.some((line) => line.includes('reply channel closed by the broker') && line.includes('NOT_FOUND'))).toBe(true);
        const next = staying.wait(7);
        while (waiting.length < 1) await new Promise((resolve) => setTimeout(resolve, 10));
        await releaser.release();
        await expect(next).resolves.toBe(7);
      } finally {
        await Promise.all([staying.close(), releaser.close()]);
      }
    });
  });
});
