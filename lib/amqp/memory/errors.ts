/**
 * The embedded broker's failures, worded as RabbitMQ 3.10 words them (its reply texts are what the
 * amqplib adapter passes on, and code above the port may quote them), and classified as the port
 * classifies them.
 * @internal
 */
import { PortError, type FailureKind } from '../port.js';

const replyNames: Readonly<Record<number, string>> = {
  320: 'CONNECTION_FORCED',
  403: 'ACCESS_REFUSED',
  404: 'NOT_FOUND',
  405: 'RESOURCE_LOCKED',
  406: 'PRECONDITION_FAILED',
  503: 'COMMAND_INVALID',
  530: 'NOT_ALLOWED',
  541: 'INTERNAL_ERROR',
};

function kindOf(replyCode: number): FailureKind {
  switch (replyCode) {
    case 403:
      return 'access-refused';
    case 404:
      return 'not-found';
    case 405:
      return 'resource-locked';
    case 406:
      return 'precondition-failed';
    case 320:
      return 'closed';
    default:
      return replyCode >= 500 ? 'internal' : 'other';
  }
}

/** A broker error with RabbitMQ's reply text: `NOT_FOUND - no exchange 'x' in vhost '/'`. */
export function amqpError(replyCode: number, text: string, kind: FailureKind = kindOf(replyCode)): PortError {
  const name = replyNames[replyCode] ?? String(replyCode);
  return new PortError(kind, text === '' ? name : `${name} - ${text}`, { replyCode });
}

/** The channel or connection had closed; `cause` is the broker's error when it closed it. */
export function closedError(what: 'Channel' | 'Connection', cause?: PortError): PortError {
  const reason = cause === undefined ? '' : `: ${cause.message}`;
  return new PortError('closed', `${what} closed${reason}`, cause === undefined ? {} : { cause });
}

/** How a connection the broker cut (a test hook standing for a network failure) closes. */
export function lostError(): PortError {
  return new PortError('closed', 'Connection lost: the embedded broker cut it (a network failure)');
}

/** What a client library refuses before anything reaches the broker (a name too long, a value it cannot encode). */
export function encodeError(message: string, cause?: unknown): PortError {
  return new PortError('other', message, cause === undefined ? {} : { cause });
}

/**
 * Thrown inside the broker's handling of one method to stop it; the channel (or, for a connection
 * error, the whole connection) then closes with `error`, as RabbitMQ's channel process does.
 */
export class BrokerRefusal extends Error {
  readonly error: PortError;
  constructor(
    error: PortError,
    readonly scope: 'channel' | 'connection' = 'channel',
  ) {
    super(error.message);
    this.error =
      scope === 'connection'
        ? new PortError(error.kind, error.message, { replyCode: error.replyCode, connection: true, cause: error.cause })
        : error;
  }
}

/** `queue 'q' in vhost '/'`, RabbitMQ's way to name a resource in its messages. */
export function resource(kind: 'queue' | 'exchange', name: string, vhost: string): string {
  return `${kind} '${name}' in vhost '${vhost}'`;
}

export function refuse(replyCode: number, text: string): never {
  throw new BrokerRefusal(amqpError(replyCode, text));
}

export function accessRefused(kind: 'queue' | 'exchange', name: string, vhost: string, user: string): never {
  refuse(403, `access to ${resource(kind, name, vhost)} refused for user '${user}'`);
}

export function notFound(kind: 'queue' | 'exchange', name: string, vhost: string): never {
  refuse(404, `no ${resource(kind, name, vhost)}`);
}

export function resourceLocked(name: string, vhost: string): never {
  refuse(
    405,
    `cannot obtain exclusive access to locked ${resource('queue', name, vhost)}. It could be originally declared on another ` +
      'connection or the exclusive property value does not match that of the original declaration.',
  );
}

export function defaultExchangeRefused(): never {
  refuse(403, 'operation not permitted on the default exchange');
}
