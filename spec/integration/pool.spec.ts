import { threadId as mainThreadId } from 'node:worker_threads';
import { setTimeout as delay } from 'node:timers/promises';
import * as amqp from 'amqplib';
import { QAMProxy, QAMRemoteException, silentLogger, type QAMServerOptions, type SerializerName, type ServerApi } from '../../lib/index.js';
import { queueMessageCount, waitUntil } from '../support/broker.js';
import { Servers, recordingLogger, url } from './fixtures.js';

type CpuWork = typeof import('../fixtures/cpu-work.mjs');
const cpuWork = new URL('../fixtures/cpu-work.mjs', import.meta.url);

const servers = new Servers();
afterAll(() => servers.closeAll());

/** Proxies and connections a test opened, closed after it even when it fails. */
const opened: Array<{ close(): Promise<unknown> }> = [];
afterEach(() => Promise.all(opened.splice(0).map((resource) => resource.close().catch(() => undefined))));

function proxyFor(
  serverId: string,
  options: { timeout?: number; serializer?: 'superjson' } = {},
): QAMProxy<Api, 'promise', SerializerName> {
  const proxy = new QAMProxy<Api, SerializerName>({ serverId, url, logger: silentLogger, ...options });
  opened.push(proxy);
  return proxy;
}

/** A server running the fixture's exports on `threads` worker threads. */
function threadServer(threads: number, options: Partial<QAMServerOptions> = {}) {
  return servers
    .create({ threads, ...options })
    .registerWorkerFunction<CpuWork, 'fib'>(cpuWork, 'fib')
    .registerWorkerFunction<CpuWork, 'add'>(cpuWork, 'add')
    .registerWorkerFunction<CpuWork, 'busy'>(cpuWork, 'busy')
    .registerWorkerFunction<CpuWork, 'echo'>(cpuWork, 'echo')
    .registerWorkerFunction<CpuWork, 'withdraw'>(cpuWork, 'withdraw')
    .registerWorkerFunction<CpuWork, 'crash'>(cpuWork, 'crash')
    .registerWorkerFunction<CpuWork, 'spin'>(cpuWork, 'spin')
    .registerWorkerFunction<CpuWork, 'throwLater'>(cpuWork, 'throwLater')
    .registerWorkerFunction<CpuWork, 'unclonable'>(cpuWork, 'unclonable')
    .registerWorkerFunction(cpuWork.href, 'notAFunction')
    .registerFunction(() => 'main thread', 'local');
}
type Api = ServerApi<ReturnType<typeof threadServer>>;

describe('worker threads', () => {
  let server: ReturnType<typeof threadServer>;
  let proxy: QAMProxy<Api>;

  beforeAll(async () => {
    server = threadServer(2, { workers: 8 });
    await server.serve();
    proxy = new QAMProxy<Api>({ serverId: server.serverId, url, logger: silentLogger, timeout: 10 });
  });
  afterAll(() => proxy.close());

  it('run the export off the main thread and return its result', async () => {
    await expect(proxy.fib(20)).resolves.toBe(6765);
    await expect(proxy.add(2, 3)).resolves.toBe(5);
    const { threadId } = await proxy.busy(1);
    expect(threadId).not.toBe(mainThreadId);
  });

  it('structured-clone the params: a Date or a Map sent with superjson arrives as one on the thread', async () => {
    const typed = proxyFor(server.serverId, { serializer: 'superjson' });
    await expect(typed.echo({ list: [1, { nested: 'yes' }] })).resolves.toEqual({
      value: { list: [1, { nested: 'yes' }] },
      isDate: false,
      isMap: false,
    });
    await expect(typed.echo(new Date(0))).resolves.toMatchObject({ isDate: true, isMap: false });
    await expect(typed.echo(new Map([['a', 1]]))).resolves.toMatchObject({ isDate: false, isMap: true });
  });

  it('run at most `threads` calls at once, each on a thread of the pool', async () => {
    const results = await Promise.all(Array.from({ length: 8 }, () => proxy.busy(100)));
    expect(new Set(results.map((result) => result.threadId)).size).toBe(2);
  });

  it('answer with the thrown error’s name, message, code and cause, and go on serving', async () => {
    const error = await proxy.withdraw(100).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(QAMRemoteException);
    expect(error).toMatchObject({
      remoteName: 'InsufficientFunds',
      message: 'cannot withdraw 100',
      code: 'REMOTE_ERROR',
      remoteCode: 'E_FUNDS',
    });
    expect((error as Error).cause).toMatchObject({ remoteName: 'RangeError', message: 'limit 10' });
    await expect(proxy.fib(10)).resolves.toBe(55);
  });

  it('fail only the call whose thread died, with WORKER_CRASHED; new threads serve the next calls', async () => {
    const beside = proxy.busy(300);
    for (const code of [1, 2, 3])
      await expect(proxy.crash(code)).rejects.toMatchObject({
        name: 'QAMRemoteException',
        code: 'REMOTE_ERROR',
        remoteCode: 'WORKER_CRASHED',
      });
    await expect(beside).resolves.toMatchObject({ rounds: expect.any(Number) });
    const results = await Promise.all(Array.from({ length: 4 }, () => proxy.busy(50)));
    expect(new Set(results.map((result) => result.threadId)).size).toBe(2);
    await expect(proxy.local()).resolves.toBe('main thread');
  });

  it('answer a result structured clone cannot carry with SERIALIZATION_FAILED', async () => {
    await expect(proxy.unclonable()).rejects.toMatchObject({ code: 'SERIALIZATION_FAILED' });
    await expect(proxy.fib(12)).resolves.toBe(144);
  });

  it('answer an export that is not a function with the TypeError', async () => {
    await expect(proxy.notAFunction()).rejects.toMatchObject({ name: 'QAMRemoteException', remoteName: 'TypeError', code: 'REMOTE_ERROR' });
  });

  it('refuse a thread count that is not a positive integer, a module that does not exist, and a name already taken', () => {
    for (const threads of [0, 1.5, -2]) expect(() => servers.create({ threads })).toThrow(TypeError);
    const local = servers.create();
    expect(() => local.registerWorkerFunction(new URL('./no-such-module.mjs', cpuWork), 'fib')).toThrow(TypeError);
    expect(() => local.registerWorkerFunction('https://example.com/cpu.mjs', 'fib')).toThrow(TypeError);
    local.registerFunction(() => 0, 'fib');
    expect(() => local.registerWorkerFunction(cpuWork, 'fib')).toThrow(TypeError);
  });
});

