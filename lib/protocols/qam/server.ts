import type { Delivery } from '../../amqp/port.js';
import { QAMBadMessageException, QAMMethodNotFoundException, describeError, type QAMException } from '../../errors.js';
import { failureKind } from '../../amqp/port.js';
import { clip, quote } from '../../log-guard.js';
import { qamServerNames } from '../naming.js';
import { readThrown, type ProtocolSettings, type ServerProtocol } from '../native/server.js';
import {
  decodeQamBody,
  encodeQamBody,
  parseQamRequest,
  qamNotFoundText,
  qamMessageProperties,
  qamProperties,
  qamReplyBody,
  type QamAddress,
  type QamRequest,
} from './format.js';
import { sizeError } from '../../size-limit.js';

type Parsed = { request: QamRequest } | { problem: QAMException; address: QamAddress | undefined };

const durableDirect = { durable: true, autoDelete: false } as const;

/**
 * Python QAM's protocol (JSON serializer): requests come through `<id>_server_exchange` into
 * `<id>_server_queue`; replies go to `<id>_client_exchange` with the routing key the request names.
 * Declarations carry QAM's exact flags, since a declaration with other flags fails with
 * PRECONDITION_FAILED against a queue or exchange a Python peer declared first.
 * @internal
 */
export function qamProtocol(settings: ProtocolSettings): ServerProtocol {
  const names = qamServerNames(settings.serverId);
  // The body is read once by read() and again by reply() for the address; deliveries are distinct objects.
  const parsed = new WeakMap<Delivery, Parsed>();

  const parse = (message: Delivery): Parsed => {
    let result = parsed.get(message);
    if (result === undefined) {
      result = parseMessage(message, settings.maxBytes);
      parsed.set(message, result);
    }
    return result;
  };

  return {
    name: 'qam',
    queue: names.queue,
    exchanges: [names.exchange, names.replyExchange],
    async declare(channel) {
      await channel.declareExchange(names.exchange, 'direct', durableDirect);
      await channel.declareQueue(names.queue, { durable: true, exclusive: false, autoDelete: false });
      await channel.bindQueue(names.queue, names.exchange, names.routingKey);
      // QAM's server declares the reply exchange before it replies: a reply published to an
      // exchange that does not exist would close the reply channel with NOT_FOUND.
      await channel.declareExchange(names.replyExchange, 'direct', durableDirect);
    },
    async remove(channel) {
      await channel.deleteQueue(names.queue);
      await channel.deleteExchange(names.exchange);
      // Proxies bind their reply queues to the reply exchange: it goes only once none is bound,
      // and the broker answers a bound one with PRECONDITION_FAILED, which is no failure here.
      await channel.deleteExchange(names.replyExchange, { ifUnused: true }).catch((error: unknown) => {
        if (failureKind(error) !== 'precondition-failed') throw error;
      });
    },
    read(message) {
      const result = parse(message);
      if ('problem' in result) return { error: result.problem };
      const { id, method_name: method, params, routing_key: caller } = result.request;
      return { call: { id: String(id), method, params, deadline: undefined, startedNotice: false, kind: 'call', caller } };
    },
    notFound(method) {
      return new QAMMethodNotFoundException(qamNotFoundText(clip(method)));
    },
    reply(message, outcome) {
      const result = parse(message);
      const address = 'request' in result ? { id: result.request.id, routingKey: result.request.routing_key } : result.address;
      if (address === undefined) return undefined;
      const body = encodeQamBody(readThrown(settings, (onFault) => qamReplyBody(address.id, outcome, onFault)));
      const tooLarge = sizeError('Reply', body.length, settings.maxBytes, 'server');
      if (tooLarge !== undefined) throw tooLarge;
      return { exchange: names.replyExchange, routingKey: address.routingKey, body, properties: qamMessageProperties() };
    },
    // QAM's wire has no notices: a Python proxy would read one as a reply.
    started: () => undefined,
  };
}

/**
 * Reads a request. An oversized body is not parsed (that is what the limit spares), so it cannot
 * be answered: QAM keeps the reply address in the body.
 */
function parseMessage(message: Delivery, maxBytes: number): Parsed {
  const tooLarge = sizeError('Request', message.content.length, maxBytes, 'server');
  if (tooLarge !== undefined) return { problem: tooLarge, address: undefined };
  let value: unknown;
  try {
    value = decodeQamBody(message.content);
  } catch (error) {
    return {
      problem: error instanceof QAMBadMessageException ? error : new QAMBadMessageException(describeError(error)),
      address: undefined,
    };
  }
  const result = parseQamRequest(value);
  if ('problem' in result) return { problem: new QAMBadMessageException(result.problem), address: result.address };
  const { contentType } = message.properties;
  if (contentType !== undefined && contentType !== qamProperties.contentType) {
    return {
      problem: new QAMBadMessageException(`Unsupported content type ${quote(String(contentType), 64)}: QAM interop speaks JSON only`),
      address: { id: result.request.id, routingKey: result.request.routing_key },
    };
  }
  return result;
}
