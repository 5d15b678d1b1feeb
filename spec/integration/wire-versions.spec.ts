/**
 * Wire versions: the last release before the `x-qam-wire` header (wire 1), built from the git
 * history, against this one (wire 2), both ways, and the rules for what a peer does with a
 * message of a version or kind it does not know.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { QAMMethodNotFoundException, QAMProxy, currentCall, silentLogger } from '../../lib/index.js';
import { uniqueName, waitUntil } from '../support/broker.js';
import { buildRelease, wire1Release, type ReleaseBuild } from '../support/old-release.js';
import { Servers, rawChannel, url } from './fixtures.js';

const peerScript = fileURLToPath(new URL('../fixtures/wire-peer.mjs', import.meta.url));

let release: ReleaseBuild;
const servers = new Servers();
const children: ChildProcess[] = [];

beforeAll(async () => {
  release = await buildRelease(wire1Release);
}, 300_000);

afterEach(() => servers.closeAll());

afterAll(async () => {
  await Promise.all(
    children.map(async (child) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.stdin?.end();
      await exited;
    }),
  );
});

/** Starts the release's server (add, remember, recall, fail) in a process of its own. */
async function oldServer(serverId: string): Promise<void> {
  const child = spawn(process.execPath, [peerScript, 'serve', release.index, serverId, url], { stdio: ['pipe', 'pipe', 'inherit'] });
  children.push(child);
  const lines = createInterface({ input: child.stdout! });
  await new Promise<void>((resolve, reject) => {
    lines.on('line', (line) => line === 'READY' && resolve());
    child.once('exit', (code) => reject(new Error(`old server exited with ${code}`)));
  });
}

/** Runs the release's proxy against `serverId` and returns what its calls gave. */
async function oldProxyCalls(serverId: string): Promise<Record<string, unknown>> {
  const child = spawn(process.execPath, [peerScript, 'call', release.index, serverId, url], { stdio: ['ignore', 'pipe', 'inherit'] });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  expect(code).toBe(0);
  return JSON.parse(output) as Record<string, unknown>;
}

/** A new server with the functions of the peer script, serving. */
async function newServer(): Promise<{ serverId: string; remembered: unknown[] }> {
  const remembered: unknown[] = [];
  const server = servers
    .create()
    .registerFunction((a: number, b: number) => a + b, 'add')
    .registerFunction((value: unknown) => {
      remembered.push({ value, method: currentCall()?.method });
    }, 'remember')
    .registerFunction(() => remembered, 'recall')
    .registerFunction(() => {
      throw Object.assign(new Error('boom'), { code: 'E_BOOM' });
    }, 'fail');
  await server.serve();
  return { serverId: server.serverId, remembered };
}

interface RawReply {
  body: Record<string, unknown>;
  headers: Record<string, unknown>;
}

/** Publishes a hand-made native request to `serverId`'s queue and waits for its reply through direct reply-to, on a channel of its own. */
async function rawRequest(serverId: string, body: unknown, headers: Record<string, unknown>): Promise<RawReply> {
  const channel = await rawChannel();
  const correlationId = randomUUID();
  const reply = new Promise<RawReply>((resolve) => {
    void channel.consume(
      'amq.rabbitmq.reply-to',
      (message) => {
        if (message === null || message.properties.correlationId !== correlationId) return;
        resolve({
          body: JSON.parse(message.content.toString()) as Record<string, unknown>,
          headers: (message.properties.headers ?? {}) as Record<string, unknown>,
        });
      },
      { noAck: true },
    );
  });
  channel.sendToQueue(`server_${serverId}_queue`, Buffer.from(JSON.stringify(body)), {
    replyTo: 'amq.rabbitmq.reply-to',
    correlationId,
    contentType: 'application/json',
    headers,
  });
  return reply;
}

