/** Postage's message dictionary: what reads as a message, what is refused and why, and result messages. */
import { readFingerprint } from '../../../lib/fingerprint.js';
import { encodeMessage, postageMessage, readMessage, readResult, resultMessage } from '../../../lib/messaging/postage.js';

const fingerprint = Object.freeze({
  name: 'unit',
  type: 'test',
  pid: 42,
  host: 'h',
  user: 'u',
  vhost: '/',
  library: 'qam',
  version: '0.1.0',
});

const read = (text: string): ReturnType<typeof readMessage> => readMessage(Buffer.from(text));

describe('Postage messages', () => {
  it('round-trips a message in Postage 3 form', () => {
    const message = postageMessage('command', 'quit', 'message', fingerprint, { parameters: { now: true } });
    expect(JSON.parse(encodeMessage(message).toString())).toEqual({
      type: 'command',
      name: 'quit',
      category: 'message',
      version: '2',
      fingerprint,
      content: { parameters: { now: true } },
      _reserved: {},
    });
    expect(readMessage(encodeMessage(message))).toEqual({ message });
  });

  it('reads what Postage may leave out or write differently: no version, fingerprint, content or _reserved; a numeric version', () => {
    expect(read('{"type": "status", "name": "ok", "category": "message"}')).toEqual({
      message: { type: 'status', name: 'ok', category: 'message', version: '2', fingerprint: {}, content: {}, _reserved: {} },
    });
    expect(read('{"type": "c", "name": "n", "category": "rpc", "version": 2}')).toMatchObject({ message: { version: 2 } });
  });

  it.each([
    ['not json', 'not-json', 'the body is not JSON'],
    ['[1]', 'wrong-shape', 'not a JSON object'],
    ['{"name": "n", "category": "message"}', 'wrong-shape', "'type'"],
    ['{"type": "", "name": "n", "category": "message"}', 'wrong-shape', "'type'"],
    ['{"type": "t", "category": "message"}', 'wrong-shape', "'name'"],
    ['{"type": "t", "name": "n", "category": "event"}', 'wrong-shape', "'category'"],
    ['{"type": "t", "name": "n", "category": "message", "version": []}', 'wrong-shape', "'version'"],
    ['{"type": "t", "name": "n", "category": "message", "content": [1]}', 'wrong-shape', "'content'"],
    ['{"type": "t", "name": "n", "category": "message", "fingerprint": "me"}', 'wrong-shape', "'fingerprint'"],
    ['{"type": "t", "name": "n", "category": "message", "_reserved": 1}', 'wrong-shape', "'_reserved'"],
  ])('refuses %s as %s', (text, problem, detail) => {
    const outcome = read(text);
    expect(outcome).toMatchObject({ problem });
    expect('detail' in outcome && outcome.detail).toContain(detail);
  });

  it('does not take inherited properties for fields', () => {
    expect(read('{"__proto__": {"type": "t", "name": "n", "category": "message"}}')).toMatchObject({ problem: 'wrong-shape' });
  });

  it('reads the three result kinds by their Postage names', () => {
    for (const [kind, value] of [
      ['value', 49],
      ['error', null],
      ['exception', 'RangeError'],
    ] as const) {
      const message = resultMessage(kind, value, 'text', fingerprint);
      expect(message.content).toEqual({ type: { value: 'success', error: 'error', exception: 'exception' }[kind], value, message: 'text' });
      expect(readResult(message)).toEqual({ kind, value, message: 'text' });
    }
    expect(readResult(postageMessage('command', 'x', 'message', fingerprint, { type: 'success' }))).toBeUndefined();
    expect(readResult(postageMessage('result', 'none', 'message', fingerprint, { type: 'maybe' }))).toBeUndefined();
  });

  it('refuses content JSON cannot carry with a TypeError', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic['self'] = cyclic;
    expect(() => encodeMessage(postageMessage('t', 'n', 'message', fingerprint, cyclic))).toThrow(TypeError);
  });

  it('reads a Postage fingerprint, whose pid is a string, with the pid as a number', () => {
    expect(readFingerprint({ name: 'p', type: 'python', pid: '1234', host: 'h', user: 'u', vhost: '/' })).toMatchObject({ pid: 1234 });
    expect(readFingerprint({ name: 'p', pid: 'x12' })).toMatchObject({ pid: 0 });
  });
});
