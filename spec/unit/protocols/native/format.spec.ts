import { errorToPayload, parseReply, parseRequest, payloadToError } from '../../../../lib/protocols/native/format.js';
import { QAMMethodNotFoundException, QAMRemoteException } from '../../../../lib/errors.js';
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
    expect(rebuilt).toMatchObject({ code: 'E_BAD', remoteName: 'TypeError', message: 'bad' });
    expect((rebuilt.cause as QAMRemoteException).remoteName).toBe('Error');
  });

  it('rebuild registered classes with their inheritance, without running constructors', () => {
    const rebuilt = payloadToError(errorToPayload(new BackOrdered('none left'), false), new Map([['BackOrdered', BackOrdered]]));
    expect(rebuilt).toBeInstanceOf(BackOrdered);
    expect(rebuilt).toBeInstanceOf(OutOfStock);
    expect(rebuilt.message).toBe('none left');
  });

  it('rebuild the server’s own errors as their classes', () => {
    const rebuilt = payloadToError(errorToPayload(new QAMMethodNotFoundException('no such'), false), new Map());
    expect(rebuilt).toBeInstanceOf(QAMMethodNotFoundException);
    expect((rebuilt as QAMMethodNotFoundException).code).toBe('METHOD_NOT_FOUND');
  });

  it('turn thrown non-errors into a plain error payload', () => {
    expect(errorToPayload('just a string', false)).toEqual({ name: 'Error', message: 'just a string' });
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
