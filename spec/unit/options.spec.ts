import { jest } from '@jest/globals';
import { QAMConnection, QAMProxy, QAMServer, silentLogger, type QAMProxyOptions, type QAMServerOptions } from '../../lib/index.js';
import { closest } from '../../lib/options.js';

/** The TypeError `make` throws; fails the test when it throws nothing or something else. */
function typeErrorOf(make: () => unknown): TypeError {
  try {
    make();
  } catch (error) {
    expect(error).toBeInstanceOf(TypeError);
    return error as TypeError;
  }
  throw new Error('expected a TypeError, nothing was thrown');
}

// Options are checked in the constructor, before anything connects: no broker is needed here.
const proxy = (options: Record<string, unknown>): unknown =>
  new QAMProxy({ serverId: 'spec', logger: silentLogger, ...options } as QAMProxyOptions);
const server = (options: Record<string, unknown>): unknown =>
  new QAMServer({ serverId: 'spec', logger: silentLogger, ...options } as QAMServerOptions);
const connection = (options: unknown): unknown => new QAMConnection(options as object);

describe('unknown options', () => {
  it('refuses a misspelt option of QAMProxy instead of connecting to localhost, naming it and the option meant', () => {
    const error = typeErrorOf(() => proxy({ hostName: 'rabbit' }));
    expect(error.message).toContain("'hostName'");
    expect(error.message).toContain("did you mean 'hostname'?");
  });

  it('refuses a misspelt option of QAMServer instead of using the default', () => {
    const error = typeErrorOf(() => server({ wrokers: 4 }));
    expect(error.message).toContain("'wrokers'");
    expect(error.message).toContain("did you mean 'workers'?");
  });

  it('refuses unknown options of QAMConnection and in the nested ssl and reconnectDelay objects', () => {
    expect(typeErrorOf(() => connection({ urll: 'amqp://localhost' })).message).toContain("did you mean 'url'?");
    const tls = typeErrorOf(() => connection({ ssl: { servrname: 'rabbit' } }));
    expect(tls.message).toContain("'ssl.servrname'");
    expect(tls.message).toContain("did you mean 'servername'?");
    expect(typeErrorOf(() => connection({ ssl: { minVersion: 'TLSv1.3' } })).message).toContain("'ssl.minVersion'");
    expect(typeErrorOf(() => proxy({ reconnectDelay: { min: 0.1, max: 1, maximum: 5 } })).message).toContain("'reconnectDelay.maximum'");
  });

  it('lists the options when no known one is close', () => {
    const error = typeErrorOf(() => server({ banana: true }));
    expect(error.message).toContain("'banana'");
    expect(error.message).toContain('workers');
    expect(error.message).not.toContain('did you mean');
  });

  it('refuses unknown options of server.close()', async () => {
    const idle = new QAMServer({ serverId: 'spec', logger: silentLogger });
    const error = await idle.close({ deleteQueues: true } as { deleteQueue?: boolean }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TypeError);
    expect((error as Error).message).toContain("did you mean 'deleteQueue'?");
    await expect(idle.close({ deleteQueue: 'yes' } as unknown as { deleteQueue?: boolean })).rejects.toThrow(TypeError);
    await idle.close();
  });

  it('refuses connection options beside a shared connection, where they would be ignored', () => {
    const shared = new QAMConnection({ logger: silentLogger });
    const error = typeErrorOf(() => proxy({ connection: shared, url: 'amqp://elsewhere' }));
    expect(error.message).toContain("'url'");
    expect(() => server({ connection: shared, hostname: 'elsewhere' })).toThrow(TypeError);
    expect(() => proxy({ connection: shared, logger: silentLogger })).not.toThrow();
    expect(typeErrorOf(() => proxy({ connection: { close: () => undefined } })).message).toContain("'connection'");
  });

  it('refuses options that are not an object', () => {
    expect(() => new QAMProxy('spec' as unknown as QAMProxyOptions)).toThrow(TypeError);
    expect(() => connection(null)).toThrow(TypeError);
    expect(() => connection({ ssl: 'yes' })).toThrow(TypeError);
  });
});

