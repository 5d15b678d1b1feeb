import type { MessageProperties } from '../../amqp/port.js';
import {
  QAMBadMessageException,
  QAMMethodNotFoundException,
  QAMRemoteException,
  QAMSerializationException,
  arrayOf,
  describeError,
  describeValue,
  isError,
  partOf,
  type FaultHandler,
} from '../../errors.js';
import { maxShortString } from '../naming.js';

/**
 * Python QAM's JSON wire format (see qam-wire-format.md). Everything that routes and correlates is
 * in the body; AMQP properties only say how the body is encoded. Pure: nothing here does I/O.
 */

/** A QAM request body. `id` is the caller's correlation number. */
export interface QamRequest {
  id: number;
  method_name: string;
  routing_key: string;
  params: unknown[];
}

/** A QAM reply body. */
export interface QamReply {
  id: number;
  result: unknown;
  exception: boolean;
  internal_exception: number;
}

/** Where a reply to a request goes: its id and the proxy's routing key. */
export interface QamAddress {
  id: number;
  routingKey: string;
}

/** The AMQP properties of every QAM message, requests and replies alike (delivery mode 2: persistent). */
export const qamProperties = { deliveryMode: 2, contentType: 'application/json', contentEncoding: 'utf-8' } as const;

/** {@link qamProperties} as a new object, for one message (its publisher may complete it in place). */
export function qamMessageProperties(): MessageProperties {
  return {
    deliveryMode: qamProperties.deliveryMode,
    contentType: qamProperties.contentType,
    contentEncoding: qamProperties.contentEncoding,
  };
}

/** `internal_exception` of a reply for a name nothing is registered under. */
const qamMethodNotFound = 1;
/** `internal_exception` of every other reply. */
const qamNoInternalException = -1;

const utf8 = new TextDecoder('utf-8', { fatal: true });

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function own(record: Record<string, unknown>, key: string): unknown {
  return Object.prototype.hasOwnProperty.call(record, key) ? record[key] : undefined;
}

/**
 * An id a JavaScript number holds exactly. Python sends arbitrary integers; one above 2^53-1 would
 * come back rounded, so a reply to it would carry another call's id.
 */
function isQamId(value: unknown): value is number {
  return Number.isSafeInteger(value);
}

/** The routing key is an AMQP short string: a longer one could not be published to. */
function isRoutingKey(value: unknown): value is string {
  return typeof value === 'string' && value !== '' && Buffer.byteLength(value) <= maxShortString;
}

/** Decodes a body as strict UTF-8 JSON; throws QAMBadMessageException saying why it cannot. */
export function decodeQamBody(body: Buffer): unknown {
  let text: string;
  try {
    text = utf8.decode(body);
  } catch {
    throw new QAMBadMessageException('Body is not UTF-8');
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new QAMBadMessageException(`Body is not JSON: ${describeError(error)}`, error);
  }
}

/** Encodes a body as JSON; throws QAMSerializationException when a value has no JSON form. */
export function encodeQamBody(value: QamRequest | QamReply): Buffer {
  let text: string;
  try {
    text = JSON.stringify(value);
  } catch (error) {
    throw new QAMSerializationException(`Value cannot be serialized as JSON: ${describeError(error)}`, error);
  }
  return Buffer.from(text, 'utf8');
}

/**
 * Reads a decoded request. A malformed one gives the problem and, when its `id` and `routing_key`
 * are still usable, the address to answer it at.
 */
export function parseQamRequest(value: unknown): { request: QamRequest } | { problem: string; address: QamAddress | undefined } {
  if (!isRecord(value)) return { problem: 'Request body is not a JSON object', address: undefined };
  const id = own(value, 'id');
  const routingKey = own(value, 'routing_key');
  const address = isQamId(id) && isRoutingKey(routingKey) ? { id, routingKey } : undefined;
  const malformed = (problem: string): { problem: string; address: QamAddress | undefined } => ({ problem, address });
  if (!Number.isInteger(id)) return malformed('Request "id" is not an integer');
  if (!isQamId(id)) return malformed('Request "id" is beyond 2^53-1, the largest integer JavaScript holds exactly');
  if (address === undefined) return malformed(`Request "routing_key" is not a non-empty string of at most ${maxShortString} bytes`);
  const method = own(value, 'method_name');
  if (typeof method !== 'string') return malformed('Request "method_name" is not a string');
  const params = own(value, 'params');
  if (!Array.isArray(params)) return malformed('Request "params" is not a list');
  return { request: { id, method_name: method, routing_key: address.routingKey, params } };
}

