import { QAMBadMessageException, QAMPayloadTooLargeException, describeError } from '../../errors.js';
import { qamClientNames, qamServerNames } from '../naming.js';
import { decodeQamBody, encodeQamBody, parseQamReply, qamIdOf, qamProperties, qamReplyError } from './format.js';
import type { ClientProtocol } from '../../proxy/reply-queue-client.js';

/** @internal */
export interface QamClientSettings {
  serverId: string;
  clientId: string;
  /** Milliseconds the reply queue may stay unused before the broker deletes it (`x-expires`); undefined for none. */
  expiresMs: number | undefined;
  maxBytes: number;
}

const durableDirect = { durable: true, autoDelete: false } as const;

/**
 * Python QAM's proxy side: requests to `<server>_server_exchange`, replies bound from
 * `<server>_client_exchange` into `<client>_client_queue`, with QAM's flags (a declaration with
 * other flags fails with PRECONDITION_FAILED against one a Python peer made first). The body id is
 * the only correlation, so ids only ever increase, and start from the clock in microseconds: a
 * late reply to a timed-out call, even one left in the queue by an earlier process with the same
 * client id, never matches a newer call. Microseconds since 1970 stay below 2^53 until the year 2255.
 * @internal
 */
export function qamClientProtocol(settings: QamClientSettings): ClientProtocol {
  const server = qamServerNames(settings.serverId);
  const client = qamClientNames(settings.clientId);
  let lastId = 0;

  return {
    replyQueue: client.queue,
    repliesOutliveConnection: true,
    async declareReplies(channel) {
      await channel.assertExchange(server.replyExchange, 'direct', durableDirect);
      await channel.assertQueue(client.queue, {
        durable: true,
        exclusive: false,
        autoDelete: false,
        ...(settings.expiresMs === undefined ? {} : { expires: settings.expiresMs }),
      });
      await channel.bindQueue(client.queue, server.replyExchange, client.routingKey);
    },
    async declareRequests(channel) {
      await channel.assertExchange(server.exchange, 'direct', durableDirect);
    },
    async removeReplies(channel) {
      await channel.deleteQueue(client.queue);
    },
    nextId() {
      lastId = Math.max(lastId + 1, Date.now() * 1000);
      return String(lastId);
    },
    request(id, method, params) {
      const body = encodeQamBody({ id: Number(id), method_name: method, routing_key: client.routingKey, params });
      return { exchange: server.exchange, routingKey: server.routingKey, body, properties: { ...qamProperties } };
    },
    returnedId(message) {
      try {
        const id = qamIdOf(decodeQamBody(message.content));
        return id === undefined ? undefined : String(id);
      } catch {
        return undefined;
      }
    },
    readReply(message) {
      // The id is in the body: a reply over the limit cannot be matched without reading it, which the limit forbids.
      if (message.content.length > settings.maxBytes) {
        return { id: undefined, outcome: new QAMPayloadTooLargeException(`Reply of ${message.content.length} bytes exceeds the limit of ${settings.maxBytes} bytes`) };
      }
      let value: unknown;
      try {
        value = decodeQamBody(message.content);
      } catch (error) {
        return { id: undefined, outcome: error instanceof Error ? error : new QAMBadMessageException(describeError(error)) };
      }
      const id = qamIdOf(value);
      if (id === undefined) return { id: undefined, outcome: new QAMBadMessageException('Reply has no integer "id"') };
      try {
        const reply = parseQamReply(value);
        return { id: String(id), outcome: reply.exception ? qamReplyError(reply) : { value: reply.result } };
      } catch (error) {
        return { id: String(id), outcome: error instanceof Error ? error : new QAMBadMessageException(describeError(error)) };
      }
    },
  };
}
