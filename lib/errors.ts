/**
 * The codes of qam's errors: each class's own code, plus `QAM_ERROR` for a QAMException built
 * without one. A remote function's own code is never one of these: what it throws arrives as
 * {@link QAMRemoteException}, code `REMOTE_ERROR`, with the function's code in `remoteCode`.
 */
export type QAMErrorCode =
  | 'QAM_ERROR'
  | 'METHOD_NOT_FOUND'
  | 'TIMEOUT'
  | 'CONNECTION_LOST'
  | 'CONNECT_FAILED'
  | 'CLOSED'
  | 'NO_ROUTE'
  | 'TLS_FAILED'
  | 'ACCESS_REFUSED'
  | 'PUBLISH_FAILED'
  | 'ABORTED'
  | 'INVALID_CALL'
  | 'INVALID_PARAMS'
  | 'PAYLOAD_TOO_LARGE'
  | 'BAD_MESSAGE'
  | 'SERIALIZATION_FAILED'
  | 'PRECONDITION_FAILED'
  | 'TOPOLOGY_FAILED'
  | 'WORKER_CRASHED'
  | 'DELIVERY_LIMIT'
  | 'REMOTE_ERROR';

/**
 * Every error qam raises is a {@link QAMException} with a stable string `code`; assert on the code,
 * not on the message text. Transport failures (timeout, connection lost, closed, no route) are
 * classes of their own, apart from {@link QAMRemoteException}, which carries an error thrown by
 * the remote function.
 */
export class QAMException extends Error {
  override name = 'QAMException';
  /** Stable identifier of the failure, e.g. `'TIMEOUT'`. */
  readonly code: QAMErrorCode;