/** The id of a decoded body, when it has a usable one. */
export function qamIdOf(value: unknown): number | undefined {
  if (!isRecord(value)) return undefined;
  const id = own(value, 'id');
  return isQamId(id) ? id : undefined;
}

/** Reads a decoded reply; throws QAMBadMessageException naming what is wrong. */
export function parseQamReply(value: unknown): QamReply {
  const id = qamIdOf(value);
  if (id === undefined || !isRecord(value)) throw new QAMBadMessageException('Reply has no integer "id"');
  if (!Object.prototype.hasOwnProperty.call(value, 'result')) throw new QAMBadMessageException('Reply has no "result"');
  const exception = own(value, 'exception');
  if (typeof exception !== 'boolean') throw new QAMBadMessageException('Reply "exception" is not a boolean');
  const internal = own(value, 'internal_exception');
  if (!Number.isInteger(internal)) throw new QAMBadMessageException('Reply "internal_exception" is not an integer');
  return { id, result: value['result'], exception, internal_exception: internal as number };
}

/**
 * QAM's text for a name nothing answers to. For `instance.method` QAM names only what follows the
 * dot, whether the instance or the method is unknown; deeper paths, which qam refuses, keep all of
 * it (`a.b.c` names `b.c`).
 */
export function qamNotFoundText(method: string): string {
  const dot = method.indexOf('.');
  return `Methodname ${dot === -1 ? method : method.slice(dot + 1)} is not registered on QAMServer`;
}

/**
 * QAM's exception args for anything a function threw: its `args` when an array, else its message.
 * Never throws: a part whose reading throws (a hostile getter or Proxy trap) is told to `onFault`.
 */
export function qamExceptionArgs(error: unknown, onFault?: FaultHandler): unknown[] {
  if (!isError(error, onFault)) return [describeValue(error, onFault)];
  return arrayOf(error, 'args', onFault) ?? [describeValue(partOf(error, 'message', onFault), onFault)];
}

/**
 * The reply body for a call that ended with `outcome`. `internal_exception` 1, which QAM proxies
 * raise as QAMMethodNotFoundException, is for the server's own not-found error only, never for
 * what a function threw, whatever its class.
 */
export function qamReplyBody(
  id: number,
  outcome: { result: unknown } | { error: unknown; fromServer?: boolean },
  onFault?: FaultHandler,
): QamReply {
  if (!('error' in outcome)) {
    return { id, result: outcome.result ?? null, exception: false, internal_exception: qamNoInternalException };
  }
  if (outcome.fromServer === true && outcome.error instanceof QAMMethodNotFoundException) {
    return { id, result: outcome.error.message, exception: true, internal_exception: qamMethodNotFound };
  }
  return { id, result: qamExceptionArgs(outcome.error, onFault), exception: true, internal_exception: qamNoInternalException };
}

/**
 * The error a QAM error reply stands for, as QAM's proxy raises it: QAMMethodNotFoundException for
 * `internal_exception` 1, else the remote exception built from its args. Both carry the args as
 * `args`; QAM sends no exception type, so `remoteName` is Python's base `'Exception'`.
 */
export function qamReplyError(reply: QamReply): Error {
  const args = Array.isArray(reply.result) ? reply.result : [reply.result];
  const message = args.length === 1 && typeof args[0] === 'string' ? args[0] : JSON.stringify(args);
  if (reply.internal_exception === qamMethodNotFound) return new QAMMethodNotFoundException(message, args);
  return new QAMRemoteException(message, { remoteName: 'Exception', args });
}
