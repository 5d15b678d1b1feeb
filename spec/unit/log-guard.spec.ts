import { jest } from '@jest/globals';
import { RateLimitedLog, clip, escapeControl, escapingLogger, quote } from '../../lib/log-guard.js';
import type { Logger } from '../../lib/logger.js';

function recorder(): Logger & { lines: Array<[string, string]> } {
  const lines: Array<[string, string]> = [];
  const keep =
    (level: string) =>
    (message: string): void => {
      lines.push([level, message]);
    };
  return { lines, debug: keep('debug'), info: keep('info'), warn: keep('warn'), error: keep('error') };
}

describe('escapeControl', () => {
  it('writes line breaks, terminal escapes, line separators and bidi overrides as escapes', () => {
    expect(escapeControl('a\nqam: forged\r\n')).toBe('a\\nqam: forged\\r\\n');
    expect(escapeControl('\u001b[2J\u0000\u007f\u0085')).toBe('\\u001b[2J\\u0000\\u007f\\u0085');
    expect(escapeControl('x\u2028y\u2029z\u202eevil\u2066')).toBe('x\\u2028y\\u2029z\\u202eevil\\u2066');
    expect(escapeControl('tab\there')).toBe('tab\\there');
  });

  it('leaves ordinary text, including non-ASCII letters, as it is', () => {
    const text = "server calc refused a request: Method 'my_instance.add' is not registered — ünïcödé 数";
    expect(escapeControl(text)).toBe(text);
  });
});

describe('clip and quote', () => {
  it('keep a name up to 256 characters whole, longer ones cut with their length', () => {
    const name = 'a'.repeat(255);
    expect(clip(name)).toBe(name);
    const long = 'b'.repeat(100_000);
    expect(clip(long)).toBe(`${'b'.repeat(256)}… (100000 characters)`);
    expect(clip(long, 10)).toBe('bbbbbbbbbb… (100000 characters)');
  });

  it('quote clips and escapes', () => {
    expect(quote('x\ny')).toBe("'x\\ny'");
    expect(quote(`${'\n'.repeat(5000)}`, 4)).toBe("'\\n\\n\\n\\n… (5000 characters)'");
  });
});

describe('escapingLogger', () => {
  it('escapes every level, so no message becomes two lines', () => {
    const inner = recorder();
    const logger = escapingLogger(inner);
    logger.debug('d\n');
    logger.info('i\n');
    logger.warn('w\n');
    logger.error('e\nqam: forged');
    expect(inner.lines).toEqual([
      ['debug', 'd\\n'],
      ['info', 'i\\n'],
      ['warn', 'w\\n'],
      ['error', 'e\\nqam: forged'],
    ]);
  });
});

describe('RateLimitedLog', () => {
  beforeEach(() => {
    jest.useFakeTimers();
  });
  afterEach(() => {
    jest.useRealTimers();
  });

  const summary = (suppressed: number, seconds: number): string => `${suppressed} more in ${seconds} s`;

  it('writes the first lines of a window, counts the rest, and says how many as the window ends', () => {
    const inner = recorder();
    const log = new RateLimitedLog(inner, summary, 3, 60_000);
    for (let i = 0; i < 1000; i++) log.warn(`refused ${i}`);
    expect(inner.lines).toEqual([
      ['warn', 'refused 0'],
      ['warn', 'refused 1'],
      ['warn', 'refused 2'],
    ]);
    jest.advanceTimersByTime(59_999);
    expect(inner.lines).toHaveLength(3);
    jest.advanceTimersByTime(1);
    expect(inner.lines).toHaveLength(4);
    expect(inner.lines[3]).toEqual(['warn', '997 more in 60 s']);
  });

  it('opens a new window with the next line after one ends, so a lasting flood costs limit + 1 lines per interval', () => {
    const inner = recorder();
    const log = new RateLimitedLog(inner, summary, 2, 10_000);
    for (let minute = 0; minute < 6; minute++) {
      for (let i = 0; i < 100; i++) {
        log.error(`line ${minute}.${i}`);
        jest.advanceTimersByTime(10_000 / 100);
      }
    }
    expect(inner.lines).toHaveLength(6 * 3);
    expect(inner.lines.filter(([, message]) => message === '98 more in 10 s')).toHaveLength(6);
    expect(inner.lines.slice(0, 2)).toEqual([
      ['error', 'line 0.0'],
      ['error', 'line 0.1'],
    ]);
  });

  it('writes no summary for a window without suppressed lines, and every line of a quiet log', () => {
    const inner = recorder();
    const log = new RateLimitedLog(inner, summary, 2, 1000);
    for (let i = 0; i < 5; i++) {
      log.warn(`line ${i}`);
      jest.advanceTimersByTime(1000);
    }
    expect(inner.lines.map(([, message]) => message)).toEqual(['line 0', 'line 1', 'line 2', 'line 3', 'line 4']);
  });

  it('flush ends the window at once, writing its summary', () => {
    const inner = recorder();
    const log = new RateLimitedLog(inner, summary, 1, 60_000);
    log.warn('a');
    log.warn('b');
    log.warn('c');
    log.flush();
    expect(inner.lines.map(([, message]) => message)).toEqual(['a', '2 more in 60 s']);
    expect(jest.getTimerCount()).toBe(0);
    log.warn('d');
    expect(inner.lines.map(([, message]) => message)).toEqual(['a', '2 more in 60 s', 'd']);
  });
});
