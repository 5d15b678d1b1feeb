import { describe, expect, it } from '@jest/globals';
import { QAMMethodNotFoundException, QAMRemoteException } from '../../../../lib/errors.js';
import {
  decodeQamBody,
  encodeQamBody,
  parseQamReply,
  parseQamRequest,
  qamExceptionArgs,
  qamNotFoundText,
  qamReplyBody,
  qamReplyError,
} from '../../../../lib/protocols/qam/format.js';

describe("QAM's JSON format", () => {
  it('reads a request, and names the address of a malformed one when it has a usable one', () => {
    const request = { id: 3, method_name: 'my_instance.adder_function', routing_key: 'c_client_routing_key', params: [2, 4] };
    expect(parseQamRequest(request)).toEqual({ request });
    expect(parseQamRequest({ ...request, params: 'x' })).toEqual({
      problem: expect.any(String),
      address: { id: 3, routingKey: 'c_client_routing_key' },
    });
    expect(parseQamRequest({ ...request, method_name: undefined })).toMatchObject({ address: { id: 3 } });
    expect(parseQamRequest({ ...request, id: 1.5 })).toEqual({ problem: expect.any(String), address: undefined });
    expect(parseQamRequest({ ...request, id: '3' })).toEqual({ problem: expect.any(String), address: undefined });
    expect(parseQamRequest({ ...request, id: 2 ** 53 + 2 })).toEqual({ problem: expect.stringContaining('2^53'), address: undefined });
    expect(parseQamRequest({ ...request, routing_key: '' })).toEqual({ problem: expect.any(String), address: undefined });
    expect(parseQamRequest([request])).toEqual({ problem: expect.any(String), address: undefined });
  });

  it('decodes strict UTF-8 JSON only', () => {
    expect(decodeQamBody(Buffer.from('{"a": [1, "é"]}'))).toEqual({ a: [1, 'é'] });
    for (const body of [Buffer.from([0xff, 0xfe]), Buffer.from('{"a": NaN}'), Buffer.from('')]) {
      expect(() => decodeQamBody(body)).toThrow(expect.objectContaining({ code: 'BAD_MESSAGE' }));
    }
  });

  it('refuses to encode what has no JSON form', () => {
    expect(() => encodeQamBody({ id: 1, result: 1n, exception: false, internal_exception: -1 })).toThrow(
      expect.objectContaining({ code: 'SERIALIZATION_FAILED' }),
    );
  });

  it("words QAM's not-found text with what follows the first dot", () => {
    expect(qamNotFoundText('nosuch')).toBe('Methodname nosuch is not registered on QAMServer');
    expect(qamNotFoundText('my_instance.nosuch')).toBe('Methodname nosuch is not registered on QAMServer');
    expect(qamNotFoundText('a.b.c')).toBe('Methodname b.c is not registered on QAMServer');
  });

  it('builds reply bodies: results, not found, and exception args', () => {
    expect(qamReplyBody(1, { result: undefined })).toEqual({ id: 1, result: null, exception: false, internal_exception: -1 });
    expect(qamReplyBody(2, { error: new QAMMethodNotFoundException(qamNotFoundText('x')), fromServer: true })).toEqual({
      id: 2,
      result: 'Methodname x is not registered on QAMServer',
      exception: true,
      internal_exception: 1,
    });
    // The same error thrown by a function is the function's exception, not QAM's not-found.
    expect(qamReplyBody(2, { error: new QAMMethodNotFoundException(qamNotFoundText('x')) })).toEqual({
      id: 2,
      result: ['Methodname x is not registered on QAMServer'],
      exception: true,
      internal_exception: -1,
    });
    expect(qamReplyBody(3, { error: Object.assign(new Error('boom'), { args: ['boom', 42] }) })).toMatchObject({
      result: ['boom', 42],
      internal_exception: -1,
    });
    expect(qamExceptionArgs(Object.assign(new Error('m'), { args: 'not a list' }))).toEqual(['m']);
    expect(qamExceptionArgs('thrown text')).toEqual(['thrown text']);
  });

  it('reads replies and rebuilds their errors as QAM raises them', () => {
    expect(() => parseQamReply({ id: 1, result: 1, exception: 'no', internal_exception: -1 })).toThrow(
      expect.objectContaining({ code: 'BAD_MESSAGE' }),
    );
    expect(() => parseQamReply({ id: 1, exception: false, internal_exception: -1 })).toThrow(
      expect.objectContaining({ code: 'BAD_MESSAGE' }),
    );
    const notFound = qamReplyError(
      parseQamReply({ id: 1, result: 'Methodname x is not registered on QAMServer', exception: true, internal_exception: 1 }),
    );
    expect(notFound).toBeInstanceOf(QAMMethodNotFoundException);
    expect(notFound).toMatchObject({ code: 'METHOD_NOT_FOUND', args: ['Methodname x is not registered on QAMServer'] });
    const raised = qamReplyError(parseQamReply({ id: 1, result: ['boom', 42], exception: true, internal_exception: -1 }));
    expect(raised).toBeInstanceOf(QAMRemoteException);
    expect(raised).toMatchObject({ code: 'REMOTE_ERROR', args: ['boom', 42], remoteName: 'Exception' });
  });
});
