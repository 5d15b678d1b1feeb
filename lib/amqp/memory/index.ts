/**
 * The embedded in-process broker: a second implementation of the AMQP port, selected by
 * `memory://` URLs.
 */
export {
  MemoryBroker,
  MemoryBrokerError,
  memoryBroker,
  type BindingInfo,
  type ConnectionInfo,
  type ExchangeInfo,
  type MemoryBrokerErrorCode,
  type MemoryConnectOptions,
  type Permissions,
  type QueueInfo,
} from './broker.js';
export { memoryPort, parseMemoryUrl, type MemoryAddress } from './memory-port.js';
