import { randomBytes, randomUUID } from 'node:crypto';
import type { Serializer } from '../../serializers.js';
import { callId, requestProperties, type ClientProtocol, type RequestTarget } from '../client-protocol.js';
import { clientNames, serverNames } from '../naming.js';
import { encodeRequest, kindTarget, nativeReplyReader, targetProperties, type ReplySettings } from '../native/client.js';
import { wireHeaders } from '../native/wire.js';

/** @internal */
export interface CallmeClientSettings extends ReplySettings {
  serverId: string;
  /** The AMQP user the proxy logs in as; its reply names carry it, so permissions can match them. */
  user: string;
  serializer: Serializer;
  /** The headers of every request: wire version and fingerprint (default: the wire version alone). */
  headers?: Record<string, unknown>;
}

/**
 * qam's own protocol with callme's reply names: replies come through the fanout exchange
 * `client_<user>_ex_<uid>` into the queue `client_<user>_queue_<uid>`, requests go to
 * `server_<id>_ex`. A client user needs configure and read rights on `client_<user>_.*` only, and
 * write rights on the exchanges of the servers it may call; it never declares a server's names.
 * @internal
 */
export function callmeClientProtocol(settings: CallmeClientSettings): ClientProtocol {
  const replies = clientNames(settings.user, randomUUID());
  // Every server user may write to every client's reply exchange, and its name is no secret (the
  // broker lists it): call ids start with a secret of their own, so no one can forge a reply that
  // matches one of this proxy's calls.
  const prefix = `${randomBytes(16).toString('base64url')}.`;
  let seq = 0;
  const properties = { replyTo: replies.exchange, contentType: settings.serializer.contentType, headers: settings.headers ?? wireHeaders };
  const target = (serverId: string, startNotice: boolean): RequestTarget => {
    const server = serverNames(serverId);
    return {
      serverId,
      startNotice,
      exchange: server.exchange,
      routingKey: server.routingKey,
      properties: targetProperties(properties, startNotice),
    };
  };
  const ownTarget = target(settings.serverId, false);
  const oneWayProperties = { contentType: settings.serializer.contentType, headers: settings.headers ?? wireHeaders };

  return {
    replyQueue: replies.queue,
    repliesOnPublisher: false,
    repliesOutliveConnection: false,
    async declareReplies(channel) {
      await channel.declareExchange(replies.exchange, 'fanout', { durable: false, autoDelete: true });
      // Exclusive as well as auto-delete: an auto-delete queue that never had a consumer (the
      // connection dropped between declare and consume) would otherwise stay forever.
      await channel.declareQueue(replies.queue, { durable: false, exclusive: true, autoDelete: true });
      await channel.bindQueue(replies.queue, replies.exchange, '');
    },
    // The server declares its exchange; declaring it here would need the configure right on
    // server names that this scheme denies clients.
    async declareRequests() {},
    async removeReplies(channel) {
      await channel.deleteQueue(replies.queue);
      await channel.deleteExchange(replies.exchange);
    },
    nextId: () => callId(prefix, ++seq),
    target,
    kindTarget,
    request(id, method, params, deadline, to = ownTarget) {
      const body = encodeRequest(settings.serializer, method, params, deadline);
      return { exchange: to.exchange, routingKey: to.routingKey, body, properties: requestProperties(to.properties, id) };
    },
    oneWay(id, method, params, to = ownTarget) {
      const body = encodeRequest(settings.serializer, method, params, undefined);
      return { exchange: to.exchange, routingKey: to.routingKey, body, properties: requestProperties(oneWayProperties, id) };
    },
    ...nativeReplyReader(settings),
  };
}
