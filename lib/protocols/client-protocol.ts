import type { AmqpChannel, Delivery, MessageProperties, Returned } from '../amqp/port.js';
import type { StartedNotice } from './native/notices.js';

/**
 * A request ready to publish. Its `properties` object is made for this request alone: the
 * publisher completes it (expiration, user id) in place.
 * @internal
 */
export interface OutgoingRequest {
  exchange: string;
  routingKey: string;
  body: Buffer;
  properties: MessageProperties;
}

/**
 * A call id: `prefix` and a sequence number, as one flat string. `prefix + n` would be a V8 cons
 * string (two pieces and a pair) once it is 13 characters or more, which becomes a third, flat
 * copy as soon as the id is written: about 30 bytes more per pending call (ids are the keys of
 * the pending table).
 * @internal
 */
export function callId(prefix: string, seq: number): string {
  return [prefix, seq.toString(36)].join('');
}

/**
 * The properties of one request to a target: its own object, written out field by field. On the
 * path of every call: a request's properties made by a chain of spreads, each followed by more
 * fields (`{ ...properties, correlationId }`), took V8 (Node 20) about 850 ns, this literal 8 ns
 * (`bench/object-spread.ts`).
 * @internal
 */
export function requestProperties(properties: MessageProperties, correlationId: string): MessageProperties {
  return { contentType: properties.contentType, headers: properties.headers, replyTo: properties.replyTo, correlationId };
}

/**
 * Where a proxy's calls go and what they ask for: made once per proxy (and per `useServer` or
 * `withStartNotice`), never per call.
 * @internal
 */
export interface RequestTarget {
  readonly serverId: string;
  /** True when the requests ask the server for a started notice. */
  readonly startNotice: boolean;
  readonly exchange: string;
  readonly routingKey: string;
  /** The properties of every request to this target but its correlation id. */
  readonly properties: MessageProperties;
}

/**
 * The client side of a wire format: its names, its call ids, how a request is written and a
 * reply read. Three exist: qam's own over direct reply-to, qam's own with callme's reply names,
 * and Python QAM's. One {@link CallClient} runs any of them.
 * @internal
 */
export interface ClientProtocol {
  /** The queue replies arrive in (consumed without acknowledgements). */
  readonly replyQueue: string;
  /**
   * True when replies arrive on the channel that published the request (RabbitMQ's direct
   * reply-to requires it): the reply consumer then runs on the publishing channel, and a lost
   * channel loses the replies to everything published on it.
   */
  readonly repliesOnPublisher: boolean;
  /** True when the reply queue outlives the connection, so calls in flight survive a reconnect. */
  readonly repliesOutliveConnection: boolean;
  /** Declares the reply queue and what routes replies to it. */
  declareReplies(channel: AmqpChannel): Promise<void>;
  /** Declares what publishing a request needs, on the publish channel. */
  declareRequests(channel: AmqpChannel): Promise<void>;
  /** Deletes what {@link declareReplies} made. */
  removeReplies(channel: AmqpChannel): Promise<void>;
  /** A new call id; never one a reply may still come for, and not guessable by others. */
  nextId(): string;
  /**
   * The target of calls to `serverId`, asking for started notices or not. Throws a TypeError when
   * the protocol cannot (QAM's has neither notices nor other servers on its reply queue).
   */
  target(serverId: string, startNotice: boolean): RequestTarget;
  /**
   * The target of requests of another kind than a call (`x-qam-kind`, see wire.ts) to the server
   * of `target`, or undefined when the protocol has no request kinds (QAM's).
   */
  readonly kindTarget: ((target: RequestTarget, kind: string) => RequestTarget) | undefined;
  /**
   * The request of a call, to `target` (by default the proxy's own server). Throws
   * QAMSerializationException when its params cannot be encoded.
   */
  request(id: string, method: string, params: unknown[], deadline: number, target?: RequestTarget): OutgoingRequest;
  /**
   * A request that expects no reply (no reply address, no deadline), to `target` (by default the
   * proxy's own server), or undefined when the protocol has none. Throws QAMSerializationException
   * when its params cannot be encoded.
   */
  readonly oneWay: ((id: string, method: string, params: unknown[], target?: RequestTarget) => OutgoingRequest) | undefined;
  /** The call id of a request the broker returned as unroutable. */
  returnedId(message: Returned): string | undefined;
  /** The call id and server instance of a started notice; undefined for anything else, which is a reply. */
  readNotice(message: Delivery): StartedNotice | undefined;
  /**
   * The cancel of call `id` to the queue `cancelTo` a started notice named, through the exchange
   * of `target`; undefined when the protocol has no cancels (QAM's).
   */
  readonly cancel: ((id: string, target: RequestTarget, cancelTo: string) => OutgoingRequest) | undefined;
  /** The call a reply answers (undefined when it names none) and how that call ends. */
  readReply(message: Delivery): { id: string | undefined; outcome: Error | { value: unknown } };
}
