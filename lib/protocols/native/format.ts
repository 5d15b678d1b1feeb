import {
  QAMBadMessageException,
  QAMException,
  QAMInvalidParamsException,
  QAMMethodNotFoundException,
  QAMPayloadTooLargeException,
  QAMRemoteException,
  QAMSerializationException,
  arrayOf,
  describeValue,
  isError,
  partOf,
  serverErrorCodes,
  textOf,
  type FaultHandler,
  type ParamsIssue,
} from '../../errors.js';

/**
 * qam's own wire format. Routing and correlation travel in AMQP properties (`correlation_id`,
 * `reply_to`, `content_type`, `expiration`); the body carries only what the call is.
 */

/** The body of a request. `deadline` is the caller's give-up time in epoch milliseconds. */
export interface RequestEnvelope {
  method: string;
  params: unknown[];
  deadline?: number;
}

/**
 * An error as it travels in a reply. `origin: 'server'` marks an error the qam server raised
 * itself (method not found, bad message, payload too large, serialization failed): only those are
 * rebuilt as qam's own classes. The server never copies the field from what a function threw, so a
 * function cannot forge it; peers that do not know the field ignore it.
 */
export interface ErrorPayload {
  name: string;
  message: string;
  code?: string;
  args?: unknown[];
  stack?: string;
  cause?: ErrorPayload;
  origin?: 'server';
  /** With code INVALID_PARAMS from the server: what its schema found. */
  issues?: ParamsIssue[];
}

export type ReplyEnvelope = { result: unknown } | { error: ErrorPayload };

/** The deepest method path qam calls: `function` or `instance.method`. */
const maxPathDepth = 2;

const causeDepthLimit = 4;

/** Issues of a refused call's params an error reply carries at most. */
export const maxIssues = 20;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function own(record: Record<string, unknown>, key: string): unknown {
  return Object.prototype.hasOwnProperty.call(record, key) ? record[key] : undefined;
}

/** Validates a method path: one or two non-empty dot-separated names. */
export function checkMethodPath(method: unknown): method is string {
  if (typeof method !== 'string' || method.length === 0 || method.length > 255) return false;
  const parts = method.split('.');
  return parts.length <= maxPathDepth && parts.every((part) => part.length > 0);
}

/** Reads a decoded request body; throws QAMBadMessageException naming what is wrong. */
export function parseRequest(value: unknown): RequestEnvelope {
  if (!isRecord(value)) throw new QAMBadMessageException('Request body is not an object');
  const method = own(value, 'method');
  if (typeof method !== 'string') throw new QAMBadMessageException('Request has no string "method"');
  const params = own(value, 'params') ?? [];
  if (!Array.isArray(params)) throw new QAMBadMessageException('Request "params" is not an array');
  const deadline = own(value, 'deadline');
  if (deadline !== undefined && (typeof deadline !== 'number' || !Number.isFinite(deadline))) {
    throw new QAMBadMessageException('Request "deadline" is not a finite number');
  }
  return deadline === undefined ? { method, params } : { method, params, deadline };
}

function parseErrorPayload(value: unknown, depth: number): ErrorPayload {
  if (!isRecord(value)) throw new QAMBadMessageException('Reply "error" is not an object');
  const name = own(value, 'name');
  const message = own(value, 'message');
  if (typeof name !== 'string' || typeof message !== 'string') {
    throw new QAMBadMessageException('Reply "error" lacks a string name or message');
  }
  const payload: ErrorPayload = { name, message };
  const code = own(value, 'code');
  if (typeof code === 'string') payload.code = code;
  const args = own(value, 'args');
  if (Array.isArray(args)) payload.args = args;
  const stack = own(value, 'stack');
  if (typeof stack === 'string') payload.stack = stack;
  const cause = own(value, 'cause');
  if (cause !== undefined && depth < causeDepthLimit) payload.cause = parseErrorPayload(cause, depth + 1);
  if (depth === 0 && own(value, 'origin') === 'server') payload.origin = 'server';
  const issues = depth === 0 ? parseIssues(own(value, 'issues')) : undefined;
  if (issues !== undefined) payload.issues = issues;
  return payload;
}

/** The issues of an INVALID_PARAMS reply: the well-formed ones, at most {@link maxIssues}. */
function parseIssues(value: unknown): ParamsIssue[] | undefined {
  if (!Array.isArray(value)) return undefined;
  const issues: ParamsIssue[] = [];
  for (const item of value.slice(0, maxIssues)) {
    if (!isRecord(item)) continue;
    const message = own(item, 'message');
    if (typeof message !== 'string') continue;
    const path = own(item, 'path');
    const keys = Array.isArray(path)
      ? path.filter((key): key is string | number => typeof key === 'string' || typeof key === 'number')
      : [];
    issues.push(keys.length > 0 ? { message, path: keys } : { message });
  }
  return issues;
}