  constructor(message: string, options: { code?: QAMErrorCode; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = options.code ?? 'QAM_ERROR';
  }
}

/**
 * The server has no function, instance or method of that name (QAM's meaning). From a QAM server,
 * `args` holds the reply's args, as the exception's args in Python.
 */
export class QAMMethodNotFoundException extends QAMException {
  override name = 'QAMMethodNotFoundException';
  declare readonly code: 'METHOD_NOT_FOUND';
  readonly args: unknown[] | undefined;
  constructor(message: string, args?: unknown[]) {
    super(message, { code: 'METHOD_NOT_FOUND' });
    this.args = args;
  }
}

/** No reply arrived within the call's timeout (QAM's meaning). */
export class QAMTimeoutException extends QAMException {
  override name = 'QAMTimeoutException';
  declare readonly code: 'TIMEOUT';
  constructor(message: string) {
    super(message, { code: 'TIMEOUT' });
  }
}

/** The connection or channel carrying the call was lost before its reply arrived. */
export class QAMConnectionException extends QAMException {
  override name = 'QAMConnectionException';
  declare readonly code: 'CONNECTION_LOST';
  constructor(message: string, cause?: unknown) {
    super(message, { code: 'CONNECTION_LOST', cause });
  }
}

/** The proxy or server was closed; the call cannot complete. */
export class QAMClosedException extends QAMException {
  override name = 'QAMClosedException';
  declare readonly code: 'CLOSED';
  constructor(message: string) {
    super(message, { code: 'CLOSED' });
  }
}

/** No queue serves the called server id: the broker returned the request as unroutable. */
export class QAMNoRouteException extends QAMException {
  override name = 'QAMNoRouteException';
  declare readonly code: 'NO_ROUTE';
  constructor(message: string) {
    super(message, { code: 'NO_ROUTE' });
  }
}

/**
 * The TLS handshake failed: the broker's certificate is not trusted or does not match the
 * servername, or the broker refused the client certificate. `cause` is Node's TLS error.
 */
export class QAMTlsException extends QAMException {
  override name = 'QAMTlsException';
  declare readonly code: 'TLS_FAILED';
  constructor(message: string, cause?: unknown) {
    super(message, { code: 'TLS_FAILED', cause });
  }
}

/** The broker refused an operation for lack of permission (AMQP 403 ACCESS_REFUSED). */
export class QAMAccessRefusedException extends QAMException {
  override name = 'QAMAccessRefusedException';
  declare readonly code: 'ACCESS_REFUSED';
  constructor(message: string, cause?: unknown) {
    super(message, { code: 'ACCESS_REFUSED', cause });
  }
}

/** The broker did not accept the request (publisher confirm nack, or the channel closed). */
export class QAMPublishException extends QAMException {
  override name = 'QAMPublishException';
  declare readonly code: 'PUBLISH_FAILED';
  constructor(message: string, cause?: unknown) {
    super(message, { code: 'PUBLISH_FAILED', cause });
  }
}

/** The call was cancelled through its AbortSignal or by `proxy.cancel(uid)`. */
export class QAMAbortException extends QAMException {
  override name = 'QAMAbortException';
  declare readonly code: 'ABORTED';
  constructor(message: string, cause?: unknown) {
    super(message, { code: 'ABORTED', cause });
  }
}

/** The call is malformed before anything is sent (bad path, bad arguments to a control). */
export class QAMInvalidCallException extends QAMException {
  override name = 'QAMInvalidCallException';
  declare readonly code: 'INVALID_CALL';
  constructor(message: string) {
    super(message, { code: 'INVALID_CALL' });
  }
}

/** One problem a schema found in a call's params: its message and where (`[0, 'name']`: the first param's `name`). */
export interface ParamsIssue {
  readonly message: string;
  readonly path?: readonly (string | number)[];
}

/**
 * The server's schema for the called function refused its params; nothing ran. `issues` lists
 * what the schema library reported.
 */
export class QAMInvalidParamsException extends QAMException {
  override name = 'QAMInvalidParamsException';
  declare readonly code: 'INVALID_PARAMS';
  readonly issues: readonly ParamsIssue[];
  constructor(message: string, issues: readonly ParamsIssue[]) {
    super(message, { code: 'INVALID_PARAMS' });
    this.issues = issues;
  }
}

/** A message exceeds the configured `maxMessageBytes`. */
export class QAMPayloadTooLargeException extends QAMException {
  override name = 'QAMPayloadTooLargeException';
  declare readonly code: 'PAYLOAD_TOO_LARGE';
  constructor(message: string) {
    super(message, { code: 'PAYLOAD_TOO_LARGE' });
  }
}

/** A message could not be decoded or does not have the shape of a qam envelope. */
export class QAMBadMessageException extends QAMException {
  override name = 'QAMBadMessageException';
  declare readonly code: 'BAD_MESSAGE';
  constructor(message: string, cause?: unknown) {
    super(message, { code: 'BAD_MESSAGE', cause });
  }
}

/** A value could not be serialized (arguments on the proxy, a result on the server). */
export class QAMSerializationException extends QAMException {
  override name = 'QAMSerializationException';
  declare readonly code: 'SERIALIZATION_FAILED';
  constructor(message: string, cause?: unknown) {
    super(message, { code: 'SERIALIZATION_FAILED', cause });
  }
}

/**
 * The remote function threw. `code` is always `'REMOTE_ERROR'`, whatever the function threw, so a
 * remote error never passes for one of qam's own (a `TIMEOUT` that would be retried, a
 * `METHOD_NOT_FOUND` that would look like a deployment problem). `remoteName` and `remoteCode` are
 * the remote error's name and string `code` (undefined when it had none), `args` QAM's exception
 * args when the remote sent them, `remoteStack` the remote stack when the server opted in with
 * `exposeStack`.
 */
export class QAMRemoteException extends QAMException {
  override name = 'QAMRemoteException';
  declare readonly code: 'REMOTE_ERROR';
  readonly remoteName: string;
  readonly remoteCode: string | undefined;
  readonly args: unknown[] | undefined;
  readonly remoteStack: string | undefined;

