import type { AmqpChannel, Delivery, MessageProperties } from '../../amqp/port.js';
import { errorToPayload, parseRequest, serverErrorToPayload, type ErrorPayload } from './format.js';
import {
  QAMBadMessageException,
  QAMMethodNotFoundException,
  QAMSerializationException,
  describeError,
  type FaultHandler,
  type QAMException,
} from '../../errors.js';
import { clip, quote } from '../../log-guard.js';
import { replyRoute, serverNames } from '../naming.js';
import { startedNoticeHeaders, wantsStartedNotice } from './notices.js';
import { serializerForContentType, type Serializer, type SerializerName } from '../../serializers.js';
import { requestKindOf, requestKinds, wireHeaders, wireVersion } from './wire.js';
import { sizeError } from '../../size-limit.js';

/** A request read off the wire. */
export interface IncomingCall {
  /** The call's id: the correlation id (native), the body id (QAM, unique per proxy only); undefined when it has none. */
  id: string | undefined;
  method: string;
  params: unknown[];
  /** The caller's give-up time in epoch milliseconds, when the protocol carries one. */
  deadline: number | undefined;
  /** True when the caller asked for a started notice (see notices.ts). */
  startedNotice: boolean;
  /** Who the id is unique for, when it is not unique across callers: the QAM format's reply routing key. */
  caller?: string;
  /** `'call'`, or `'describe'` for a request asking which methods the server serves (wire.ts). */
  kind: string;
}

/** A reply ready to publish. */
export interface OutgoingReply {
  exchange: string;
  routingKey: string;
  body: Buffer;
  properties: MessageProperties;
}

/**
 * How a call ended, as the server hands it to its protocol: a result, what the function threw, or
 * an error the server raised itself (`fromServer`: a refused request, a reply that cannot be sent),
 * which only the server creates and which proxies alone rebuild as qam's own classes.
 */
export type CallOutcome = { result: unknown } | { error: unknown; fromServer?: false } | { error: QAMException; fromServer: true };

/**
 * One wire format a server speaks: its names, how a request reads, how a reply is built. A server
 * consumes one queue per protocol and runs every call on its one worker pool.
 * @internal
 */
export interface ServerProtocol {
  readonly name: string;
  /** The queue this protocol consumes. */
  readonly queue: string;
  /** The exchanges {@link declare} makes, which the server checks are still there. */
  readonly exchanges: readonly string[];
  /** Declares the exchanges, queue and bindings (the flags are part of the protocol). */
  declare(channel: AmqpChannel): Promise<void>;
  /** Deletes what {@link declare} made that belongs to this server alone. A refusal closes the channel. */
  remove(channel: AmqpChannel): Promise<void>;
  /** Reads a delivery: the call, or the error to answer with. Never throws. */
  read(message: Delivery): { call: IncomingCall } | { error: QAMException };
  /** The error for a method path nothing registered answers to. */
  notFound(method: string): QAMException;
  /**
   * The reply to `message`, or undefined when the request left no reply address. Throws
   * QAMSerializationException or QAMPayloadTooLargeException when the outcome cannot be sent;
   * the server then replies with that error instead.
   */
  reply(message: Delivery, outcome: CallOutcome): OutgoingReply | undefined;
  /**
   * The started notice of `message` from the server instance `instanceId`, naming the queue of its
   * cancels (`cancelTo`) when it takes them; undefined when the protocol has none or the request no
   * reply address.
   */
  started(message: Delivery, instanceId: string, cancelTo?: string): OutgoingReply | undefined;
}

/** @internal */
export interface ProtocolSettings {
  serverId: string;
  maxBytes: number;
  exposeStack: boolean;
  /** For replies to requests whose content type names no known serializer. */
  fallbackSerializer: Serializer;
  /** The serializers whose requests are decoded; others are refused with BAD_MESSAGE. */
  accepted: ReadonlySet<SerializerName>;
  /** The headers of every reply: wire version and fingerprint (default: the wire version alone). */
  headers?: Record<string, unknown>;
  /** Logs a warning about a request (the server adds its own id). */
  warn(message: string): void;
  /** Arguments of the native queue's declaration (its type, delivery limit), or undefined for a classic queue. */
  queueArguments?: Record<string, unknown> | undefined;
}

/**
 * Runs `read` on what a function threw, counting the reads that threw (hostile getters, Proxy
 * traps): such a value is logged once, and its caller gets what could be read.
 * @internal
 */
export function readThrown<T>(settings: ProtocolSettings, read: (onFault: FaultHandler) => T): T {
  let faults = 0;
  const result = read(() => faults++);
  if (faults > 0)
    settings.warn(`a function threw a value that cannot be read whole (${faults} reads threw); its caller gets what could be read`);
  return result;
}

function errorPayloadOf(outcome: Exclude<CallOutcome, { result: unknown }>, settings: ProtocolSettings): ErrorPayload {
  if (outcome.fromServer === true) return serverErrorToPayload(outcome.error, settings.exposeStack);
  return readThrown(settings, (onFault) => errorToPayload(outcome.error, settings.exposeStack, onFault));
}

