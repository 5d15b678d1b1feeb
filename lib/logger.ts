/** Where qam writes what it notices: dropped replies, refused requests, reconnects, errors. */
export interface Logger {
  debug(message: string, ...details: unknown[]): void;
  info(message: string, ...details: unknown[]): void;
  warn(message: string, ...details: unknown[]): void;
  error(message: string, ...details: unknown[]): void;
}

const ignore = (): void => undefined;

/** `QAM_DEBUG=1` or `QAM_DEBUG=true` (any case); `0`, `false`, empty or anything else leaves debugging off. @internal */
export const debugging = /^(1|true)$/i.test(process.env['QAM_DEBUG'] ?? '');

/** The default: warnings and errors on the console, prefixed `qam:`; debug and info only with `QAM_DEBUG=1`. */
export const consoleLogger: Logger = {
  debug: debugging ? (message, ...details) => console.debug(`qam: ${message}`, ...details) : ignore,
  info: debugging ? (message, ...details) => console.info(`qam: ${message}`, ...details) : ignore,
  warn: (message, ...details) => console.warn(`qam: ${message}`, ...details),
  error: (message, ...details) => console.error(`qam: ${message}`, ...details),
};

/** A logger that drops everything. */
export const silentLogger: Logger = { debug: ignore, info: ignore, warn: ignore, error: ignore };
