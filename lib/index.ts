export {
  QAMServer,
  type QAMServerOptions,
  type QAMServerSpelling,
  type QAMServerStats,
  type ServerApi,
  type FunctionOptions,
  type InstanceOptions,
} from './server/server.js';
export { currentCall, type CallContext, type Middleware } from './server/call-context.js';
export type { ParamsSchema } from './server/validation.js';
export type { DedupeOptions } from './server/dedupe.js';
export { QAMProxy, type QAMProxyOptions, type QAMProxyConstructor } from './proxy/proxy.js';
export {
  QAMConnection,
  type CallmeConnectionOptions,
  type ConnectionOptions,
  type QAMConnectionEvents,
  type TlsOptions,
} from './amqp/connection.js';
export {
  QAMException,
  QAMMethodNotFoundException,
  QAMTimeoutException,
  QAMConnectionException,
  QAMClosedException,
  QAMNoRouteException,
  QAMAccessRefusedException,
  QAMTlsException,
  QAMConnectFailedException,
  QAMPublishException,
  QAMAbortException,
  QAMInvalidCallException,
  QAMPayloadTooLargeException,
  QAMBadMessageException,
  QAMSerializationException,
  QAMInvalidParamsException,
  QAMRemoteException,
  type QAMErrorCode,
  type ParamsIssue,
} from './errors.js';
export type { ConnectFailedReason } from './errors.js';
export { CallbackState, type ResultCallback, type ErrorCallback } from './proxy/pending.js';
export type {
  CallMode,
  Carried,
  ControlName,
  JsonCarried,
  MethodPath,
  NotCarriedByJson,
  ProxyControls,
  QAMProxyStats,
  RemoteApi,
  ResultNotAccepted,
  Sent,
  UntypedApi,
} from './proxy/types.js';
export type { ErrorClass } from './protocols/native/format.js';
export type { WireProtocol } from './protocols/naming.js';
export type { WorkerExport } from './server/thread-pool.js';
export { superjson, type SerializerName } from './serializers.js';
export { consoleLogger, silentLogger, type Logger } from './logger.js';
export type { RawCallOptions, RawProperties, RawPublishOptions, RawReply } from './messaging/raw.js';
export type { ExchangeType, IncomingProperties, MessageProperties } from './amqp/port.js';
export { libraryName, libraryVersion, type Fingerprint, type FingerprintOptions } from './fingerprint.js';
export type { MethodStats, LatencyHistogram } from './metrics.js';
export { QAMProducer, type QAMProducerOptions, type SendTarget, type RpcOptions, type RpcResult } from './messaging/producer.js';
export {
  QAMProcessor,
  type QAMProcessorOptions,
  type QAMProcessorStats,
  type BindingDescription,
  type MessageContext,
  type ContentHandler,
  type FullBodyHandler,
  type RpcHandler,
  type RpcReply,
} from './messaging/processor.js';
export type { PostageMessage, PostageCategory, RpcResultKind } from './messaging/postage.js';
export type { ExchangeDescription, QueueDescription, ExchangeKey } from './messaging/topology.js';
export {
  QAMEvents,
  type QAMEventsOptions,
  type PublishEventOptions,
  type SubscribeOptions,
  type EventContext,
  type EventHandler,
  type EventSubscription,
  type EventSubscriptionStats,
} from './messaging/events.js';
export type { MethodInfo, RemoteMethod, ServerDescription } from './server/dispatch.js';
