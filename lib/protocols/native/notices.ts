import type { IncomingProperties } from '../../amqp/port.js';
import { kindHeader, wireHeaders } from './wire.js';

/**
 * The "started" notice of qam's own wire format. A caller that wants to know when a server's
 * worker takes its request sets the request header `x-qam-notify: 'started'`; the server then
 * publishes, to the request's reply address and before the reply, a message with an empty body,
 * the request's `correlation_id`, and the headers `x-qam-wire`, `x-qam-kind: 'started'` and
 * `x-qam-instance: <the server instance's id>`. This follows the rules of wire.ts: the caller
 * asked for the notice by an explicit header, so no peer gets a kind of message it cannot read. A request without the header gets no notice, so a
 * proxy that never asks (every older one) never receives one; a server that does not know the
 * header ignores it and the caller sees no notice, only the reply. The instance id is the server's
 * claim, never verified identity.
 *
 * Cancels: a notice from a server instance that takes cancels also carries `x-qam-cancel: <queue>`,
 * that instance's own queue (`server_<id>_cancel_<16 hex digits>`, bound to `server_<id>_ex` under
 * its name). A proxy whose call was cancelled after such a notice publishes there, through the
 * exchange it sent the request to, a message with an empty body, the call's `correlation_id` and
 * the headers `x-qam-wire` and `x-qam-kind: 'cancel'`; the instance aborts that call's
 * `currentCall().signal`. A notice without the header (an older server) gets no cancel.
 * @internal
 */

/** The request header asking for notices, and its one value. */
export const notifyHeader = 'x-qam-notify';
export const notifyStarted = 'started';

/** The header of a notice naming the server instance that sent it. */
export const instanceHeader = 'x-qam-instance';

/** The header of a notice naming the queue that takes cancels of the call, and the kind of a cancel. */
export const cancelHeader = 'x-qam-cancel';
export const cancelKind = 'cancel';

/** The longest instance id a proxy keeps from a notice (an AMQP short string). */
const maxInstanceLength = 255;

/** True when a request asks for a started notice. */
export function wantsStartedNotice(properties: IncomingProperties): boolean {
  const headers: unknown = properties.headers;
  return typeof headers === 'object' && headers !== null && (headers as Record<string, unknown>)[notifyHeader] === notifyStarted;
}

/** The headers of a started notice from `instanceId`, naming the queue of its cancels when it takes them. */
export function startedNoticeHeaders(instanceId: string, cancelTo?: string): Record<string, unknown> {
  const headers = { ...wireHeaders, [kindHeader]: notifyStarted, [instanceHeader]: instanceId };
  return cancelTo === undefined ? headers : { ...headers, [cancelHeader]: cancelTo };
}

/** The headers of a cancel. */
export const cancelHeaders: Record<string, unknown> = Object.freeze({ ...wireHeaders, [kindHeader]: cancelKind });

/** The call id a cancel names; undefined for anything else. */
export function readCancel(properties: IncomingProperties): string | undefined {
  const headers: unknown = properties.headers;
  if (typeof headers !== 'object' || headers === null || (headers as Record<string, unknown>)[kindHeader] !== cancelKind) return undefined;
  const { correlationId } = properties;
  return typeof correlationId === 'string' && correlationId !== '' ? correlationId : undefined;
}

/** A started notice as a proxy reads it. */
export interface StartedNotice {
  /** The call's id. */
  id: string;
  /** The server instance that took it. */
  instance: string;
  /** The queue that takes cancels of the call, when the instance takes them. */
  cancelTo?: string;
}

/**
 * Reads a message on a reply address: the call id and the instance of a started notice, or
 * undefined for a reply (or anything else, which is read as a reply).
 */
export function readStartedNotice(properties: IncomingProperties): StartedNotice | undefined {
  const headers: unknown = properties.headers;
  if (typeof headers !== 'object' || headers === null) return undefined;
  const record = headers as Record<string, unknown>;
  if (record[kindHeader] !== notifyStarted) return undefined;
  const { correlationId } = properties;
  if (typeof correlationId !== 'string') return undefined;
  const instance = record[instanceHeader];
  const cancelTo = record[cancelHeader];
  const notice = { id: correlationId, instance: typeof instance === 'string' ? instance.slice(0, maxInstanceLength) : '' };
  return typeof cancelTo === 'string' && cancelTo.length <= maxInstanceLength ? { ...notice, cancelTo } : notice;
}
