import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { QAMProxy, silentLogger } from '../../lib/index.js';
import { qamClientNames } from '../../lib/protocols/naming.js';
import { queueExists, uniqueName } from '../support/broker.js';
import { Servers, url } from './fixtures.js';
import { buildScripts, type ScriptBuild } from './processes.js';

/** Runs the fixture; resolves with its exit code and output once it ends, or `undefined` if it had not after `withinMs`. */
function run(build: ScriptBuild, args: string[], withinMs: number, onLine?: (line: string) => void) {
  const child = spawn(process.execPath, [build.script('spec/fixtures/keep-alive.ts'), ...args], {
    env: { ...process.env, QAM_URL: url },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString();
    for (const line of chunk.toString().split('\n')) if (line !== '') onLine?.(line);
  });
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  const ended = Promise.race([exited, new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), withinMs).unref())]);
  return {
    ended: ended.then((code) => ({ code, output: () => output })),
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

describe('what keeps the process alive', () => {
  const servers = new Servers();
  let build: ScriptBuild;

  beforeAll(async () => {
    build = await buildScripts(['spec/fixtures/keep-alive.ts']);
  }, 120_000);

  afterAll(async () => {
    await servers.closeAll();
    await build?.remove();
  });

  it('a proxy that was never closed lets its process exit once no call is pending, not before', async () => {
    const server = servers
      .create()
      .registerFunction((a: number, b: number) => a + b, 'add')
      .registerFunction(async (ms: number) => {
        await new Promise((resolve) => setTimeout(resolve, ms));
        return 'done';
      }, 'slow');
    await server.serve();
    const child = run(build, ['proxy', server.serverId], 25_000);
    const { code, output } = await child.ended;
    await child.kill();
    // The pending callback call held the process until its result came: it printed, then exited 0.
    expect({ code, output: output() }).toEqual({ code: 0, output: 'add 5\nmain done\nslow done\n' });
  }, 40_000);

  it("a script's last `await proxy.close()` finishes before the process ends: a QAM reply queue is deleted", async () => {
    const server = servers.create({ protocol: 'qam' }).registerFunction((a: number, b: number) => a + b, 'add');
    await server.serve();
    const clientId = uniqueName('keepalive');
    const child = run(build, ['close-qam', server.serverId, clientId], 25_000);
    const { code, output } = await child.ended;
    await child.kill();
    expect({ code, output: output() }).toEqual({ code: 0, output: 'add 5\nclosed\n' });
    expect(await queueExists(qamClientNames(clientId).queue)).toBe(false);
  }, 40_000);

  it('a serving server keeps its process alive (an idle proxy beside it does not end it)', async () => {
    const serverId = uniqueName('keepalive');
    let ready: () => void = () => undefined;
    const isReady = new Promise<void>((resolve) => (ready = resolve));
    const child = run(build, ['server', serverId], 60_000, (line) => line === 'READY 2' && ready());
    const proxy = new QAMProxy<{ add: (a: number, b: number) => number }>({ serverId, url, logger: silentLogger, timeout: 10 });
    try {
      await Promise.race([isReady, child.ended.then(({ output }) => Promise.reject(new Error(`ended before READY: ${output()}`)))]);
      // Long after its main code returned, it still answers.
      await new Promise((resolve) => setTimeout(resolve, 2000));
      await expect(proxy.add(20, 22)).resolves.toBe(42);
    } finally {
      await proxy.close();
      await child.kill();
      const cleanup = servers.create({ serverId });
      await cleanup.serve();
    }
  }, 60_000);
});
