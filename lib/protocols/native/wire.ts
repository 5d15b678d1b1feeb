/**
 * Versions of qam's own wire format, and the reserved AMQP header names that carry them.
 *
 * Every native message a qam peer publishes (request, reply, or any later kind) carries the AMQP
 * header `x-qam-wire`: the highest wire version its sender speaks, an integer. A message without
 * it comes from wire 1 (the releases before the header existed). The rules that let peers of
 * different versions talk:
 *
 * - A peer reads the `x-qam-*` headers it knows and ignores every other one, whatever its value;
 *   a new version may add headers only when ignoring them is safe.
 * - A request of a kind other than an ordinary call names its kind in `x-qam-kind` and carries in
 *   its body a `method` starting with `_qam.`, which no server can register: a wire-1 server,
 *   which ignores the header, answers METHOD_NOT_FOUND and runs nothing; a later server that does
 *   not know the kind answers BAD_MESSAGE naming it and runs nothing. No request is ever silently
 *   dropped or run as something else.
 * - A peer sends a message of a new kind to another only after that peer showed, by its own
 *   `x-qam-wire` (or an explicit request header), that it understands it: a server never sends a
 *   wire-N notice to a proxy whose request said less than N.
 * - Anything under `x-qam-` is what the sender claims, never verified identity.
 * @internal
 */

/** The reserved prefix of the library's own AMQP headers. */
export const reservedHeaderPrefix = 'x-qam-';

/** The AMQP header naming the sender's wire version. */
export const wireHeader = 'x-qam-wire';

/** The AMQP header naming a request's kind, when it is not an ordinary call. */
export const kindHeader = 'x-qam-kind';

/** The AMQP header carrying the sender's fingerprint: its JSON text, encoded once per connection. */
export const fingerprintHeader = 'x-qam-fingerprint';

/** The wire version this library speaks. 1: the releases before the header; 2: fire-and-forget calls, fingerprints. */
export const wireVersion = 2;

/** The headers every native message carries: one shared object, never modified. */
export const wireHeaders: Record<string, unknown> = Object.freeze({ [wireHeader]: wireVersion });

/** The headers of a connection's native messages: the wire version and its fingerprint, made once per connection. */
export function connectionHeaders(fingerprintJson: string): Record<string, unknown> {
  return Object.freeze({ [wireHeader]: wireVersion, [fingerprintHeader]: fingerprintJson });
}

/** The kind of a request asking a server which methods it serves (its reply: a `ServerDescription`). */
export const describeKind = 'describe';

/** Request kinds a server of this version honours. Absent means `'call'`. */
export const requestKinds: ReadonlySet<string> = new Set(['call', describeKind]);

/** The method name a request of a kind other than `'call'` carries in its body, for older servers to refuse. */
export function kindMethod(kind: string): string {
  return `_qam.${kind}`;
}

function headerOf(headers: unknown, name: string): unknown {
  if (typeof headers !== 'object' || headers === null) return undefined;
  return Object.prototype.hasOwnProperty.call(headers, name) ? (headers as Record<string, unknown>)[name] : undefined;
}

/** The wire version a message's headers claim: 1 when absent or not a positive integer. */
export function wireVersionOf(headers: unknown): number {
  const value = headerOf(headers, wireHeader);
  const version = typeof value === 'number' ? value : typeof value === 'string' && /^\d{1,9}$/.test(value) ? Number(value) : NaN;
  return Number.isSafeInteger(version) && version >= 1 ? version : 1;
}

/** The kind a request's headers name: `'call'` when absent; the raw value (for the error) when it is not a string. */
export function requestKindOf(headers: unknown): string {
  const value = headerOf(headers, kindHeader);
  if (value === undefined) return 'call';
  return typeof value === 'string' ? value : String(value);
}
