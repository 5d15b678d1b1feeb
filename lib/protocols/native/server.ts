import type { Channel, ConsumeMessage, Options } from 'amqplib';
import { errorToPayload, parseRequest } from './format.js';
import { QAMBadMessageException, QAMMethodNotFoundException, QAMPayloadTooLargeException, QAMSerializationException, describeError } from '../../errors.js';
import { clip, quote } from '../../log-guard.js';
import { replyRoute, serverNames } from '../naming.js';
import { serializerForContentType, type Serializer } from '../../serializers.js';

/** A request read off the wire. */
export interface IncomingCall {
  method: string;
  params: unknown[];
  /** The caller's give-up time in epoch milliseconds, when the protocol carries one. */
  deadline: number | undefined;
}

/** A reply ready to publish. */
export interface OutgoingReply {
  exchange: string;
  routingKey: string;
  body: Buffer;
  properties: Options.Publish;
}

/** How a call ended, as the server hands it to its protocol. */
export type CallOutcome = { result: unknown } | { error: unknown };

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
  declare(channel: Channel): Promise<void>;
  /** Deletes what {@link declare} made that belongs to this server alone. A refusal closes the channel. */
  remove(channel: Channel): Promise<void>;
  /** Reads a delivery: the call, or the error to answer with. Never throws. */
  read(message: ConsumeMessage): { call: IncomingCall } | { error: Error };
  /** The error for a method path nothing registered answers to. */
  notFound(method: string): Error;
  /**
   * The reply to `message`, or undefined when the request left no reply address. Throws
   * QAMSerializationException or QAMPayloadTooLargeException when the outcome cannot be sent;
   * the server then replies with that error instead.
   */
  reply(message: ConsumeMessage, outcome: CallOutcome): OutgoingReply | undefined;
}

/** @internal */
export interface ProtocolSettings {
  serverId: string;
  maxBytes: number;
  exposeStack: boolean;
  /** For replies to requests whose content type names no known serializer. */
  fallbackSerializer: Serializer;
}

/**
 * qam's own protocol: callme's names (`server_<id>_ex`, `server_<id>_queue`), the serializer named
 * by the content type, correlation and reply address in AMQP properties.
 * @internal
 */
export function nativeProtocol(settings: ProtocolSettings): ServerProtocol {
  const { exchange, queue, routingKey } = serverNames(settings.serverId);
  const serializerOf = (message: ConsumeMessage): Serializer | undefined =>
    serializerForContentType((message.properties as { contentType?: string }).contentType);

  return {
    name: 'native',
    queue,
    exchanges: [exchange],
    async declare(channel) {
      await channel.assertExchange(exchange, 'direct', { durable: true, autoDelete: false });
      await channel.assertQueue(queue, { durable: true, exclusive: false, autoDelete: false });
      await channel.bindQueue(queue, exchange, routingKey);
    },
    async remove(channel) {
      await channel.deleteQueue(queue);
      await channel.deleteExchange(exchange);
    },
    read(message) {
      const { replyTo } = message.properties as { replyTo?: unknown };
      if (replyTo !== undefined && replyTo !== '' && (typeof replyTo !== 'string' || replyRoute(replyTo) === undefined)) {
        return { error: new QAMBadMessageException(`Request reply_to ${quote(String(replyTo), 64)} is neither a direct reply-to address nor a client reply exchange`) };
      }
      const serializer = serializerOf(message);
      if (serializer === undefined) {
        return { error: new QAMBadMessageException(`Unsupported content type ${quote(String((message.properties as { contentType?: string }).contentType), 64)}`) };
      }
      if (message.content.length > settings.maxBytes) {
        return { error: new QAMPayloadTooLargeException(`Request of ${message.content.length} bytes exceeds the server's limit of ${settings.maxBytes} bytes`) };
      }
      try {
        const { method, params, deadline } = parseRequest(serializer.decode(message.content));
        return { call: { method, params, deadline } };
      } catch (error) {
        return { error: error instanceof QAMBadMessageException ? error : new QAMBadMessageException(`Request body cannot be decoded as ${serializer.name}: ${describeError(error)}`) };
      }
    },
    notFound(method) {
      return new QAMMethodNotFoundException(`Method '${clip(method)}' is not registered on server ${settings.serverId}`);
    },
    reply(message, outcome) {
      const { replyTo, correlationId } = message.properties as { replyTo?: unknown; correlationId?: unknown };
      const route = typeof replyTo === 'string' ? replyRoute(replyTo) : undefined;
      if (route === undefined) return undefined;
      const serializer = serializerOf(message) ?? settings.fallbackSerializer;
      const envelope =
        'error' in outcome
          ? { error: errorToPayload(outcome.error, settings.exposeStack) }
          : { result: outcome.result === undefined && serializer.name === 'json' ? null : outcome.result };
      let body: Buffer;
      try {
        body = serializer.encode(envelope);
      } catch (error) {
        throw new QAMSerializationException(`Reply cannot be serialized as ${serializer.name}: ${describeError(error)}`, error);
      }
      if (body.length > settings.maxBytes) {
        throw new QAMPayloadTooLargeException(`Reply is ${body.length} bytes, above the server's limit of ${settings.maxBytes} bytes`);
      }
      const properties: Options.Publish = { contentType: serializer.contentType };
      if (typeof correlationId === 'string') properties.correlationId = correlationId;
      return { ...route, body, properties };
    },
  };
}
