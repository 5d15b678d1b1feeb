import { randomBytes } from 'node:crypto';
import { QAMBadMessageException, describeError } from '../../errors.js';
import { qamClientNames, qamServerNames } from '../naming.js';
import { decodeQamBody, encodeQamBody, parseQamReply, qamIdOf, qamMessageProperties, qamProperties, qamReplyError } from './format.js';
import type { ClientProtocol } from '../client-protocol.js';
import { sizeError } from '../../size-limit.js';

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
 * A random point among the integers below 2^52 (52 random bits), so that the ids counted up from
 * it stay below 2^53-1, the largest integer QAM's JSON and a JavaScript number agree on, however
 * many calls a proxy makes.
 */
function randomStartId(): number {
  return Number(randomBytes(8).readBigUInt64BE() >> 12n);
}

/**
 * Python QAM's proxy side: requests to `<server>_server_exchange`, replies bound from
 * `<server>_client_exchange` into `<client>_client_queue`, with QAM's flags (a declaration with
 * other flags fails with PRECONDITION_FAILED against one a Python peer made first). The body id is
 * the only correlation, and any client that may publish to the server can have it reply to this
 * proxy's routing key with an id of its choosing: so ids start at a random point no other party
 * can guess and only ever increase from there. A late reply to a timed-out call never matches a
 * newer call, and one left in the queue by an earlier process with the same client id would have
 * to fall among the few ids of this proxy out of 2^52.
 * @internal
 */
export function qamClientProtocol(settings: QamClientSettings): ClientProtocol {
  const server = qamServerNames(settings.serverId);
  const client = qamClientNames(settings.clientId);
  let lastId = randomStartId();

  return {
    replyQueue: client.queue,
    repliesOnPublisher: false,
    repliesOutliveConnection: true,
    async declareReplies(channel) {
      await channel.declareExchange(server.replyExchange, 'direct', durableDirect);
      await channel.declareQueue(client.queue, {
        durable: true,
        exclusive: false,
        autoDelete: false,
        ...(settings.expiresMs === undefined ? {} : { expires: settings.expiresMs }),
      });
      await channel.bindQueue(client.queue, server.replyExchange, client.routingKey);
    },
    async declareRequests(channel) {
      await channel.declareExchange(server.exchange, 'direct', durableDirect);
    },
    async removeReplies(channel) {
      await channel.deleteQueue(client.queue);
    },
    nextId() {
      lastId += 1;
      return String(lastId);
    },
    target(serverId, startNotice) {
      if (startNotice) throw new TypeError("Started notices need qam's native protocol: QAM's wire has none");
      if (serverId !== settings.serverId) {
        throw new TypeError("useServer needs qam's native protocol: a QAM proxy's reply queue is bound to its one server");
      }
      return { serverId, startNotice, exchange: server.exchange, routingKey: server.routingKey, properties: qamProperties };
    },
    // QAM's format has no request kinds: a Python QAM server would run `_qam.<kind>` as a method.
    kindTarget: undefined,
    readNotice: () => undefined,
    cancel: undefined,
    request(id, method, params) {
      const body = encodeQamBody({ id: Number(id), method_name: method, routing_key: client.routingKey, params });
      return { exchange: server.exchange, routingKey: server.routingKey, body, properties: qamMessageProperties() };
    },
    // QAM's format has no request without a reply: a Python QAM server answers every one.
    oneWay: undefined,
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
      const tooLarge = sizeError('Reply', message.content.length, settings.maxBytes, 'proxy');
      if (tooLarge !== undefined) return { id: undefined, outcome: tooLarge };
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
