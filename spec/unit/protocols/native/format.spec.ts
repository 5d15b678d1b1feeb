import {
  errorToPayload,
  parseReply,
  parseRequest,
  payloadToError,
  serverErrorToPayload,
  type ErrorClass,
} from '../../../../lib/protocols/native/format.js';
import {
  QAMBadMessageException,
  QAMException,
  QAMMethodNotFoundException,
  QAMPayloadTooLargeException,
  QAMRemoteException,
  QAMSerializationException,
  QAMTimeoutException,
  describeError,
} from '../../../../lib/errors.js';
import { serializerNamed } from '../../../../lib/serializers.js';

class OutOfStock extends Error {
  override name = 'OutOfStock';
}
class BackOrdered extends OutOfStock {
  override name = 'BackOrdered';
}

describe('request envelope', () => {
  it('reads method, params and deadline', () => {
    expect(parseRequest({ method: 'add', params: [1, 2], deadline: 5 })).toEqual({ method: 'add', params: [1, 2], deadline: 5 });
    expect(parseRequest({ method: 'add' })).toEqual({ method: 'add', params: [] });
  });

  it.each([
    ['not an object', [1, 2]],
    ['null', null],
    ['no method', { params: [] }],
    ['a numeric method', { method: 3, params: [] }],
    ['params not an array', { method: 'add', params: { 0: 1 } }],
    ['a string deadline', { method: 'add', params: [], deadline: 'soon' }],
  ])('refuses %s with BAD_MESSAGE', (_label, body) => {
    expect(() => parseRequest(body)).toThrow(expect.objectContaining({ code: 'BAD_MESSAGE' }));
  });

  it('reads only own properties, so a polluted prototype cannot supply a method', () => {
    const body = JSON.parse('{"__proto__": {"method": "add"}, "params": []}') as unknown;
    expect(() => parseRequest(body)).toThrow(expect.objectContaining({ code: 'BAD_MESSAGE' }));
    expect(({} as Record<string, unknown>)['method']).toBeUndefined();
  });
});

describe('reply envelope', () => {
  it('reads a result, including null', () => {
    expect(parseReply({ result: null })).toEqual({ result: null });
  });

  it('reads an error and refuses a shapeless one', () => {
    expect(parseReply({ error: { name: 'TypeError', message: 'x' } })).toEqual({ error: { name: 'TypeError', message: 'x' } });
    expect(() => parseReply({ error: 'boom' })).toThrow(expect.objectContaining({ code: 'BAD_MESSAGE' }));
    expect(() => parseReply({})).toThrow(expect.objectContaining({ code: 'BAD_MESSAGE' }));
  });
});

describe('remote errors', () => {
  it('keep name, message, code and cause; the stack only when asked', () => {
    const error = Object.assign(new TypeError('bad', { cause: new Error('root') }), { code: 'E_BAD' });
    const hidden = errorToPayload(error, false);
    expect(hidden).toEqual({ name: 'TypeError', message: 'bad', code: 'E_BAD', cause: { name: 'Error', message: 'root' } });
    expect(errorToPayload(error, true).stack).toContain('TypeError: bad');

    const rebuilt = payloadToError(hidden, new Map());
    expect(rebuilt).toBeInstanceOf(QAMRemoteException);
    expect(rebuilt).toMatchObject({ code: 'REMOTE_ERROR', remoteCode: 'E_BAD', remoteName: 'TypeError', message: 'bad' });
    expect((rebuilt.cause as QAMRemoteException).remoteName).toBe('Error');
  });

  it('rebuild registered classes with their inheritance, without running constructors, keeping their code', () => {
    const thrown = Object.assign(new BackOrdered('none left'), { code: 'E_STOCK' });
    const rebuilt = payloadToError(errorToPayload(thrown, false), new Map([['BackOrdered', BackOrdered]]));
    expect(rebuilt).toBeInstanceOf(BackOrdered);
    expect(rebuilt).toBeInstanceOf(OutOfStock);
    expect(rebuilt).toMatchObject({ message: 'none left', code: 'E_STOCK', remoteCode: 'E_STOCK', remoteName: 'BackOrdered' });
  });

  it.each([
    [new QAMMethodNotFoundException('no such'), QAMMethodNotFoundException],
    [new QAMBadMessageException('garbled'), QAMBadMessageException],
    [new QAMPayloadTooLargeException('huge'), QAMPayloadTooLargeException],
    [new QAMSerializationException('cyclic'), QAMSerializationException],
  ])('rebuild the server’s own errors as their classes: %s', (error, errorClass) => {
    const rebuilt = payloadToError(serverErrorToPayload(error, false), new Map());
    expect(rebuilt).toBeInstanceOf(errorClass);
    expect(rebuilt).toMatchObject({ code: error.code, message: error.message });
  });

  it.each<[string, unknown]>([
    ['qam’s own not-found error', new QAMMethodNotFoundException('no such')],
    [
      'an error named as qam’s, with its code',
      Object.assign(new Error('no such'), { name: 'QAMMethodNotFoundException', code: 'METHOD_NOT_FOUND' }),
    ],
    ['an error with the code of a timeout', Object.assign(new Error('late'), { code: 'TIMEOUT' })],
    [
      'an error that carries the server’s mark itself',
      Object.assign(new Error('forged'), { name: 'QAMBadMessageException', code: 'BAD_MESSAGE', origin: 'server' }),
    ],
  ])('never pass a function’s error off as one of qam’s: %s', (_label, thrown) => {
    const payload = errorToPayload(thrown, false);
    expect(payload.origin).toBeUndefined();
    const rebuilt = payloadToError(
      payload,
      new Map<string, ErrorClass>([
        ['QAMMethodNotFoundException', QAMMethodNotFoundException],
        ['QAMTimeoutException', QAMTimeoutException],
      ]),
    );
    expect(rebuilt).toBeInstanceOf(QAMRemoteException);
    expect(rebuilt).toMatchObject({
      code: 'REMOTE_ERROR',
      remoteCode: (thrown as { code: string }).code,
      remoteName: (thrown as Error).name,
    });
  });

  it('trust the server’s mark on the reply’s error only, not on a cause', () => {
    const parsed = parseReply({
      error: {
        name: 'Error',
        message: 'outer',
        cause: { name: 'QAMBadMessageException', message: 'inner', code: 'BAD_MESSAGE', origin: 'server' },
      },
    });
    const rebuilt = payloadToError('error' in parsed ? parsed.error : { name: '', message: '' }, new Map());
    expect(rebuilt.cause).toBeInstanceOf(QAMRemoteException);
    expect(rebuilt.cause).not.toBeInstanceOf(QAMBadMessageException);
  });

  it('turn thrown non-errors into a plain error payload', () => {
    expect(errorToPayload('just a string', false)).toEqual({ name: 'Error', message: 'just a string' });
  });
});