/** Reads a decoded reply body; throws QAMBadMessageException naming what is wrong. */
export function parseReply(value: unknown): ReplyEnvelope {
  if (!isRecord(value)) throw new QAMBadMessageException('Reply body is not an object');
  if (Object.prototype.hasOwnProperty.call(value, 'error')) {
    return { error: parseErrorPayload(value['error'], 0) };
  }
  if (!Object.prototype.hasOwnProperty.call(value, 'result')) {
    throw new QAMBadMessageException('Reply has neither "result" nor "error"');
  }
  return { result: value['result'] };
}

/**
 * Turns anything thrown by a remote function into its wire form: its name, message, string code,
 * args, stack (with `exposeStack`) and cause, nothing else. Never throws: a part whose reading
 * throws (a hostile getter or Proxy trap) is left out, and `onFault` is told.
 */
export function errorToPayload(error: unknown, exposeStack: boolean, onFault?: FaultHandler, depth = 0): ErrorPayload {
  if (!isError(error, onFault)) return { name: 'Error', message: describeValue(error, onFault) };
  const payload: ErrorPayload = {
    name: textOf(error, 'name', onFault) ?? 'Error',
    message: describeValue(partOf(error, 'message', onFault), onFault),
  };
  const code = textOf(error, 'code', onFault);
  if (code !== undefined) payload.code = code;
  const args = arrayOf(error, 'args', onFault);
  if (args !== undefined) payload.args = args;
  const stack = exposeStack ? textOf(error, 'stack', onFault) : undefined;
  if (stack !== undefined) payload.stack = stack;
  const cause = partOf(error, 'cause', onFault);
  if (cause !== undefined && depth < causeDepthLimit) payload.cause = errorToPayload(cause, exposeStack, onFault, depth + 1);
  return payload;
}

/** The wire form of an error the server raised itself, marked so that proxies rebuild it as its class. */
export function serverErrorToPayload(error: QAMException, exposeStack: boolean): ErrorPayload {
  const payload: ErrorPayload = { ...errorToPayload(error, exposeStack), origin: 'server' };
  if (error instanceof QAMInvalidParamsException) payload.issues = error.issues.slice(0, maxIssues);
  return payload;
}

/** Error classes a proxy rebuilds by name instead of a generic QAMRemoteException. */
export type ErrorClass = abstract new (...args: never[]) => Error;

function rebuildServerError(payload: ErrorPayload): QAMException | undefined {
  switch (payload.code) {
    case serverErrorCodes.methodNotFound:
      return new QAMMethodNotFoundException(payload.message);
    case serverErrorCodes.badMessage:
      return new QAMBadMessageException(payload.message);
    case serverErrorCodes.payloadTooLarge:
      return new QAMPayloadTooLargeException(payload.message);
    case serverErrorCodes.serialization:
      return new QAMSerializationException(payload.message);
    case serverErrorCodes.invalidParams:
      return new QAMInvalidParamsException(payload.message, payload.issues ?? []);
    default:
      return undefined;
  }
}

/** qam's own classes are rebuilt from the server's mark only, even when a proxy lists one in `errors`. */
function isQamClass(errorClass: ErrorClass): boolean {
  const prototype: unknown = errorClass.prototype;
  return prototype === QAMException.prototype || Object.prototype.isPrototypeOf.call(QAMException.prototype, prototype as object);
}

/**
 * Rebuilds a remote error: an error the server raised itself (marked `origin: 'server'`) as its
 * qam class; a registered class by its name (without running its constructor, whose signature
 * qam cannot know), with `remoteName` and `remoteCode` beside its own `code`; anything else as
 * QAMRemoteException, code `REMOTE_ERROR`.
 */
export function payloadToError(payload: ErrorPayload, classes: ReadonlyMap<string, ErrorClass>, depth = 0): Error {
  if (depth === 0 && payload.origin === 'server') {
    const own = rebuildServerError(payload);
    if (own !== undefined) return own;
  }
  const cause = payload.cause === undefined ? undefined : payloadToError(payload.cause, classes, depth + 1);
  const registered = classes.get(payload.name);
  if (registered !== undefined && !isQamClass(registered)) {
    const error = Object.create(registered.prototype as object) as Error & Record<string, unknown>;
    Object.defineProperties(error, {
      name: { value: payload.name, writable: true, configurable: true },
      message: { value: payload.message, writable: true, configurable: true },
      stack: { value: `${payload.name}: ${payload.message}`, writable: true, configurable: true },
    });
    error['remoteName'] = payload.name;
    if (payload.code !== undefined) {
      error['code'] = payload.code;
      error['remoteCode'] = payload.code;
    }
    if (payload.args !== undefined) error['args'] = payload.args;
    if (cause !== undefined) error['cause'] = cause;
    if (payload.stack !== undefined) error['remoteStack'] = payload.stack;
    return error;
  }
  const details: ConstructorParameters<typeof QAMRemoteException>[1] = { remoteName: payload.name };
  if (payload.code !== undefined) details.remoteCode = payload.code;
  if (cause !== undefined) details.cause = cause;
  if (payload.args !== undefined) details.args = payload.args;
  if (payload.stack !== undefined) details.remoteStack = payload.stack;
  return new QAMRemoteException(payload.message, details);
}