describe('the last release (wire 1) and this one (wire 2)', () => {
  it('a new proxy calls an old server: results, errors, not found', async () => {
    const serverId = uniqueName('wire_old');
    await oldServer(serverId);
    const proxy = new QAMProxy({ serverId, url, timeout: 10, logger: silentLogger });
    try {
      expect(await proxy.add(2, 3)).toBe(5);
      await expect(proxy.fail()).rejects.toMatchObject({ code: 'REMOTE_ERROR', remoteCode: 'E_BOOM' });
      await expect(proxy.nosuch()).rejects.toBeInstanceOf(QAMMethodNotFoundException);
      // Introspection is a request of kind describe: the old server answers METHOD_NOT_FOUND and runs nothing.
      await expect(proxy.getRemoteMethods()).rejects.toBeInstanceOf(QAMMethodNotFoundException);
      await proxy.remember('new proxy');
      expect(await proxy.recall()).toEqual([{ value: 'new proxy', method: 'remember' }]);
    } finally {
      await proxy.close();
    }
  });

  it("a new proxy's noReply() call runs on an old server", async () => {
    const serverId = uniqueName('wire_old');
    await oldServer(serverId);
    const proxy = new QAMProxy({ serverId, url, timeout: 10, logger: silentLogger });
    try {
      await expect(proxy.noReply().remember('one-way from a new proxy')).resolves.toBeUndefined();
      await waitUntil(async () => ((await proxy.recall()) as unknown[]).length === 1, { message: 'the old server ran it' });
      expect(await proxy.recall()).toEqual([{ value: 'one-way from a new proxy', method: 'remember' }]);
      expect(proxy.getStats()).toMatchObject({ pending: 0, droppedReplies: 0 });
    } finally {
      await proxy.close();
    }
  });

  it('an old proxy calls a new server: results, errors, not found', async () => {
    const { serverId, remembered } = await newServer();
    expect(await oldProxyCalls(serverId)).toEqual({
      add: 5,
      fail: { name: 'QAMRemoteException', code: 'REMOTE_ERROR', remoteCode: 'E_BOOM', message: 'boom' },
      nosuch: {
        name: 'QAMMethodNotFoundException',
        code: 'METHOD_NOT_FOUND',
        message: `Method 'nosuch' is not registered on server ${serverId}`,
      },
      recall: [{ value: 'old proxy', method: 'remember' }],
    });
    expect(remembered).toHaveLength(1);
  });

  it('new requests and replies carry x-qam-wire 2; old ones carry none and are read as wire 1', async () => {
    const { serverId } = await newServer();
    const wire1 = await rawRequest(serverId, { method: 'add', params: [1, 2] }, {});
    expect(wire1.body).toEqual({ result: 3 });
    expect(wire1.headers['x-qam-wire']).toBe(2);

    // What a new proxy publishes, read off a queue standing in for a server.
    const standIn = uniqueName('wire_standin');
    const channel = await rawChannel();
    await channel.assertQueue(`server_${standIn}_queue`, { durable: false, autoDelete: false });
    const proxy = new QAMProxy({ serverId: standIn, url, timeout: 30, logger: silentLogger });
    const call = proxy.add(1, 2).catch((error: unknown) => error);
    try {
      const request = await waitUntil(() => channel.get(`server_${standIn}_queue`, { noAck: true }));
      expect(request.properties.headers).toMatchObject({ 'x-qam-wire': 2 });
    } finally {
      await proxy.close();
    }
    expect(await call).toMatchObject({ code: 'CLOSED' });
    await channel.deleteQueue(`server_${standIn}_queue`);
  });

  it('a server ignores x-qam headers it does not know and versions above its own', async () => {
    const { serverId } = await newServer();
    const reply = await rawRequest(serverId, { method: 'add', params: [2, 2] }, { 'x-qam-wire': 99, 'x-qam-future': { a: 1 } });
    expect(reply.body).toEqual({ result: 4 });
  });

  it('a request of a kind the server does not know is answered with a clear error and runs nothing, old or new', async () => {
    const fresh = await newServer();
    const oldId = uniqueName('wire_old');
    await oldServer(oldId);
    const future = { 'x-qam-wire': 3, 'x-qam-kind': 'future' };

    // The rule: a new kind's body names `_qam.<kind>`, which no server registers.
    const fromOld = await rawRequest(oldId, { method: '_qam.future', params: [] }, future);
    expect(fromOld.body['error']).toMatchObject({ code: 'METHOD_NOT_FOUND', origin: 'server' });
    const fromNew = await rawRequest(fresh.serverId, { method: '_qam.future', params: [] }, future);
    expect(fromNew.body['error']).toMatchObject({ code: 'BAD_MESSAGE', origin: 'server' });
    expect((fromNew.body['error'] as { message: string }).message).toContain("Request kind 'future' is not supported");

    // A new server reads the kind before the method: even a registered name does not run.
    const named = await rawRequest(fresh.serverId, { method: 'remember', params: ['x'] }, future);
    expect(named.body['error']).toMatchObject({ code: 'BAD_MESSAGE' });
    expect(fresh.remembered).toEqual([]);
  });

  it('a request without a reply address (one-way) runs on old and new servers alike', async () => {
    const fresh = await newServer();
    const oldId = uniqueName('wire_old');
    await oldServer(oldId);
    const channel = await rawChannel();
    for (const serverId of [fresh.serverId, oldId]) {
      channel.sendToQueue(`server_${serverId}_queue`, Buffer.from(JSON.stringify({ method: 'remember', params: ['one-way'] })), {
        contentType: 'application/json',
        headers: { 'x-qam-wire': 2 },
      });
    }
    const proxy = new QAMProxy({ serverId: oldId, url, timeout: 10, logger: silentLogger });
    try {
      await waitUntil(async () => ((await proxy.recall()) as unknown[]).length === 1, { message: 'the old server ran the one-way call' });
      expect(await proxy.recall()).toEqual([{ value: 'one-way', method: 'remember' }]);
    } finally {
      await proxy.close();
    }
    await waitUntil(() => fresh.remembered.length === 1, { message: 'the new server ran the one-way call' });
    expect(fresh.remembered).toEqual([{ value: 'one-way', method: 'remember' }]);
  });
});