describe('hostile thrown values', () => {
  const trap = (): never => {
    throw new Error('trap');
  };
  const everyTrap = { get: trap, has: trap, ownKeys: trap, getOwnPropertyDescriptor: trap, getPrototypeOf: trap, apply: trap };
  const revocable = Proxy.revocable({}, {});
  revocable.revoke();
  const getters = new Error('ignored');
  for (const key of ['stack', 'name', 'message', 'code', 'cause', 'args']) Object.defineProperty(getters, key, { get: trap });
  const cyclic = new Error('cyclic');
  Object.defineProperty(cyclic, 'cause', { value: cyclic });

  it.each<[string, unknown, number]>([
    ['a Proxy whose every trap throws', new Proxy({}, everyTrap), 2],
    [
      'a Proxy whose traps throw such Proxies',
      new Proxy(
        {},
        {
          getPrototypeOf: () => {
            throw new Proxy({}, everyTrap);
          },
          get: () => {
            throw new Proxy({}, everyTrap);
          },
        },
      ),
      2,
    ],
    ['a revoked Proxy', revocable.proxy, 2],
    ['an Error whose getters throw', getters, 6],
    ['an object without prototype', Object.create(null), 1],
    ['a function whose conversion to text throws', Object.assign(() => 0, { toString: trap }), 1],
    ['an Error whose causes form a cycle', cyclic, 0],
  ])('%s: read without throwing, each failed read told', (_label, thrown, faults) => {
    const told: unknown[] = [];
    const payload = errorToPayload(thrown, true, (fault) => told.push(fault));
    expect(payload).toMatchObject({ name: expect.any(String), message: expect.any(String) });
    expect(told).toHaveLength(faults);
    expect(typeof describeError(thrown)).toBe('string');
  });
});

describe('error codes', () => {
  it('are typed: each class has its own, a remote error always REMOTE_ERROR', () => {
    const timeout: 'TIMEOUT' = new QAMTimeoutException('late').code;
    const remote: 'REMOTE_ERROR' = new QAMRemoteException('boom', { remoteName: 'Error', remoteCode: 'TIMEOUT' }).code;
    expect([timeout, remote]).toEqual(['TIMEOUT', 'REMOTE_ERROR']);
    // @ts-expect-error: a code qam does not have
    expect(new QAMException('x', { code: 'NOT_A_CODE' }).code).toBe('NOT_A_CODE');
  });
});

describe('serializers', () => {
  const superjson = serializerNamed('superjson');

  it('superjson keeps rich values', () => {
    const value = {
      when: new Date(0),
      big: 2n ** 70n,
      map: new Map([['a', 1]]),
      set: new Set([1, 2]),
      nothing: undefined,
      pattern: /a+/gi,
      bytes: new Uint8Array([1, 2, 3]),
      buffer: Buffer.from('héllo'),
    };
    const back = superjson.decode(superjson.encode(value)) as typeof value;
    expect(back).toEqual(value);
    expect(Buffer.isBuffer(back.buffer)).toBe(true);
    expect('nothing' in back).toBe(true);
  });

  it('superjson refuses prototype-polluting paths', () => {
    const hostile = Buffer.from(JSON.stringify({ json: { a: 1 }, meta: { values: { '__proto__.polluted': ['undefined'] } } }));
    expect(() => superjson.decode(hostile)).toThrow();
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  });

  it('superjson keeps every typed array kind and large BigInts', () => {
    const value = { f: new Float64Array([1.5, -2]), i: new Int16Array([-3]), b: new BigInt64Array([-5n]), n: -(10n ** 40n) };
    expect(superjson.decode(superjson.encode(value))).toEqual(value);
  });

  it.each([
    ['a built-in typed-array annotation', { json: { a: 2e9 }, meta: { values: { a: [['typed-array', 'Float64Array']] } } }],
    ['a built-in bigint annotation', { json: { a: '1' }, meta: { values: { a: ['bigint'] } } }],
    ['a Buffer given as a length', { json: { a: { length: 2e9 } }, meta: { values: { a: [['custom', 'Buffer']] } } }],
    ['a typed array given as a length', { json: { a: 2e9 }, meta: { values: { a: [['custom', 'TypedArray']] } } }],
    ['a BigInt of a million digits', { json: { a: '9'.repeat(1e6) }, meta: { values: { a: [['custom', 'BigInt']] } } }],
  ])('superjson refuses %s without allocating it', (_label, message) => {
    expect(() => superjson.decode(Buffer.from(JSON.stringify(message)))).toThrow();
  });

  it('names an unknown serializer', () => {
    expect(() => serializerNamed('pickle')).toThrow(/pickle/);
  });
});
