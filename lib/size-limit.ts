import { QAMPayloadTooLargeException } from './errors.js';

/**
 * The one check of a message's size against `maxMessageBytes`, for requests and replies, on the
 * proxy's side and the server's alike: undefined when `bytes` fit `maxBytes`, else the error
 * that says so. `what` names the message (`'Reply'`, `'Request to add'`).
 * @internal
 */
export function sizeError(
  what: string,
  bytes: number,
  maxBytes: number,
  side: 'proxy' | 'server' | 'processor' | 'event subscriber',
): QAMPayloadTooLargeException | undefined {
  if (bytes <= maxBytes) return undefined;
  return new QAMPayloadTooLargeException(`${what} is ${bytes} bytes, above the ${side}'s maxMessageBytes of ${maxBytes} bytes`);
}
