/** What `qam/testing` offers of the embedded broker (see lib/testing.ts). */
export {
  MemoryBroker,
  MemoryBrokerError,
  memoryBroker,
  type BindingInfo,
  type ConnectionInfo,
  type ExchangeInfo,
  type MemoryBrokerErrorCode,
  type Permissions,
  type QueueInfo,
} from './broker.js';
