/**
 * The same behaviours, with the same assertions, against RabbitMQ and against the embedded broker
 * (`memory://`): what a user relies on must not depend on which broker runs underneath. Where the
 * two differ, the test says so (and README.md's "Without RabbitMQ" section lists the differences).
 */
import { setTimeout as delay } from 'node:timers/promises';
import { QAMProxy, QAMServer, currentCall, silentLogger } from '../../lib/index.js';
import { startTestBroker, type TestBroker } from '../../lib/testing.js';
import { brokerUrl, uniqueName } from '../support/broker.js';

class Calculator {
  adder_function(a: number, b: number): number {
    return a + b;
  }

  async slow(ms: number): Promise<string> {
    await delay(ms);
    return 'slow';
  }

  fail(): never {
    throw Object.assign(new Error('disk full'), { code: 'ENOSPC' });
  }
}

function buildServer(
  url: string,
  options: { protocol?: 'native' | 'qam' | Array<'native' | 'qam'>; ack?: 'afterReply' | 'onReceipt' } = {},
) {
  return new QAMServer({ serverId: uniqueName('conf'), url, logger: silentLogger, workers: 8, ...options })
    .registerFunction((a: number, b: number) => a + b, 'add')
    .registerFunction(() => currentCall()?.deadline !== undefined, 'hasDeadline')
    .registerClass(new Calculator(), 'calc');
}

type Api = ReturnType<typeof buildServer> extends QAMServer<infer A> ? A : never;

const embedded: { current: TestBroker | undefined } = { current: undefined };

describe.each([
  ['RabbitMQ', (): string => brokerUrl()],
  ['the embedded broker', (): string => (embedded.current ??= startTestBroker()).url],
])('on %s', (_name, urlOf) => {
  let url: string;
  let server: ReturnType<typeof buildServer>;

  beforeAll(async () => {
    url = urlOf();
    server = buildServer(url, { protocol: ['native', 'qam'] });
    await server.serve();
  });

  afterAll(async () => {
    await server.close({ deleteQueue: true });
    embedded.current?.close();
    embedded.current = undefined;
  });

  const proxyFor = (options: { replies?: 'direct' | 'callme'; protocol?: 'native' | 'qam'; timeout?: number } = {}): QAMProxy<Api> =>
    new QAMProxy<Api>({ serverId: server.serverId, url, logger: silentLogger, timeout: options.timeout ?? 10, ...options });

  it.each([
    ['direct reply-to', {}],
    ["callme's reply names", { replies: 'callme' as const }],
    ["Python QAM's format", { protocol: 'qam' as const }],
  ])('answers calls, nested ones and many at once, with %s', async (_kind, options) => {
    const proxy = proxyFor(options);
    try {
      await expect(proxy.add(2, 3)).resolves.toBe(5);
      await expect(proxy.calc.adder_function(2, 4)).resolves.toBe(6);
      const many = await Promise.all(Array.from({ length: 200 }, (_, i) => proxy.add(i, 1)));
      expect(many).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    } finally {
      await proxy.close();
    }
  });

  it('rejects a remote error as REMOTE_ERROR with its own code, and an unknown method as METHOD_NOT_FOUND', async () => {
    const proxy = proxyFor();
    try {
      await expect(proxy.calc.fail()).rejects.toMatchObject({ code: 'REMOTE_ERROR', remoteCode: 'ENOSPC', message: 'disk full' });
      await expect((proxy as unknown as { nope(): Promise<unknown> }).nope()).rejects.toMatchObject({ code: 'METHOD_NOT_FOUND' });
    } finally {
      await proxy.close();
    }
  });

  it('runs callback mode with QAM states 0 then 2', async () => {
    const proxy = proxyFor();
    try {
      const result = new Promise<number>((resolve, reject) => {
        const uid = proxy.callback(resolve, reject).add(1, 2);
        expect(proxy.getCallbackState(uid)).toBe(0);
      });
      await expect(result).resolves.toBe(3);
      expect(proxy.getNumWaitingCallbacks()).toBe(0);
    } finally {
      await proxy.close();
    }
  });

  it('times out with TIMEOUT, cancels with ABORTED, and carries the deadline to the server', async () => {
    const proxy = proxyFor();
    try {
      await expect(proxy.setTimeout(0.1).calc.slow(1000)).rejects.toMatchObject({ code: 'TIMEOUT' });
      const controller = new AbortController();
      const call = proxy.withSignal(controller.signal).calc.slow(1000);
      controller.abort();
      await expect(call).rejects.toMatchObject({ code: 'ABORTED' });
      await expect(proxy.hasDeadline()).resolves.toBe(true);
    } finally {
      await proxy.close();
    }
  });

  it('fails at once with NO_ROUTE when no server serves the id, for both reply schemes', async () => {
    for (const replies of ['direct', 'callme'] as const) {
      const proxy = new QAMProxy<Api>({ serverId: uniqueName('nobody'), url, logger: silentLogger, timeout: 10, replies });
      try {
        await expect(proxy.add(1, 1)).rejects.toMatchObject({ code: 'NO_ROUTE' });
      } finally {
        await proxy.close();
      }
    }
  });
});
