import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { QAMProxy, silentLogger } from '../../lib/index.js';
import type { Api, Served } from '../../samples/server.js';
import { deleteExchanges, deleteQueues, listQueueInfo, queueMessageCount, uniqueName, waitUntil } from '../support/broker.js';
import { Servers, url } from './fixtures.js';
import { ServerProcess, buildSampleServer, type SampleBuild } from './processes.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

let build: SampleBuild;
const processes: ServerProcess[] = [];
const serverIds: string[] = [];
const proxies: Array<{ close(): Promise<void> }> = [];

beforeAll(async () => {
  build = await buildSampleServer();
}, 60_000);

afterAll(async () => {
  await Promise.all(proxies.map((proxy) => proxy.close()));
  await Promise.all(processes.map((child) => child.stop()));
  await deleteQueues(serverIds.map((id) => `server_${id}_queue`));
  await deleteExchanges(serverIds.map((id) => `server_${id}_ex`));
  await build.remove();
});

/** A server id for this file's processes; their durable queues are deleted after the file. */
function processServerId(prefix: string): string {
  const id = uniqueName(prefix);
  serverIds.push(id);
  return id;
}

async function startProcess(serverId: string, env: Record<string, string> = {}): Promise<ServerProcess> {
  const child = await ServerProcess.start(build, serverId, env);
  processes.push(child);
  return child;
}

function proxyFor(serverId: string, timeout: number): QAMProxy<Api> {
  const proxy = new QAMProxy<Api>({ serverId, url, logger: silentLogger, timeout });
  proxies.push(proxy);
  return proxy;
}

async function unacknowledged(serverId: string): Promise<number> {
  return (await listQueueInfo()).find((queue) => queue.name === `server_${serverId}_queue`)?.messagesUnacknowledged ?? 0;
}

describe('a server process', () => {
  it('on SIGTERM with 20 calls in flight answers all 20, then exits 0', async () => {
    const serverId = processServerId('term');
    const server = await startProcess(serverId, { QAM_WORKERS: '32' });
    const proxy = proxyFor(serverId, 10);
    const calls = Array.from({ length: 20 }, () => proxy.sleep(1));
    // The stats call is running too while it counts.
    await waitUntil(async () => (await proxy.stats()).active === 21, { message: '20 calls running' });
    server.signal('SIGTERM');
    const results = await Promise.all(calls);
    expect(results).toEqual(Array.from({ length: 20 }, () => ({ pid: server.pid, redelivered: false })));
    expect(await server.exited).toEqual({ code: 0, signal: null });
    expect(server.output).toContain('CLOSED');
    expect(await queueMessageCount(`server_${serverId}_queue`)).toBe(0);
  });

  it('killed mid-call loses no call: the other server runs the redelivered requests', async () => {
    const serverId = processServerId('kill');
    const [doomed, survivor] = await Promise.all([startProcess(serverId), startProcess(serverId)]);
    const proxy = proxyFor(serverId, 30);
    // Calls long enough that a slow rabbitmqctl (seconds on a loaded machine) still sees all 10 running.
    const calls = Array.from({ length: 10 }, () => proxy.sleep(6));
    await waitUntil(async () => (await unacknowledged(serverId)) === 10, { message: 'all 10 calls delivered', timeoutMs: 30_000 });
    doomed.signal('SIGKILL');
    const results: Served[] = await Promise.all(calls);
    expect(results.every((result) => result.pid === survivor.pid)).toBe(true);
    const redelivered = results.filter((result) => result.redelivered).length;
    expect(redelivered).toBeGreaterThanOrEqual(1);
    expect(redelivered).toBeLessThanOrEqual(9);
    expect(await doomed.exited).toEqual({ code: null, signal: 'SIGKILL' });
    expect(await queueMessageCount(`server_${serverId}_queue`)).toBe(0);
    survivor.signal('SIGTERM');
    expect(await survivor.exited).toEqual({ code: 0, signal: null });
  });
});

describe('three server processes on one id', () => {
  it('each take a share of 3,000 calls', async () => {
    const serverId = processServerId('share');
    const servers = await Promise.all([startProcess(serverId), startProcess(serverId), startProcess(serverId)]);
    const proxy = proxyFor(serverId, 20);
    const results = await Promise.all(Array.from({ length: 3000 }, () => proxy.whoami()));
    const counts = servers.map((server) => results.filter((result) => result.pid === server.pid).length);
    console.info(`3,000 calls over three server processes: ${counts.join(', ')}`);
    expect(counts.reduce((sum, count) => sum + count, 0)).toBe(3000);
    for (const count of counts) expect(count).toBeGreaterThanOrEqual(300);
    for (const server of servers) server.signal('SIGTERM');
    for (const server of servers) expect(await server.exited).toEqual({ code: 0, signal: null });
  });
});

describe('a soak of 100,000 calls through one proxy and one server', () => {
  const servers = new Servers();
  afterAll(() => servers.closeAll());

  it('keeps the heap flat', async () => {
    const server = servers.create({ workers: 64 }).registerFunction((x: number, y: number) => x + y, 'add');
    await server.serve();
    const proxy = new QAMProxy<{ add(x: number, y: number): number }>({
      serverId: server.serverId,
      url,
      logger: silentLogger,
      timeout: 30,
    });
    proxies.push(proxy);
    const batch = 1000;
    const run = async (calls: number): Promise<void> => {
      for (let done = 0; done < calls; done += batch) {
        const sums = await Promise.all(Array.from({ length: batch }, (_, i) => proxy.add(done, i)));
        if (sums[batch - 1] !== done + batch - 1) throw new Error(`wrong sum ${sums[batch - 1]}`);
      }
    };
    const heapAfterGc = (): number => {
      gc();
      return process.memoryUsage().heapUsed;
    };
    const started = Date.now();
    await run(20_000);
    const at20k = heapAfterGc();
    await run(80_000);
    const at100k = heapAfterGc();
    const seconds = (Date.now() - started) / 1000;
    const mib = (bytes: number): string => (bytes / 1024 / 1024).toFixed(2);
    console.info(
      `soak: 100,000 calls in ${seconds.toFixed(1)} s (${Math.round(100_000 / seconds)}/s); heap after gc ${mib(at20k)} MiB at 20k calls, ${mib(at100k)} MiB at 100k (${mib(at100k - at20k)} MiB more)`,
    );
    expect(server.stats()).toMatchObject({ served: 100_000, failed: 0, active: 0 });
    expect(proxy.getStats()).toMatchObject({ pending: 0, droppedReplies: 0 });
    expect(at100k - at20k).toBeLessThan(4 * 1024 * 1024);
  }, 120_000);
});