  constructor(
    message: string,
    details: { remoteName: string; remoteCode?: string; cause?: unknown; args?: unknown[]; remoteStack?: string },
  ) {
    super(message, { code: 'REMOTE_ERROR', cause: details.cause });
    this.remoteName = details.remoteName;
    this.remoteCode = details.remoteCode;
    this.args = details.args;
    this.remoteStack = details.remoteStack;
  }
}

const raisedByServer = new WeakSet<object>();

/**
 * Marks an error qam raises itself while it runs a call on a function's behalf (a worker thread
 * that died, a result that cannot leave its thread), so that the server replies with it as its own
 * error, not as one the function threw. Only qam's code reaches this. @internal
 */
export function serverRaised<E extends QAMException>(error: E): E {
  raisedByServer.add(error);
  return error;
}

/** True for an error marked by {@link serverRaised}. Never runs code of `value`. @internal */
export function isServerRaised(value: unknown): value is QAMException {
  return typeof value === 'object' && value !== null && raisedByServer.has(value);
}

/** The codes of the errors the server itself replies with, rebuilt as their own classes. */
export const serverErrorCodes = {
  methodNotFound: 'METHOD_NOT_FOUND',
  badMessage: 'BAD_MESSAGE',
  payloadTooLarge: 'PAYLOAD_TOO_LARGE',
  serialization: 'SERIALIZATION_FAILED',
  invalidParams: 'INVALID_PARAMS',
} as const;

/** The AMQP reply code (403, 404, 406, …) of an error the broker closed a channel or connection with. @internal */
export function amqpReplyCode(error: unknown): number | undefined {
  const code = typeof error === 'object' && error !== null ? partOf(error, 'code') : undefined;
  return typeof code === 'number' ? code : undefined;
}

/*
 * Thrown values are read by the readers below only. A function may throw anything: a Proxy whose
 * every trap throws, a revoked Proxy, an object whose getters throw, one without a prototype that
 * `String()` cannot convert. Each reader answers whatever such a value does, and tells `onFault`
 * (when given) that a part could not be read, instead of throwing into the code that handles the
 * failure, which would leave the request unanswered and the consumer broken.
 */

/** Told of each part of a thrown value whose reading threw. @internal */
export type FaultHandler = (fault: unknown) => void;

/** True when `value` is an instance of `type`; false when it is not, or when asking throws (a Proxy's trap). @internal */
export function isInstance<T>(value: unknown, type: abstract new (...args: never[]) => T, onFault?: FaultHandler): value is T {
  try {
    return value instanceof type;
  } catch (fault) {
    onFault?.(fault);
    return false;
  }
}

/** True when `value` is an Error (see {@link isInstance}). @internal */
export function isError(value: unknown, onFault?: FaultHandler): value is Error {
  return isInstance(value, Error, onFault);
}

/** `value[key]`, or undefined when reading it throws. @internal */
export function partOf(value: object, key: string, onFault?: FaultHandler): unknown {
  try {
    return (value as Record<string, unknown>)[key];
  } catch (fault) {
    onFault?.(fault);
    return undefined;
  }
}

/** `value[key]` when it is a string. @internal */
export function textOf(value: object, key: string, onFault?: FaultHandler): string | undefined {
  const part = partOf(value, key, onFault);
  return typeof part === 'string' ? part : undefined;
}

/** `value[key]` when it is an array. @internal */
export function arrayOf(value: object, key: string, onFault?: FaultHandler): unknown[] | undefined {
  const part = partOf(value, key, onFault);
  try {
    return Array.isArray(part) ? part : undefined;
  } catch (fault) {
    // Array.isArray throws for a revoked Proxy.
    onFault?.(fault);
    return undefined;
  }
}

/** `String(value)`, or a placeholder naming its type when the conversion throws. @internal */
export function describeValue(value: unknown, onFault?: FaultHandler): string {
  if (typeof value === 'string') return value;
  try {
    return String(value);
  } catch (fault) {
    onFault?.(fault);
    return `[unprintable ${typeof value}]`;
  }
}

/** A short description of any thrown value, for messages and logs. Never throws. */
export function describeError(error: unknown): string {
  if (!isError(error)) return describeValue(error);
  return `${textOf(error, 'name') ?? 'Error'}: ${describeValue(partOf(error, 'message'))}`;
}

/**
 * Why no connection to the broker could be made (see {@link QAMConnectFailedException}):
 *
 * - `'refused'`: nothing listens at that host and port (the broker is down or on another port);
 * - `'unknown-host'`: the host name does not resolve;
 * - `'unreachable'`: no route to the host or its network;
 * - `'timeout'`: no TCP connection, or no AMQP handshake, within `connectTimeout`;
 * - `'unknown-vhost'`: the broker has no such virtual host (RabbitMQ's `530 NOT_ALLOWED - vhost … not found`);
 * - `'handshake'`: the TCP connection opened but the AMQP handshake did not complete: the peer closed
 *   or reset it, does not speak AMQP 0-9-1, or the broker refused to open the vhost for another
 *   reason (a connection limit, a vhost that is down).
 *
 * Where the broker gave a reason, the message quotes it.
 */
export type ConnectFailedReason = 'refused' | 'unknown-host' | 'unreachable' | 'timeout' | 'unknown-vhost' | 'handshake';

/**
 * No connection to the broker could be made, so nothing was sent (code `'CONNECT_FAILED'`), as
 * opposed to {@link QAMConnectionException} (`'CONNECTION_LOST'`), a connection that existed and was
 * lost. A refused login or vhost permission is {@link QAMAccessRefusedException}, a failed TLS
 * handshake {@link QAMTlsException}. `cause` is the network or amqplib error.
 */
export class QAMConnectFailedException extends QAMException {
  override name = 'QAMConnectFailedException';
  /** What went wrong, for programs to act on; the message says it for people. */
  readonly reason: ConnectFailedReason;
  constructor(message: string, reason: ConnectFailedReason, cause?: unknown) {
    super(message, { code: 'CONNECT_FAILED', cause });
    this.reason = reason;
  }
}
