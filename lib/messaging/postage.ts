/**
 * Postage's message dictionary, as JSON: what the typed producer sends, the processor reads and
 * a Python Postage component exchanges with both. Pure: no I/O.
 * @internal
 */

import type { Fingerprint } from '../fingerprint.js';

/** Postage's categories: a message expects no answer, an RPC one result message. */
export type PostageCategory = 'message' | 'rpc';

/**
 * A Postage message as it travels, JSON: `type` (`'command'`, `'status'`, `'result'` or the
 * user's own), `name` (the command, the status, …), `category`, `version`, the sender's
 * `fingerprint`, the `content` and Postage's `_reserved` part.
 */
export interface PostageMessage {
  readonly type: string;
  readonly name: string;
  readonly category: PostageCategory;
  /** Postage writes `'2'`; a number is read too. */
  readonly version: string | number;
  /** The sender's fingerprint as its sender wrote it: a claim, never verified. */
  readonly fingerprint: Readonly<Record<string, unknown>>;
  readonly content: Readonly<Record<string, unknown>>;
  readonly _reserved: Readonly<Record<string, unknown>>;
}

/** The three kinds of RPC result: Postage's `success` (a value), `error` (no value) and `exception` (the exception's name as value). */
export type RpcResultKind = 'value' | 'error' | 'exception';

/** The version qam writes, as Postage 3 does. */
export const postageVersion = '2';

/** Postage's content type. */
export const postageContentType = 'application/json';

/** Postage's name of each result kind, in the result's `content.type`. */
const resultTypes: Readonly<Record<RpcResultKind, string>> = { value: 'success', error: 'error', exception: 'exception' };

/** A message of `type` and `name` from a sender with `fingerprint`. */
export function postageMessage(
  type: string,
  name: string,
  category: PostageCategory,
  fingerprint: Fingerprint,
  content: Readonly<Record<string, unknown>>,
): PostageMessage {
  return { type, name, category, version: postageVersion, fingerprint: { ...fingerprint }, content, _reserved: {} };
}

/** An RPC result message (Postage's MessageResult, MessageResultError, MessageResultException). */
export function resultMessage(kind: RpcResultKind, value: unknown, message: string, fingerprint: Fingerprint): PostageMessage {
  return postageMessage('result', 'none', 'message', fingerprint, { type: resultTypes[kind], value: value ?? null, message });
}

/** JSON text of a message; a content that JSON cannot carry (a cycle, a BigInt) is a TypeError. */
export function encodeMessage(message: PostageMessage): Buffer {
  try {
    return Buffer.from(JSON.stringify(message));
  } catch (error) {
    throw new TypeError(`A Postage message must be JSON: ${(error as Error).message}`, { cause: error });
  }
}

/** Why a body is not a Postage message. */
export type MessageProblem = 'not-json' | 'wrong-shape' | 'too-large';

export type ReadMessage = { readonly message: PostageMessage } | { readonly problem: MessageProblem; readonly detail: string };

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** Reads a body as a Postage message, or says what is wrong with it. */
export function readMessage(body: Buffer): ReadMessage {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch (error) {
    return { problem: 'not-json', detail: `the body is not JSON (${(error as Error).message})` };
  }
  if (!isRecord(parsed)) return { problem: 'wrong-shape', detail: 'the body is not a JSON object' };
  const own = (key: string): unknown => (Object.hasOwn(parsed, key) ? parsed[key] : undefined);
  const type = own('type');
  const name = own('name');
  const category = own('category');
  const version = own('version');
  const fingerprint = own('fingerprint') ?? {};
  const content = own('content') ?? {};
  const reserved = own('_reserved') ?? {};
  if (typeof type !== 'string' || type === '') return { problem: 'wrong-shape', detail: "'type' is not a non-empty string" };
  if (typeof name !== 'string') return { problem: 'wrong-shape', detail: "'name' is not a string" };
  if (category !== 'message' && category !== 'rpc') return { problem: 'wrong-shape', detail: "'category' is neither 'message' nor 'rpc'" };
  if (version !== undefined && typeof version !== 'string' && typeof version !== 'number') {
    return { problem: 'wrong-shape', detail: "'version' is neither a string nor a number" };
  }
  if (!isRecord(fingerprint)) return { problem: 'wrong-shape', detail: "'fingerprint' is not an object" };
  if (!isRecord(content)) return { problem: 'wrong-shape', detail: "'content' is not an object" };
  if (!isRecord(reserved)) return { problem: 'wrong-shape', detail: "'_reserved' is not an object" };
  return { message: { type, name, category, version: version ?? postageVersion, fingerprint, content, _reserved: reserved } };
}

/** The kind, value and message of a result message, or undefined when it is not one. */
export function readResult(message: PostageMessage): { kind: RpcResultKind; value: unknown; message: string } | undefined {
  const { content } = message;
  const kind = (Object.keys(resultTypes) as RpcResultKind[]).find((key) => resultTypes[key] === content['type']);
  if (message.type !== 'result' || kind === undefined) return undefined;
  const text = content['message'];
  return { kind, value: content['value'] ?? null, message: typeof text === 'string' ? text : '' };
}
