import type { Logger } from './logger.js';

/**
 * What a server writes about what it reads off the wire: method names, content types and reply
 * addresses come from whoever may publish to its queue. A line break in one would forge a log
 * line, a 100,000-character name would become a 100 KB line, and a refusal logged per request
 * would let one client flood the log. These helpers keep each line one line, short, and rare.
 */

/** Characters that end, hide or reorder a line on a terminal or in a line-based log file. */
const unsafeClass = '[\\u0000-\\u001f\\u007f-\\u009f\\u2028\\u2029\\u200e\\u200f\\u202a-\\u202e\\u2066-\\u2069]';
const hasUnsafe = new RegExp(unsafeClass);
const unsafe = new RegExp(unsafeClass, 'g');
const named: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** `text` with control, line-separator and bidirectional-override characters written as escapes. */
export function escapeControl(text: string): string {
  if (!hasUnsafe.test(text)) return text;
  return text.replace(unsafe, (c) => named[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * `text` cut to `max` characters, saying how long it was: `aaaa… (100000 characters)`. Method
 * paths are at most 255 characters, so a name any registration could match is never cut at 256.
 */
export function clip(text: string, max = 256): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length} characters)`;
}

/** `text` in single quotes, clipped and escaped, for a log line or an error message. */
export function quote(text: string, max = 256): string {
  return `'${escapeControl(clip(text, max))}'`;
}

/** `logger` with every message's control characters escaped, so nothing logged can forge a line. */
export function escapingLogger(logger: Logger): Logger {
  return {
    debug: (message, ...details) => logger.debug(escapeControl(message), ...details),
    info: (message, ...details) => logger.info(escapeControl(message), ...details),
    warn: (message, ...details) => logger.warn(escapeControl(message), ...details),
    error: (message, ...details) => logger.error(escapeControl(message), ...details),
  };
}

/**
 * Lines of one kind (say, refused requests) at most `limit` per `intervalMs`: a window opens with
 * the first line, the next `limit - 1` in that window are written too, the rest only counted, and
 * as the window ends one line says how many were left out. A flood thus costs at most `limit + 1`
 * lines per interval, and the first lines of each burst, which say what is going on, are kept.
 * @internal
 */
export class RateLimitedLog {
  readonly #logger: Logger;
  readonly #summary: (suppressed: number, seconds: number) => string;
  readonly #limit: number;
  readonly #intervalMs: number;
  #written = 0;
  #suppressed = 0;
  #window: NodeJS.Timeout | undefined;

  constructor(logger: Logger, summary: (suppressed: number, seconds: number) => string, limit: number, intervalMs: number) {
    this.#logger = logger;
    this.#summary = summary;
    this.#limit = limit;
    this.#intervalMs = intervalMs;
  }

  warn(message: string): void {
    this.#write('warn', message);
  }

  error(message: string): void {
    this.#write('error', message);
  }

  /** Ends the window now, writing its summary line if lines were left out. */
  flush(): void {
    clearTimeout(this.#window);
    this.#endWindow();
  }

  #write(level: 'warn' | 'error', message: string): void {
    if (this.#window === undefined) {
      this.#window = setTimeout(() => this.#endWindow(), this.#intervalMs);
      this.#window.unref();
    }
    if (this.#written < this.#limit) {
      this.#written++;
      this.#logger[level](message);
    } else {
      this.#suppressed++;
    }
  }

  #endWindow(): void {
    this.#window = undefined;
    const suppressed = this.#suppressed;
    this.#written = 0;
    this.#suppressed = 0;
    if (suppressed > 0) this.#logger.warn(this.#summary(suppressed, Math.round(this.#intervalMs / 1000)));
  }
}
