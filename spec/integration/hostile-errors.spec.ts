import * as amqp from 'amqplib';
import { QAMProxy, silentLogger, type QAMServer } from '../../lib/index.js';
import { Servers, recordingLogger, url } from './fixtures.js';

/**
 * A registered function that throws, or rejects with, a value built to break whoever reads it:
 * the caller gets an error reply, the server logs it and goes on serving, and nothing is left in
 * the queue to crash the next server that takes it.
 */

const servers = new Servers();
afterAll(() => servers.closeAll());

const thrower = (): never => {
  throw new Error('trap');
};

/** A Proxy every one of whose traps throws. */
function trappedEverywhere(thrown: () => unknown = thrower): object {
  const trap = (): never => {
    throw thrown();
  };
  return new Proxy(
    {},
    {
      get: trap,
      set: trap,
      has: trap,
      ownKeys: trap,
      getOwnPropertyDescriptor: trap,
      getPrototypeOf: trap,
      setPrototypeOf: trap,
      defineProperty: trap,
      deleteProperty: trap,
      isExtensible: trap,
      preventExtensions: trap,
      apply: trap,
      construct: trap,
    },
  );
}

function revoked(): object {
  const { proxy, revoke } = Proxy.revocable({}, {});
  revoke();
  return proxy;
}

/** An Error whose every property a reader might look at throws when read. */
function errorWithThrowingGetters(): Error {
  const error = new Error('ignored');
  // The stack first: once `name` throws, defining `stack` would format the old one and throw.
  for (const key of ['stack', 'name', 'message', 'code', 'cause', 'args'])
    Object.defineProperty(error, key, { get: thrower, enumerable: true });
  return error;
}

/** A function whose conversion to text throws, thrown as is. */
function unprintableFunction(): unknown {
  return Object.assign(() => undefined, { toString: thrower, [Symbol.toPrimitive]: thrower });
}

function cyclicCauses(): Error {
  const first = new Error('first');
  const second = new Error('second', { cause: first });
  Object.defineProperty(first, 'cause', { value: second });
  return first;
}

/** A Proxy whose traps throw more such Proxies. */
const nested = (): object => trappedEverywhere(() => trappedEverywhere());

/** Each value, and whether reading it throws somewhere (the server then logs a warning). */
const hostile: Array<[string, () => unknown, boolean]> = [
  ['a Proxy whose every trap throws', () => trappedEverywhere(), true],
  ['a Proxy whose traps throw such Proxies', nested, true],
  ['a revoked Proxy', revoked, true],
  ['an Error whose name, message, code, cause, stack and args getters throw', errorWithThrowingGetters, true],
  ['a function with a throwing toString and Symbol.toPrimitive', unprintableFunction, true],
  ['an object without prototype', () => Object.create(null) as object, true],
  ['a symbol', () => Symbol('thrown'), false],
  ['an Error whose causes form a cycle', cyclicCauses, false],
  [
    'an Error whose name and message cannot be printed',
    () => Object.assign(new Error('odd'), { name: Object.create(null) as object, message: Object.create(null) as object }),
    true,
  ],
];

describe.each([
  [
    'throws',
    (make: () => unknown) => () => {
      throw make();
    },
  ],
  ['rejects with', (make: () => unknown) => () => Promise.reject(make())],
])('a function that %s a hostile value', (_how, fail) => {
  it.each(hostile)('%s: the caller gets an error reply, the server serves on, the queue is empty', async (_label, make, unreadable) => {
    const logger = recordingLogger();
    const server = servers.create({ logger, exposeStack: true });
    server.registerFunction(fail(make), 'hostile').registerFunction((a: number, b: number) => a + b, 'add');
    await server.serve();
    const proxy = new QAMProxy({ serverId: server.serverId, url, logger, timeout: 10 });
    try {
      await expect(proxy['hostile']()).rejects.toMatchObject({ name: 'QAMRemoteException', code: 'REMOTE_ERROR' });
      await expect(proxy['add'](2, 3)).resolves.toBe(5);
      expect(server.stats()).toMatchObject({ failed: 1, served: 1 });
      expect(logger.lines.some((line) => line.includes('cannot be read whole'))).toBe(unreadable);
      await expectNothingQueued(server);
    } finally {
      await proxy.close();
    }
  });
});

/** Closes the server (leaving its queue) and checks that no request is left to crash the next one. */
async function expectNothingQueued(server: QAMServer): Promise<void> {
  await server.close();
  const connection = await amqp.connect(url);
  try {
    const channel = await connection.createChannel();
    const { messageCount } = await channel.checkQueue(`server_${server.serverId}_queue`);
    expect(messageCount).toBe(0);
    await channel.deleteQueue(`server_${server.serverId}_queue`);
    await channel.deleteExchange(`server_${server.serverId}_ex`);
  } finally {
    await connection.close();
  }
}

describe('a worker-thread function that throws a hostile value', () => {
  it.each(['throwTrapped', 'throwGetters'])('%s: the caller gets the error its thread could read, not WORKER_CRASHED', async (name) => {
    const server = servers
      .create({ threads: 1 })
      .registerWorkerFunction(new URL('../fixtures/hostile-work.mjs', import.meta.url), name, 'hostile');
    await server.serve();
    const proxy = new QAMProxy({ serverId: server.serverId, url, logger: silentLogger, timeout: 10 });
    try {
      await expect(proxy['hostile']()).rejects.toMatchObject({
        name: 'QAMRemoteException',
        code: 'REMOTE_ERROR',
        remoteName: 'Error',
        remoteCode: undefined,
      });
    } finally {
      await proxy.close();
    }
  });
});

describe('a function that throws a hostile value to a QAM-format proxy', () => {
  it.each(hostile)('%s: the caller gets an error reply and the server serves on', async (_label, make) => {
    const server = servers.create({ protocol: 'qam' });
    server
      .registerFunction(() => {
        throw make();
      }, 'hostile')
      .registerFunction((a: number, b: number) => a + b, 'add');
    await server.serve();
    const proxy = new QAMProxy({ serverId: server.serverId, url, logger: silentLogger, timeout: 10, protocol: 'qam' });
    try {
      await expect(proxy['hostile']()).rejects.toMatchObject({ name: 'QAMRemoteException', code: 'REMOTE_ERROR', remoteName: 'Exception' });
      await expect(proxy['add'](2, 3)).resolves.toBe(5);
    } finally {
      await proxy.close();
    }
  });
});