/**
 * qam's own protocol: callme's names (`server_<id>_ex`, `server_<id>_queue`), the serializer named
 * by the content type, correlation and reply address in AMQP properties.
 * @internal
 */
export function nativeProtocol(settings: ProtocolSettings): ServerProtocol {
  const { exchange, queue, routingKey } = serverNames(settings.serverId);
  const contentTypeOf = (message: Delivery): string | undefined => {
    const { contentType } = message.properties;
    return typeof contentType === 'string' ? contentType : undefined;
  };
  const serializerOf = (message: Delivery): Serializer | undefined => {
    const serializer = serializerForContentType(contentTypeOf(message));
    return serializer !== undefined && settings.accepted.has(serializer.name) ? serializer : undefined;
  };

  return {
    name: 'native',
    queue,
    exchanges: [exchange],
    async declare(channel) {
      await channel.declareExchange(exchange, 'direct', { durable: true, autoDelete: false });
      const { queueArguments } = settings;
      await channel.declareQueue(
        queue,
        queueArguments === undefined
          ? { durable: true, exclusive: false, autoDelete: false }
          : { durable: true, exclusive: false, autoDelete: false, arguments: queueArguments },
      );
      await channel.bindQueue(queue, exchange, routingKey);
    },
    async remove(channel) {
      await channel.deleteQueue(queue);
      await channel.deleteExchange(exchange);
    },
    read(message) {
      const { replyTo } = message.properties;
      if (replyTo !== undefined && replyTo !== '' && (typeof replyTo !== 'string' || replyRoute(replyTo) === undefined)) {
        return {
          error: new QAMBadMessageException(
            `Request reply_to ${quote(String(replyTo), 64)} is neither a direct reply-to address nor a client reply exchange`,
          ),
        };
      }
      const kind = requestKindOf(message.properties.headers);
      if (!requestKinds.has(kind)) {
        return {
          error: new QAMBadMessageException(
            `Request kind ${quote(kind, 64)} is not supported by server ${settings.serverId} (qam wire ${wireVersion}); nothing was run`,
          ),
        };
      }
      const serializer = serializerOf(message);
      if (serializer === undefined) {
        const refused = serializerForContentType(contentTypeOf(message));
        const reason =
          refused === undefined
            ? `Unsupported content type ${quote(String(contentTypeOf(message)), 64)}`
            : `Server ${settings.serverId} does not accept ${refused.name} requests`;
        return { error: new QAMBadMessageException(reason) };
      }
      const tooLarge = sizeError('Request', message.content.length, settings.maxBytes, 'server');
      if (tooLarge !== undefined) return { error: tooLarge };
      try {
        const { method, params, deadline } = parseRequest(serializer.decode(message.content));
        const id = typeof message.properties.correlationId === 'string' ? message.properties.correlationId : undefined;
        return { call: { id, method, params, deadline, startedNotice: wantsStartedNotice(message.properties), kind } };
      } catch (error) {
        return {
          error:
            error instanceof QAMBadMessageException
              ? error
              : new QAMBadMessageException(`Request body cannot be decoded as ${serializer.name}: ${describeError(error)}`),
        };
      }
    },
    notFound(method) {
      return new QAMMethodNotFoundException(`Method '${clip(method)}' is not registered on server ${settings.serverId}`);
    },
    reply(message, outcome) {
      const { replyTo, correlationId } = message.properties;
      const route = typeof replyTo === 'string' ? replyRoute(replyTo) : undefined;
      if (route === undefined) return undefined;
      const serializer = serializerOf(message) ?? settings.fallbackSerializer;
      const envelope =
        'error' in outcome
          ? { error: errorPayloadOf(outcome, settings) }
          : { result: outcome.result === undefined && serializer.name === 'json' ? null : outcome.result };
      let body: Buffer;
      try {
        body = serializer.encode(envelope);
      } catch (error) {
        throw new QAMSerializationException(`Reply cannot be serialized as ${serializer.name}: ${describeError(error)}`, error);
      }
      const tooLarge = sizeError('Reply', body.length, settings.maxBytes, 'server');
      if (tooLarge !== undefined) throw tooLarge;
      const properties: MessageProperties = {
        contentType: serializer.contentType,
        headers: settings.headers ?? wireHeaders,
        correlationId: typeof correlationId === 'string' ? correlationId : undefined,
      };
      return { exchange: route.exchange, routingKey: route.routingKey, body, properties };
    },
    started(message, instanceId, cancelTo) {
      const { replyTo, correlationId } = message.properties;
      const route = typeof replyTo === 'string' ? replyRoute(replyTo) : undefined;
      if (route === undefined || typeof correlationId !== 'string') return undefined;
      const properties = { correlationId, headers: startedNoticeHeaders(instanceId, cancelTo) };
      return { exchange: route.exchange, routingKey: route.routingKey, body: Buffer.alloc(0), properties };
    },
  };
}
