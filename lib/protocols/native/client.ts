import { randomBytes } from 'node:crypto';
import { QAMBadMessageException, QAMSerializationException, describeError } from '../../errors.js';
import { serializerForContentType, type Serializer } from '../../serializers.js';
import { callId, requestProperties, type ClientProtocol, type RequestTarget } from '../client-protocol.js';
import type { MessageProperties } from '../../amqp/port.js';
import { directReplyTo, serverNames } from '../naming.js';
import { payloadToError, parseReply, type ErrorClass, type RequestEnvelope } from './format.js';
import { kindHeader, wireHeaders } from './wire.js';
import { sizeError } from '../../size-limit.js';
import { cancelHeaders, notifyHeader, notifyStarted, readStartedNotice } from './notices.js';

/** What reading a reply needs to know. @internal */
export interface ReplySettings {
  maxBytes: number;
  errorClasses: ReadonlyMap<string, ErrorClass>;
}

/** The body of a request of qam's own protocol. Throws QAMSerializationException. @internal */
export function encodeRequest(serializer: Serializer, method: string, params: unknown[], deadline: number | undefined): Buffer {
  const envelope: RequestEnvelope = deadline === undefined ? { method, params } : { method, params, deadline };
  try {
    return serializer.encode(envelope);
  } catch (error) {
    throw new QAMSerializationException(
      `Arguments of ${method} cannot be serialized as ${serializer.name}: ${describeError(error)}`,
      error,
    );
  }
}
/** The properties of requests to a target, with the header asking for started notices when `startNotice`. @internal */
export function targetProperties(properties: MessageProperties, startNotice: boolean): MessageProperties {
  return startNotice ? { ...properties, headers: { ...properties.headers, [notifyHeader]: notifyStarted } } : properties;
}

/**
 * The target of requests of `kind` to the server of `target`: its requests name the kind in
 * `x-qam-kind` and ask for no notice. @internal
 */
export function kindTarget(target: RequestTarget, kind: string): RequestTarget {
  const { [notifyHeader]: _notice, ...headers } = target.properties.headers ?? {};
  return { ...target, startNotice: false, properties: { ...target.properties, headers: { ...headers, [kindHeader]: kind } } };
}

/** Reads a reply of qam's own protocol: its result, or the error it carries or that it is. @internal */
export function decodeReply(content: Buffer, contentType: unknown, settings: ReplySettings): Error | { value: unknown } {
  const tooLarge = sizeError('Reply', content.length, settings.maxBytes, 'proxy');
  if (tooLarge !== undefined) return tooLarge;
  const serializer = serializerForContentType(typeof contentType === 'string' ? contentType : undefined);
  if (serializer === undefined) return new QAMBadMessageException(`Reply has unsupported content type '${String(contentType)}'`);
  try {
    const reply = parseReply(serializer.decode(content));
    return 'error' in reply ? payloadToError(reply.error, settings.errorClasses) : { value: reply.result };
  } catch (error) {
    return error instanceof QAMBadMessageException
      ? error
      : new QAMBadMessageException(`Reply cannot be decoded as ${serializer.name}: ${describeError(error)}`, error);
  }
}

/**
 * How a proxy of qam's own protocol, with either reply scheme, matches returned requests and
 * replies to its calls (by their correlation id, which is the call id) and reads each outcome.
 * @internal
 */
export function nativeReplyReader(settings: ReplySettings): Pick<ClientProtocol, 'returnedId' | 'readNotice' | 'readReply' | 'cancel'> {
  return {
    cancel: (id, target, cancelTo) => ({
      exchange: target.exchange,
      routingKey: cancelTo,
      body: Buffer.alloc(0),
      properties: { correlationId: id, headers: cancelHeaders },
    }),
    returnedId: (message) => correlationIdOf(message.properties),
    readNotice: (message) => readStartedNotice(message.properties),
    readReply: (message) => ({
      id: correlationIdOf(message.properties),
      outcome: decodeReply(message.content, message.properties.contentType, settings),
    }),
  };
}

function correlationIdOf(properties: { correlationId?: unknown }): string | undefined {
  return typeof properties.correlationId === 'string' ? properties.correlationId : undefined;
}

/** @internal */
export interface DirectClientSettings extends ReplySettings {
  serverId: string;
  serializer: Serializer;
  /** The headers of every request: wire version and fingerprint (default: the wire version alone). */
  headers?: Record<string, unknown>;
}

/**
 * qam's own protocol over RabbitMQ's direct reply-to: requests go to the server's queue through
 * the default exchange, replies come back on the publishing channel without any queue of the
 * proxy's own. The correlation id is the call id; only replies on this channel can reach it.
 * @internal
 */
export function directClientProtocol(settings: DirectClientSettings): ClientProtocol {
  // Uids are short (memory per pending call) and distinct between proxies: 96 random bits, so a
  // server's dedupe window never takes one proxy's call for another's.
  const prefix = `${randomBytes(12).toString('base64url')}.`;
  let seq = 0;
  const properties = { replyTo: directReplyTo, contentType: settings.serializer.contentType, headers: settings.headers ?? wireHeaders };
  const oneWayProperties = { contentType: settings.serializer.contentType, headers: settings.headers ?? wireHeaders };
  const target = (serverId: string, startNotice: boolean): RequestTarget => ({
    serverId,
    startNotice,
    exchange: '',
    routingKey: serverNames(serverId).queue,
    properties: targetProperties(properties, startNotice),
  });
  const ownTarget = target(settings.serverId, false);

  return {
    replyQueue: directReplyTo,
    repliesOnPublisher: true,
    repliesOutliveConnection: false,
    async declareReplies() {},
    async declareRequests() {},
    async removeReplies() {},
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
