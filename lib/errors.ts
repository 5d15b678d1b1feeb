/**
 * Every error qam raises is a {@link QAMException} with a stable string `code`; assert on the code,
 * not on the message text. Transport failures (timeout, connection lost, closed, no route) are
 * classes of their own, apart from {@link QAMRemoteException}, which carries an error thrown by
 * the remote function.
 */
export class QAMException extends Error {
  override name = 'QAMException';
  /** Stable identifier of the failure, e.g. `'TIMEOUT'`. */
  readonly code: string;

  constructor(message: string, options: { code?: string; cause?: unknown } = {}) {
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
  readonly args: unknown[] | undefined;
  constructor(message: string, args?: unknown[]) {
    super(message, { code: 'METHOD_NOT_FOUND' });
    this.args = args;
  }
}

/** No reply arrived within the call's timeout (QAM's meaning). */
export class QAMTimeoutException extends QAMException {
  override name = 'QAMTimeoutException';
  constructor(message: string) {
    super(message, { code: 'TIMEOUT' });
  }
}

/** The connection or channel carrying the call was lost before its reply arrived. */
export class QAMConnectionException extends QAMException {
  override name = 'QAMConnectionException';
  constructor(message: string, cause?: unknown) {
    super(message, { code: 'CONNECTION_LOST', cause });
  }
}

/** The proxy or server was closed; the call cannot complete. */
export class QAMClosedException extends QAMException {
  override name = 'QAMClosedException';
  constructor(message: string) {
    super(message, { code: 'CLOSED' });
  }
}

/** No queue serves the called server id: the broker returned the request as unroutable. */
export class QAMNoRouteException extends QAMException {
  override name = 'QAMNoRouteException';
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
  constructor(message: string, cause?: unknown) {
    super(message, { code: 'TLS_FAILED', cause });
  }
}

/** The broker refused an operation for lack of permission (AMQP 403 ACCESS_REFUSED). */
export class QAMAccessRefusedException extends QAMException {
  override name = 'QAMAccessRefusedException';
  constructor(message: string, cause?: unknown) {
    super(message, { code: 'ACCESS_REFUSED', cause });
  }
}

/** The broker did not accept the request (publisher confirm nack, or the channel closed). */
export class QAMPublishException extends QAMException {
  override name = 'QAMPublishException';
  constructor(message: string, cause?: unknown) {
    super(message, { code: 'PUBLISH_FAILED', cause });
  }
}

/** The call was cancelled through its AbortSignal or by `proxy.cancel(uid)`. */
export class QAMAbortException extends QAMException {
  override name = 'QAMAbortException';
  constructor(message: string, cause?: unknown) {
    super(message, { code: 'ABORTED', cause });
  }
}

/** The call is malformed before anything is sent (bad path, bad arguments to a control). */
export class QAMInvalidCallException extends QAMException {
  override name = 'QAMInvalidCallException';
  constructor(message: string) {
    super(message, { code: 'INVALID_CALL' });
  }
}

/** A message exceeds the configured `maxMessageBytes`. */
export class QAMPayloadTooLargeException extends QAMException {
  override name = 'QAMPayloadTooLargeException';
  constructor(message: string) {
    super(message, { code: 'PAYLOAD_TOO_LARGE' });
  }
}

/** A message could not be decoded or does not have the shape of a qam envelope. */
export class QAMBadMessageException extends QAMException {
  override name = 'QAMBadMessageException';
  constructor(message: string, cause?: unknown) {
    super(message, { code: 'BAD_MESSAGE', cause });
  }
}

/** A value could not be serialized (arguments on the proxy, a result on the server). */
export class QAMSerializationException extends QAMException {
  override name = 'QAMSerializationException';
  constructor(message: string, cause?: unknown) {
    super(message, { code: 'SERIALIZATION_FAILED', cause });
  }
}

/**
 * The remote function threw. `remoteName` is the remote error's name, `code` its string `code`
 * when it had one (else `'REMOTE_ERROR'`), `args` QAM's exception args when the remote sent them,
 * `remoteStack` the remote stack when the server opted in with `exposeStack`.
 */
export class QAMRemoteException extends QAMException {
  override name = 'QAMRemoteException';
  readonly remoteName: string;
  readonly args: unknown[] | undefined;
  readonly remoteStack: string | undefined;

  constructor(
    message: string,
    details: { remoteName: string; code?: string; cause?: unknown; args?: unknown[]; remoteStack?: string },
  ) {
    super(message, { code: details.code ?? 'REMOTE_ERROR', cause: details.cause });
    this.remoteName = details.remoteName;
    this.args = details.args;
    this.remoteStack = details.remoteStack;
  }
}

/** The codes of the errors the server itself replies with, rebuilt as their own classes. */
export const serverErrorCodes = {
  methodNotFound: 'METHOD_NOT_FOUND',
  badMessage: 'BAD_MESSAGE',
  payloadTooLarge: 'PAYLOAD_TOO_LARGE',
  serialization: 'SERIALIZATION_FAILED',
} as const;

/** The AMQP reply code (403, 404, 406, …) of an error the broker closed a channel or connection with. @internal */
export function amqpReplyCode(error: unknown): number | undefined {
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  return typeof code === 'number' ? code : undefined;
}

/** A short description of any thrown value, for messages and logs. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
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
