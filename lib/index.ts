export { QAMServer, currentCall, type QAMServerOptions, type QAMServerStats, type CallContext, type ServerApi } from './server.js';
export { QAMProxy, type QAMProxyOptions, type QAMProxyConstructor } from './proxy.js';
export { QAMConnection, type ConnectionOptions, type QAMConnectionEvents, type TlsOptions } from './connection.js';
export {
  QAMException,
  QAMMethodNotFoundException,
  QAMTimeoutException,
  QAMConnectionException,
  QAMClosedException,
  QAMNoRouteException,
  QAMAccessRefusedException,
  QAMTlsException,
  QAMPublishException,
  QAMAbortException,
  QAMInvalidCallException,
  QAMPayloadTooLargeException,
  QAMBadMessageException,
  QAMSerializationException,
  QAMRemoteException,
  type QAMErrorCode,
} from './errors.js';
export { CallbackState, type ResultCallback, type ErrorCallback } from './pending.js';
export type { CallMode, ControlName, MethodPath, ProxyControls, QAMProxyStats, RemoteApi, UntypedApi } from './remote.js';
export type { ErrorClass } from './envelope.js';
export type { WireProtocol } from './naming.js';
export type { WorkerExport } from './thread-pool.js';
export { superjson, type SerializerName } from './serializers.js';
export { consoleLogger, silentLogger, type Logger } from './logger.js';
