import {
  QAMBadMessageException,
  QAMMethodNotFoundException,
  QAMPayloadTooLargeException,
  QAMProxy,
  QAMRemoteException,
  QAMSerializationException,
  QAMTimeoutException,
  silentLogger,
  type QAMServer,
} from '../../lib/index.js';
import { brokers } from '../support/brokers.js';

/**
 * What a remote function throws arrives as QAMRemoteException, code REMOTE_ERROR, whatever its
 * name and code; only the errors the server raises itself arrive as qam's own classes.
 */

class OutOfStock extends Error {
  override name = 'OutOfStock';
}

const posers: Array<[string, () => unknown, string, string | undefined]> = [
  ['an error with the code of a timeout', () => Object.assign(new Error('late'), { code: 'TIMEOUT' }), 'Error', 'TIMEOUT'],
  [
    'qam’s own not-found error, rethrown',
    () => new QAMMethodNotFoundException('no such'),
    'QAMMethodNotFoundException',
    'METHOD_NOT_FOUND',
  ],
  ['qam’s own timeout error, rethrown', () => new QAMTimeoutException('late'), 'QAMTimeoutException', 'TIMEOUT'],
  [
    'an error named as qam’s not-found, with its code',
    () => Object.assign(new Error('no such'), { name: 'QAMMethodNotFoundException', code: 'METHOD_NOT_FOUND' }),
    'QAMMethodNotFoundException',
    'METHOD_NOT_FOUND',
  ],
  [
    'an error that sets the server’s mark on itself',
    () => Object.assign(new Error('bad'), { name: 'QAMBadMessageException', code: 'BAD_MESSAGE', origin: 'server' }),
    'QAMBadMessageException',
    'BAD_MESSAGE',
  ],
  ['an error with a code of its own', () => Object.assign(new Error('disk full'), { code: 'ENOSPC' }), 'Error', 'ENOSPC'],
  ['a plain object with a code', () => ({ code: 'TIMEOUT' }), 'Error', undefined],
];

describe.each(brokers)('on %s', (_name, useBroker) => {
  const broker = useBroker();
  const servers = { create: (options: Parameters<typeof broker.server>[0] = {}): QAMServer => broker.server(options) };
  let url: string;
  beforeAll(() => {
    url = broker.url;
  });
  describe('an error a function throws', () => {
    let server: QAMServer;
    let proxy: QAMProxy;

    beforeAll(async () => {
      server = servers.create({ protocol: ['native', 'qam'] });
      posers.forEach(([, make], index) =>
        server.registerFunction(() => {
          throw make();
        }, `poser${index}`),
      );
      server.registerFunction(() => {
        throw Object.assign(new OutOfStock('none left'), { code: 'E_STOCK' });
      }, 'outOfStock');
      await server.serve();
      // Even listed in `errors`, qam's own classes are not rebuilt from what a function threw.
      proxy = new QAMProxy({
        serverId: server.serverId,
        url,
        logger: silentLogger,
        timeout: 10,
        errors: [QAMMethodNotFoundException, QAMTimeoutException, OutOfStock],
      });
    });
    afterAll(() => proxy.close());

    it.each(posers.map(([label, , name, code], index) => [label, index, name, code] as const))(
      '%s arrives as QAMRemoteException with code REMOTE_ERROR, its own in remoteCode',
      async (_label, index, remoteName, remoteCode) => {
        const error = await proxy[`poser${index}`]().catch((e: unknown) => e);
        expect(error).toBeInstanceOf(QAMRemoteException);
        expect(error).not.toBeInstanceOf(QAMMethodNotFoundException);
        expect(error).not.toBeInstanceOf(QAMTimeoutException);
        expect(error).toMatchObject({ code: 'REMOTE_ERROR', remoteName, remoteCode });
      },
    );

    it('of a class the proxy lists is rebuilt as that class, with its code, remoteCode and remoteName', async () => {
      const error = await proxy['outOfStock']().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(OutOfStock);
      expect(error).toMatchObject({ message: 'none left', code: 'E_STOCK', remoteCode: 'E_STOCK', remoteName: 'OutOfStock' });
    });

    it('arrives at a QAM-format proxy as a raised exception, never as method-not-found', async () => {
      const qamProxy = new QAMProxy({ serverId: server.serverId, url, logger: silentLogger, timeout: 10, protocol: 'qam' });
      try {
        for (const index of posers.keys()) {
          const error = await qamProxy[`poser${index}`]().catch((e: unknown) => e);
          expect(error).toBeInstanceOf(QAMRemoteException);
          expect(error).toMatchObject({ code: 'REMOTE_ERROR', remoteName: 'Exception' });
        }
        await expect(qamProxy['nosuch']()).rejects.toBeInstanceOf(QAMMethodNotFoundException);
      } finally {
        await qamProxy.close();
      }
    });
  });

  describe('an error the server raises itself', () => {
    it('arrives as its own class: method not found, bad message, payload too large, serialization failed', async () => {
      const server = servers.create({ maxMessageBytes: 2048, acceptSerializers: ['json'] });
      server
        .registerFunction((value: unknown) => value, 'echo')
        .registerFunction(() => 'x'.repeat(3000), 'big')
        .registerFunction(() => 10n, 'bigint');
      await server.serve();
      const proxy = new QAMProxy({ serverId: server.serverId, url, logger: silentLogger, timeout: 10 });
      const superProxy = new QAMProxy({ serverId: server.serverId, url, logger: silentLogger, timeout: 10, serializer: 'superjson' });
      try {
        await expect(proxy['nosuch']()).rejects.toBeInstanceOf(QAMMethodNotFoundException);
        await expect(superProxy['echo'](1)).rejects.toBeInstanceOf(QAMBadMessageException);
        await expect(proxy['echo']('x'.repeat(1500), 'y'.repeat(1500))).rejects.toBeInstanceOf(QAMPayloadTooLargeException);
        await expect(proxy['big']()).rejects.toBeInstanceOf(QAMPayloadTooLargeException);
        await expect(proxy['bigint']()).rejects.toBeInstanceOf(QAMSerializationException);
      } finally {
        await Promise.all([proxy.close(), superProxy.close()]);
      }
    });
  });
});
