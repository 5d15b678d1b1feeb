import { randomUUID } from 'node:crypto';
import { callmeClientProtocol } from '../protocols/callme/client.js';
import { RpcClient, type CallTransport, type ClientSettings } from './client.js';
import { checkId, type WireProtocol } from '../protocols/naming.js';
import { qamClientProtocol } from '../protocols/qam/client.js';
import { ReplyQueueClient } from './reply-queue-client.js';

/**
 * How long a QAM reply queue of a generated client id may stay unused before the broker deletes
 * it: longer than any sensible call timeout or broker outage, so a live proxy never loses it, and
 * short enough that the queues of crashed proxies do not pile up.
 */
const generatedQueueExpiresMs = 60 * 60 * 1000;

/** @internal What a proxy asks for; {@link createTransport} checks that it goes together. */
export interface TransportChoice extends ClientSettings {
  protocol: WireProtocol | undefined;
  replies: 'direct' | 'callme' | undefined;
  clientId: string | undefined;
}

/**
 * The transport for a proxy's options: direct reply-to, callme's reply names, or Python QAM's format.
 * @internal
 */
export function createTransport(choice: TransportChoice): CallTransport {
  const { serverId, connection, ownsConnection, maxBytes, logger, protocol = 'native', replies = 'direct' } = choice;
  if (protocol !== 'native' && protocol !== 'qam') throw new TypeError(`Unknown protocol '${String(protocol)}': expected 'native' or 'qam'`);
  if (replies !== 'direct' && replies !== 'callme') throw new TypeError(`Unknown replies '${String(replies)}': expected 'direct' or 'callme'`);
  if (protocol === 'native' && choice.clientId !== undefined) throw new TypeError("clientId names a QAM reply queue: it applies to protocol 'qam' only");
  if (protocol === 'qam') {
    if (replies !== 'direct') throw new TypeError("replies: 'callme' applies to the native protocol; QAM has reply names of its own");
    if (choice.serializer.name !== 'json') throw new TypeError("protocol 'qam' speaks QAM's JSON format: serializer must be 'json'");
    // A generated id is declared by this proxy alone, so the `x-expires` argument, which QAM's own
    // declaration lacks, can never clash with a Python proxy's declaration of the same queue.
    const clientId = choice.clientId === undefined ? `qam_${randomUUID()}` : checkId('clientId', choice.clientId);
    const expiresMs = choice.clientId === undefined ? generatedQueueExpiresMs : undefined;
    return new ReplyQueueClient({ serverId, connection, ownsConnection, maxBytes, logger, protocol: qamClientProtocol({ serverId, clientId, expiresMs, maxBytes }) });
  }
  if (replies === 'callme') {
    const callme = callmeClientProtocol({ serverId, user: connection.username, serializer: choice.serializer, maxBytes, errorClasses: choice.errorClasses });
    return new ReplyQueueClient({ serverId, connection, ownsConnection, maxBytes, logger, protocol: callme });
  }
  return new RpcClient({ serverId, connection, ownsConnection, serializer: choice.serializer, maxBytes, errorClasses: choice.errorClasses, logger });
}