describe('option values', () => {
  it.each([
    ['QAMServer', 'workers', '4'],
    ['QAMServer', 'workers', 0],
    ['QAMServer', 'threads', 1.5],
    ['QAMServer', 'drainTimeout', -1],
    ['QAMServer', 'ack', 'later'],
    ['QAMServer', 'exposeStack', 'true'],
    ['QAMServer', 'protocol', ['native', 'amqp']],
    ['QAMServer', 'maxMessageBytes', Infinity],
    ['QAMProxy', 'timeout', -1],
    ['QAMProxy', 'timeout', Number.NaN],
    ['QAMProxy', 'timeout', '30'],
    ['QAMProxy', 'serializer', 'xml'],
    ['QAMProxy', 'replies', 'fanout'],
    ['QAMProxy', 'errors', [42]],
    ['QAMProxy', 'port', 70000],
    ['QAMProxy', 'port', '5672'],
    ['QAMProxy', 'heartbeat', 0.5],
    ['QAMProxy', 'connectTimeout', 0],
    ['QAMProxy', 'url', ''],
    ['QAMProxy', 'logger', { warn: () => undefined }],
    ['QAMProxy', 'ssl', { ca: 42 }],
    ['QAMProxy', 'reconnectDelay', { min: 2, max: 1 }],
    ['QAMProxy', 'reconnectDelay', { min: 1 }],
  ])('%s refuses %s: %p, naming the option', (owner, option, value) => {
    const make = owner === 'QAMServer' ? server : proxy;
    const error = typeErrorOf(() => make({ [option]: value }));
    expect(error.message).toContain(`'${option}`);
    expect(error.message).toContain(owner);
  });

  it('does not repeat a password or passphrase of the wrong type', () => {
    expect(typeErrorOf(() => connection({ password: 271828 })).message).not.toContain('271828');
    expect(typeErrorOf(() => connection({ ssl: { passphrase: 314159 } })).message).not.toContain('314159');
  });

  it('takes every documented option with a value of the right type', async () => {
    const made = new QAMProxy({
      serverId: 'spec',
      hostname: 'localhost',
      port: 5672,
      username: 'guest',
      password: 'guest',
      vhost: '/',
      ssl: false,
      heartbeat: 0,
      connectTimeout: 2.5,
      connectionName: 'spec',
      reconnectDelay: { min: 0.5, max: 0.5 },
      logger: silentLogger,
      serializer: 'superjson',
      timeout: 0.25,
      maxMessageBytes: 1024,
      errors: [RangeError],
      protocol: 'native',
      replies: 'callme',
    });
    await made.close();
    const served = new QAMServer({
      serverId: 'spec',
      ssl: { ca: ['PEM'], cert: Buffer.from('PEM'), key: 'PEM', passphrase: '', servername: 'rabbit', rejectUnauthorized: true },
      workers: 2,
      threads: 1,
      maxMessageBytes: 1024,
      exposeStack: true,
      ack: 'onReceipt',
      serializer: 'json',
      drainTimeout: 0,
      protocol: ['native', 'qam'],
      logger: silentLogger,
    });
    await served.close();
  });

  it('takes undefined for any option, as if it were absent', async () => {
    // `url: process.env.QAM_URL` from JavaScript, where the variable may be unset.
    const absent = { url: undefined, timeout: undefined, ssl: undefined, reconnectDelay: undefined } as unknown as Partial<QAMProxyOptions>;
    await new QAMProxy({ serverId: 'spec', logger: silentLogger, ...absent }).close();
    const idle = new QAMServer({ serverId: 'spec', logger: silentLogger, workers: undefined } as unknown as QAMServerOptions);
    await idle.close({ deleteQueue: undefined } as unknown as { deleteQueue?: boolean });
  });
});

describe('QAM_URL', () => {
  const saved = process.env['QAM_URL'];
  afterEach(() => {
    if (saved === undefined) delete process.env['QAM_URL'];
    else process.env['QAM_URL'] = saved;
  });

  it.each([['not a url'], ['http://rabbit:5672/'], ['']])('names QAM_URL when it is %j', (value) => {
    process.env['QAM_URL'] = value;
    expect(typeErrorOf(() => connection({})).message).toContain('QAM_URL');
    expect(typeErrorOf(() => proxy({})).message).toContain('QAM_URL');
  });

  it('names the url option when that is wrong, and shows no password of a URL that does not parse', () => {
    process.env['QAM_URL'] = 'amqp://localhost';
    const error = typeErrorOf(() => connection({ url: 'amqp://app:hunter2@rab bit:5672/' }));
    expect(error.message).toContain("'url'");
    expect(error.message).not.toContain('QAM_URL');
    expect(error.message).not.toContain('hunter2');
  });
});

describe('QAM_DEBUG', () => {
  const saved = process.env['QAM_DEBUG'];
  afterEach(() => {
    if (saved === undefined) delete process.env['QAM_DEBUG'];
    else process.env['QAM_DEBUG'] = saved;
    jest.restoreAllMocks();
  });

  /** Whether the console logger, loaded afresh with QAM_DEBUG set to `value`, writes debug lines. */
  async function debugsWith(value: string): Promise<boolean> {
    process.env['QAM_DEBUG'] = value;
    jest.resetModules();
    const { consoleLogger } = await import('../../lib/logger.js');
    const debug = jest.spyOn(console, 'debug').mockImplementation(() => undefined);
    consoleLogger.debug('probe');
    const wrote = debug.mock.calls.length > 0;
    debug.mockRestore();
    return wrote;
  }

  it('turns debugging on only for 1 and true', async () => {
    expect(await debugsWith('1')).toBe(true);
    expect(await debugsWith('true')).toBe(true);
    expect(await debugsWith('TRUE')).toBe(true);
    expect(await debugsWith('0')).toBe(false);
    expect(await debugsWith('false')).toBe(false);
    expect(await debugsWith('')).toBe(false);
    expect(await debugsWith('no')).toBe(false);
  });
});

describe('closest', () => {
  it.each([
    ['hostName', 'hostname'],
    ['wrokers', 'workers'],
    ['host', 'hostname'],
    ['timout', 'timeout'],
    ['banana', undefined],
  ])('reads %p as %p', (name, expected) => {
    expect(closest(name, ['hostname', 'port', 'workers', 'timeout', 'url'])).toBe(expected);
  });
});
