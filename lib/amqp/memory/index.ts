/**
 * The embedded in-process broker: a second implementation of the AMQP port, selected by
 * `memory://` URLs.
 */
export * from './public.js';
export type { MemoryConnectOptions } from './broker.js';
export { memoryPort, parseMemoryUrl, type MemoryAddress } from './memory-port.js';
