import { randomUUID } from 'node:crypto';
import type { QAMConnection } from '../amqp/connection.js';
import type { Logger } from '../logger.js';
import { callmeClientProtocol } from '../protocols/callme/client.js';
import type { ClientProtocol } from '../protocols/client-protocol.js';
import { checkId, type WireProtocol } from '../protocols/naming.js';
import { directClientProtocol } from '../protocols/native/client.js';
import type { ErrorClass } from '../protocols/native/format.js';
import { connectionHeaders } from '../protocols/native/wire.js';
import { qamClientProtocol } from '../protocols/qam/client.js';
import type { Serializer } from '../serializers.js';
import { CallClient, type CallTransport } from './call-client.js';

/**
 * How long a QAM reply queue of a generated client id may stay unused before the broker deletes
 * it: longer than any sensible call timeout or broker outage, so a live proxy never loses it, and
 * short enough that the queues of crashed proxies do not pile up.
 */
const generatedQueueExpiresMs = 60 * 60 * 1000;

/** The placeholder server id of a proxy made without one; no call goes to it. */
const unboundServerId = 'none';

/** @internal What a proxy asks for; {@link createTransport} checks that it goes together. */
export interface TransportChoice {
  /** The proxy's server; undefined for a proxy bound by useServer only. */
  serverId: string | undefined;
  connection: QAMConnection;
  ownsConnection: boolean;
  serializer: Serializer;
  maxBytes: number;
  errorClasses: ReadonlyMap<string, ErrorClass>;
  logger: Logger;
  protocol: WireProtocol | undefined;
  replies: 'direct' | 'callme' | undefined;
  clientId: string | undefined;
  /** Whether requests carry the connection's user as their AMQP `user_id`. */
  userId: boolean;
}

/**
 * The AMQP side of a proxy for its options: qam's own protocol over direct reply-to or with
 * callme's reply names, or Python QAM's format.
 * @internal
 */
export function createTransport(choice: TransportChoice): CallTransport {
  const { connection, ownsConnection, maxBytes, logger } = choice;
  return new CallClient({
    serverId: choice.serverId ?? unboundServerId,
    connection,
    ownsConnection,
    maxBytes,
    logger,
    protocol: clientProtocol(choice),
    userId: choice.userId,
  });
}

function clientProtocol(choice: TransportChoice): ClientProtocol {
  const { maxBytes, serializer, errorClasses, protocol = 'native', replies = 'direct' } = choice;
  if (protocol === 'qam' && choice.serverId === undefined) {
    throw new TypeError("protocol 'qam' needs serverId: a QAM proxy's reply queue is bound to its one server");
  }
  // A proxy without a server sends nothing until useServer gives each call its own target.
  const serverId = choice.serverId ?? unboundServerId;
  if (protocol === 'native' && choice.clientId !== undefined)
    throw new TypeError("clientId names a QAM reply queue: it applies to protocol 'qam' only");
  if (protocol === 'qam') {
    if (replies !== 'direct') throw new TypeError("replies: 'callme' applies to the native protocol; QAM has reply names of its own");
    if (serializer.name !== 'json') throw new TypeError("protocol 'qam' speaks QAM's JSON format: serializer must be 'json'");
    // A generated id is declared by this proxy alone, so the `x-expires` argument, which QAM's own
    // declaration lacks, can never clash with a Python proxy's declaration of the same queue.
    const clientId = choice.clientId === undefined ? `qam_${randomUUID()}` : checkId('clientId', choice.clientId);
    const expiresMs = choice.clientId === undefined ? generatedQueueExpiresMs : undefined;
    return qamClientProtocol({ serverId, clientId, expiresMs, maxBytes });
  }
  const headers = connectionHeaders(choice.connection.fingerprintJson);
  if (replies === 'callme')
    return callmeClientProtocol({ serverId, user: choice.connection.username, serializer, maxBytes, errorClasses, headers });
  return directClientProtocol({ serverId, serializer, maxBytes, errorClasses, headers });
}