describe('a worker thread call', () => {
  it('still running at its caller’s deadline has its thread stopped, which frees the thread', async () => {
    const server = threadServer(1, { workers: 2 });
    await server.serve();
    const proxy = proxyFor(server.serverId, { timeout: 5 });
    await expect(proxy.setTimeout(0.3).spin()).rejects.toMatchObject({ code: 'TIMEOUT' });
    await expect(proxy.fib(15)).resolves.toBe(610);
  });

  it('that leaves a failing timer behind gets its result; the failure is logged and the thread replaced', async () => {
    const logger = recordingLogger();
    const server = threadServer(1, { logger });
    await server.serve();
    const proxy = proxyFor(server.serverId, { timeout: 5 });
    await expect(proxy.throwLater(20)).resolves.toBe('returned');
    await waitUntil(() => logger.lines.some((line) => line.includes('thrown from a timer')), { message: 'the failure logged' });
    await expect(proxy.fib(15)).resolves.toBe(610);
  });

  it('running when close() starts finishes and replies before the threads stop', async () => {
    const server = threadServer(1);
    await server.serve();
    const proxy = proxyFor(server.serverId, { timeout: 5 });
    const call = proxy.busy(400);
    await waitUntil(() => server.stats().active === 1, { message: 'the call is running' });
    await server.close({ deleteQueue: true });
    await expect(call).resolves.toMatchObject({ rounds: expect.any(Number) });
  });

  it('still running at the end of drainTimeout is answered with CLOSED, not left to time out', async () => {
    const server = threadServer(1, { drainTimeout: 0.2 });
    await server.serve();
    const proxy = proxyFor(server.serverId, { timeout: 10 });
    const failure = proxy.spin().catch((error: unknown) => error);
    await waitUntil(() => server.stats().active === 1, { message: 'the call is running' });
    await server.close({ deleteQueue: true });
    expect(await failure).toMatchObject({ name: 'QAMRemoteException', code: 'REMOTE_ERROR', remoteCode: 'CLOSED' });
  });
});

describe('a poison message', () => {
  it.each([
    ['a body that is not JSON', Buffer.from('{"method": "add", '), 'application/json'],
    ['a body of the wrong shape', Buffer.from('[1, 2, 3]'), 'application/json'],
    ['an unknown content type', Buffer.from('add(1, 2)'), 'text/x-python'],
  ])('(%s) is answered once with BAD_MESSAGE and leaves the queue', async (_, body, contentType) => {
    const server = servers.create().registerFunction((x: number, y: number) => x + y, 'add');
    await server.serve();
    const connection = await amqp.connect(url);
    opened.push(connection);
    const channel = await connection.createChannel();
    const replies: unknown[] = [];
    await channel.consume('amq.rabbitmq.reply-to', (message) => message !== null && replies.push(JSON.parse(message.content.toString())), {
      noAck: true,
    });
    channel.sendToQueue(`server_${server.serverId}_queue`, body, {
      contentType,
      replyTo: 'amq.rabbitmq.reply-to',
      correlationId: 'poison',
    });
    await waitUntil(() => replies.length > 0, { message: 'the error reply' });
    await delay(300);
    expect(replies).toEqual([{ error: expect.objectContaining({ code: 'BAD_MESSAGE' }) }]);
    expect(await queueMessageCount(`server_${server.serverId}_queue`)).toBe(0);
    expect(server.stats()).toMatchObject({ failed: 1, served: 0 });
  });
});
