import type { QAMConnection } from '../amqp/connection.js';
import { failureKind, type AmqpChannel, type Delivery, type Returned } from '../amqp/port.js';
import { RetiredChannels } from '../amqp/retired-channels.js';
import {
  QAMAbortException,
  QAMAccessRefusedException,
  QAMClosedException,
  QAMConnectionException,
  QAMException,
  QAMNoRouteException,
  QAMPublishException,
  describeError,
} from '../errors.js';
import type { Logger } from '../logger.js';
import type { ClientProtocol, OutgoingRequest, RequestTarget } from '../protocols/client-protocol.js';
import { SingleFlight } from '../util/single-flight.js';
import { isCancelQueueOf } from '../protocols/naming.js';
import { sizeError } from '../size-limit.js';
import { ClientObserver, type Observation } from './observe.js';
import type { MethodStats } from '../metrics.js';
import { CallbackState, PendingCalls, type Completion } from './pending.js';
import { isThenable } from '../util/thenable.js';

/** Told when a server instance took a call that asked for a started notice. */
export type StartedListener = (uid: string, instanceId: string) => unknown;

/** @internal One call as the proxy facade hands it over. */
export interface CallRequest {
  method: string;
  params: unknown[];
  timeoutMs: number;
  completion: Completion;
  signal: AbortSignal | undefined;
  /** Times to send the call again after a timeout or a lost connection (idempotent functions only). */
  retries: number;
  /** True for a call that expects no reply: it ends once the broker confirmed the request. */
  oneWay?: boolean;
  /** Where the call goes, and whether it asks for a started notice. */
  target: RequestTarget;
  /** Told of the started notice, when the target asks for one. */
  onStarted: StartedListener | undefined;
  /** AMQP headers the request carries (`withHeaders`), none under the reserved prefix. */
  headers?: Readonly<Record<string, string>> | undefined;
}

/**
 * What the proxy facade needs of the AMQP side: start a call (its uid is returned), end one that
 * cannot be sent, cancel, ask a call's state, close.
 * @internal
 */
export interface CallTransport {
  /** True when the wire protocol has requests without a reply. */
  readonly oneWay: boolean;
  call(request: CallRequest): string;
  fail(method: string, completion: Completion, error: Error): string;
  cancel(uid: string): boolean;
  state(uid: string): CallbackState;
  /** The target of calls to `serverId`; throws a TypeError when the protocol cannot reach it. */
  target(serverId: string, startNotice: boolean): RequestTarget;
  /** The target of requests of `kind` to the server of `target`, or undefined when the protocol has no request kinds. */
  kindTarget(target: RequestTarget, kind: string): RequestTarget | undefined;
  /** 0 until a started notice for the call came, 1 after, 2 once it ended (or for unknown uids). */
  remoteState(uid: string): CallbackState;
  /** The server instance a started notice for the waiting call named. */
  startedBy(uid: string): string | undefined;
  readonly waitingCallbacks: number;
  stats(): { pending: number; droppedReplies: number; methods: Record<string, MethodStats> };
  close(): Promise<void>;
}

/** @internal */
export interface CallClientSettings {
  serverId: string;
  connection: QAMConnection;
  ownsConnection: boolean;
  maxBytes: number;
  logger: Logger;
  protocol: ClientProtocol;
  /**
   * Whether requests carry the connection's user as their AMQP `user_id` (which RabbitMQ checks):
   * the user it is logged in as when each request is written, which changes when it moves to a
   * node whose URL names another.
   */
  userId: boolean;
}

/** A call waiting to be written: encoded only then, so its expiration counts from when it leaves. */
interface Queued {
  readonly target: RequestTarget;
  readonly method: string;
  readonly params: unknown[];
  readonly deadline: number;
  readonly oneWay: boolean;
  readonly headers: Readonly<Record<string, string>> | undefined;
}

/**
 * Calls waiting for write capacity beyond this many fail at once rather than wait: a caller that
 * makes calls faster than the broker takes them, for longer than their timeout, would otherwise
 * hold memory without bound.
 */
const maxQueuedCalls = 100_000;

/**
 * A publish channel the broker nacked a request on is replaced by a new one, unless it was opened
 * less than this long ago: a nack storm (a queue refusing everything) opens at most one channel
 * a second.
 */
const replaceNackedAfterMs = 1000;

/** How a one-way call ends once the broker confirmed its request. */
const confirmedOneWay = Object.freeze({ value: undefined });

/**
 * The AMQP side of a proxy, whatever its wire protocol. A confirm channel publishes requests
 * (with `mandatory`, so a server id no queue serves comes back at once as NO_ROUTE, and with an
 * `expiration` equal to the caller's remaining time when the request is written, so the broker
 * drops requests nobody waits for); replies arrive on that channel (direct reply-to) or on a
 * channel consuming the protocol's reply queue.
 *
 * Backpressure: a request is written at once while the connection takes writes; otherwise (the
 * socket is full, or the broker blocks the connection for a resource alarm) the call waits, not
 * yet encoded, in a queue that is written in order as capacity returns. A call that times out or
 * is cancelled meanwhile leaves the queue and is never sent.
 *
 * A channel the broker closes (ACCESS_REFUSED for a write the user may not make, NOT_FOUND for an
 * exchange that does not exist) fails the calls published on it, at once, and the next call opens
 * a new one.
 *
 * A channel the broker nacks a request on is retired: later calls go out on a new channel, while
 * the retired one stays open until the calls published on it have ended (their replies come on it,
 * with direct reply-to). RabbitMQ 3.10 keeps nacking, for the life of the channel, every publish to
 * a quorum queue whose first publish on that channel came while the queue's leader was on a node
 * that was down: it sticks to that node until it is back.
 * @internal
 */
export class CallClient implements CallTransport {
  readonly #pending: PendingCalls;
  readonly #observer: ClientObserver;
  readonly #settings: CallClientSettings;
  readonly #protocol: ClientProtocol;
  readonly #detach: () => void;
  readonly #setup = new SingleFlight<AmqpChannel>();
  readonly #queue = new Map<string, Queued>();
  /** The calls that asked for a started notice, with the instance it named once it came. */
  readonly #watched = new Map<string, Watched>();
  /** The server of each target's exchange and routing key, to name it when the broker returns a request. */
  readonly #servers = new Map<string, string>();
  /** Calls published on the current channel whose replies come on it (direct reply-to). */
  #consumer: AmqpChannel | undefined;
  #publisher: AmqpChannel | undefined;
  /** When the publisher opened (ms since the epoch). */
  #publisherSince = 0;
  /** Publishers retired after a nack, each with the calls that may still wait on it (see #retire). */
  readonly #retired = new RetiredChannels();
  /** True while the publisher said to wait before writing more. */
  #congested = false;
  #pumping = false;
  #losing = false;
  #declared = false;
  #closed = false;

  constructor(settings: CallClientSettings) {
    this.#settings = settings;
    this.#protocol = settings.protocol;
    // The connection keeps the process alive only while calls are pending.
    const { connection } = settings;
    this.#observer = new ClientObserver(settings.serverId, settings.logger);
    this.#pending = new PendingCalls(
      settings.logger,
      (id, method, outcome, observation) => {
        this.#queue.delete(id);
        this.#retired.ended(id);
        if (this.#watched.size > 0) this.#unwatch(id, outcome);
        if (observation !== undefined) this.#observer.end(id, method, observation as Observation, outcome);
      },
      (busy) => (busy ? connection.retain() : connection.release()),
    );
    this.#detach = settings.connection.attach({
      onConnect: () => this.#reconnected(),
      onDisconnect: (error) => this.#disconnected(error),
    });
  }

  get oneWay(): boolean {
    return this.#protocol.oneWay !== undefined;
  }

  get waitingCallbacks(): number {
    return this.#pending.waitingCallbacks;
  }

  cancel(uid: string): boolean {
    return this.#pending.cancel(uid);
  }

  state(uid: string): CallbackState {
    return this.#pending.state(uid);
  }

  target(serverId: string, startNotice: boolean): RequestTarget {
    const target = this.#protocol.target(serverId, startNotice);
    this.#servers.set(routeKey(target.exchange, target.routingKey), serverId);
    return target;
  }

  kindTarget(target: RequestTarget, kind: string): RequestTarget | undefined {
    return this.#protocol.kindTarget?.(target, kind);
  }

  remoteState(uid: string): CallbackState {
    if (!this.#pending.has(uid)) return CallbackState.finished;
    return this.#watched.get(uid)?.instance === undefined ? CallbackState.waiting : CallbackState.processing;
  }

  startedBy(uid: string): string | undefined {
    return this.#watched.get(uid)?.instance;
  }

  stats(): { pending: number; droppedReplies: number; methods: Record<string, MethodStats> } {
    return { pending: this.#pending.size, droppedReplies: this.#pending.unknownReplies, methods: this.#observer.stats() };
  }

  /**
   * Starts a call and returns its uid. A closed client or arguments that cannot be encoded end
   * the call on a later tick, after its uid is returned. A retry goes out under the same uid, so
   * any reply to any attempt answers the call.
   */
  call(request: CallRequest): string {
    const { method, params, timeoutMs, completion, signal, retries, target } = request;
    const oneWay = request.oneWay === true;
    const id = this.#protocol.nextId();
    if (this.#closed) {
      this.#pending.rejectSoon(id, method, completion, this.#closedError());
      return id;
    }
    const deadline = Date.now() + timeoutMs;
    const observation = this.#observer.start(method, request.headers);
    const headers = typeof observation === 'number' ? request.headers : observation.headers;
    const retry =
      retries > 0 && !oneWay
        ? { times: retries, resend: (next: number) => this.#send(id, target, method, params, next, headers) }
        : undefined;
    const publisher = this.#writer();
    if (publisher === undefined) {
      this.#pending.add(id, method, timeoutMs, completion, signal, retry, observation);
      // An already aborted signal ended the call in add(): nothing to send, no channel to open.
      if (this.#pending.has(id)) {
        if (target.startNotice) this.#watch(id, target, request.onStarted);
        this.#enqueue(id, target, method, params, deadline, oneWay, headers);
      }
      return id;
    }
    const outgoing = this.#encode(id, target, method, params, deadline, oneWay, headers);
    if (outgoing instanceof Error) {
      this.#pending.rejectSoon(id, method, completion, outgoing);
      if (typeof observation !== 'number') observation.span.end();
      return id;
    }
    this.#pending.add(id, method, timeoutMs, completion, signal, retry, observation);
    if (this.#pending.has(id)) {
      if (target.startNotice) this.#watch(id, target, request.onStarted);
      this.#publish(publisher, id, target.serverId, outgoing, deadline, oneWay);
    }
    return id;
  }

  /** Ends a call that cannot be sent; callbacks run on a later tick, after the uid is returned. */
  fail(method: string, completion: Completion, error: Error): string {
    const id = this.#protocol.nextId();
    this.#pending.rejectSoon(id, method, completion, error);
    return id;
  }

  /** Rejects waiting calls, closes the channels and deletes the reply queue (and the connection, when owned). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // An idle proxy's connection does not keep the process alive, but closing talks to the broker
    // (a QAM reply queue is deleted): without this, a script's last `await proxy.close()` ended
    // with the process before the queue was, and left it on the broker.
    const connection = this.#settings.connection;
    connection.retain();
    try {
      this.#queue.clear();
      this.#pending.settleAll(new QAMClosedException(`Proxy for server ${this.#settings.serverId} was closed before the reply arrived`));
      this.#detach();
      // While the connection is down, a setup in progress waits for the reconnect: it then shuts
      // down what it opened itself (see #open) rather than hold up close() until the broker is back.
      // While the broker blocks the connection it reads nothing from it, so a channel being opened
      // would never open: do not wait for that either.
      if (connection.connected && !connection.blocked) await this.#setup.current?.catch(() => undefined);
      await this.#shutdown();
      if (this.#settings.ownsConnection) await connection.close();
    } finally {
      connection.release();
    }
  }

  /** The publisher when a request may be written now: open, consuming its replies, nothing queued ahead, not congested. */
  #writer(): AmqpChannel | undefined {
    if (this.#congested || this.#queue.size > 0 || this.#consumer === undefined) return undefined;
    return this.#publisher;
  }

  #send(
    id: string,
    target: RequestTarget,
    method: string,
    params: unknown[],
    deadline: number,
    headers: Readonly<Record<string, string>> | undefined,
  ): void {
    const publisher = this.#writer();
    if (publisher === undefined) {
      this.#enqueue(id, target, method, params, deadline, false, headers);
      return;
    }
    const outgoing = this.#encode(id, target, method, params, deadline, false, headers);
    if (outgoing instanceof Error) this.#pending.settle(id, outgoing);
    else this.#publish(publisher, id, target.serverId, outgoing, deadline, false);
  }

  #enqueue(
    id: string,
    target: RequestTarget,
    method: string,
    params: unknown[],
    deadline: number,
    oneWay: boolean,
    headers: Readonly<Record<string, string>> | undefined,
  ): void {
    if (this.#queue.size >= maxQueuedCalls) {
      this.#pending.settle(
        id,
        new QAMPublishException(
          `${maxQueuedCalls} calls through the proxy for server ${this.#settings.serverId} already wait for the broker to take them; this one was not sent`,
        ),
      );
      return;
    }
    this.#queue.set(id, { target, method, params, deadline, oneWay, headers });
    this.#pump();
  }

  /** Writes the queued calls in order, waiting for a channel and for write capacity as needed. */
  #pump(): void {
    if (this.#pumping || this.#closed) return;
    this.#pumping = true;
    this.#drain()
      .catch((error: unknown) => {
        // No channel could be opened: the calls waiting for one fail with the reason.
        const reason = this.#explain(error, this.#settings.serverId);
        const ids = [...this.#queue.keys()];
        this.#queue.clear();
        this.#pending.settleEach(ids, reason);
      })
      .finally(() => {
        this.#pumping = false;
        if (this.#queue.size > 0 && !this.#closed && this.#settings.connection.connected) this.#pump();
      });
  }

  async #drain(): Promise<void> {
    while (this.#queue.size > 0 && !this.#closed) {
      const publisher = this.#consumer !== undefined && this.#publisher !== undefined ? this.#publisher : await this.#ready();
      if (this.#congested) {
        try {
          await publisher.whenWritable();
        } catch {
          // The channel closed while waiting: the next round opens a new one.
          continue;
        } finally {
          this.#congested = false;
        }
      }
      for (const [id, queued] of this.#queue) {
        if (this.#publisher !== publisher || this.#congested) break;
        this.#queue.delete(id);
        const outgoing = this.#encode(id, queued.target, queued.method, queued.params, queued.deadline, queued.oneWay, queued.headers);
        if (outgoing instanceof Error) this.#pending.settle(id, outgoing);
        else this.#publish(publisher, id, queued.target.serverId, outgoing, queued.deadline, queued.oneWay);
      }
    }
  }

  #encode(
    id: string,
    target: RequestTarget,
    method: string,
    params: unknown[],
    deadline: number,
    oneWay: boolean,
    headers: Readonly<Record<string, string>> | undefined,
  ): OutgoingRequest | Error {
    let outgoing: OutgoingRequest;
    try {
      outgoing = oneWay ? this.#protocol.oneWay!(id, method, params, target) : this.#protocol.request(id, method, params, deadline, target);
    } catch (error) {
      return error instanceof Error ? error : new QAMPublishException(describeError(error));
    }
    // The protocol's own headers (the reserved `x-qam-` ones) win over a caller's of the same name.
    if (headers !== undefined) outgoing.properties.headers = { ...headers, ...outgoing.properties.headers };
    return sizeError(`Request to ${method}`, outgoing.body.length, this.#settings.maxBytes, 'proxy') ?? outgoing;
  }

  /**
   * Publishes a request with `mandatory` and a confirm. A call's request expires with its caller's
   * deadline; a one-way request never expires, and its call ends once the broker confirmed it (a
   * return, NO_ROUTE, comes before the confirm and ends it first).
   */
  #publish(channel: AmqpChannel, id: string, serverId: string, request: OutgoingRequest, deadline: number, oneWay: boolean): void {
    const { properties } = request;
    if (!oneWay) properties.expiration = String(Math.max(1, deadline - Date.now()));
    if (this.#settings.userId) properties.userId = this.#settings.connection.username;
    try {
      const more = channel.publish(request.exchange, request.routingKey, request.body, properties, { mandatory: true }, (failure) => {
        if (failure === undefined) {
          if (oneWay) this.#pending.settle(id, confirmedOneWay);
          return;
        }
        if (failure.kind === 'nacked') this.#retire(channel);
        this.#pending.settle(id, this.#explain(failure, serverId));
      });
      if (!more) this.#congested = true;
    } catch (error) {
      this.#pending.settle(id, this.#explain(error, serverId));
    }
  }

  /** What a failed publish or channel open means to the caller. */
  #explain(error: unknown, serverId: string): Error {
    if (error instanceof QAMException) return error;
    const text = describeError(error);
    switch (failureKind(error)) {
      case 'access-refused':
        return new QAMAccessRefusedException(`The broker refused the call to server ${serverId} for lack of permission: ${text}`, error);
      case 'not-found':
        return new QAMNoRouteException(`Nothing serves server '${serverId}': ${text}`);
      case 'closed':
        return new QAMConnectionException(
          `The connection closed before the broker confirmed the request to server ${serverId}: ${text}`,
          error,
        );
      default:
        return new QAMPublishException(`The broker did not accept the request to server ${serverId}: ${text}`, error);
    }
  }

  #closedError(): QAMClosedException {
    return new QAMClosedException(`Proxy for server ${this.#settings.serverId} is closed`);
  }

  /** The publish channel, once the replies are consumed (single flight). */
  #ready(): Promise<AmqpChannel> {
    return this.#setup.run(() => this.#open());
  }

  async #open(): Promise<AmqpChannel> {
    const connection = this.#settings.connection;
    if (this.#protocol.repliesOnPublisher) {
      if (this.#publisher === undefined) {
        const channel = await this.#openPublisher(connection);
        await this.#consume(channel);
      }
    } else {
      if (this.#consumer === undefined) await this.#consume(await connection.openChannel({ confirms: false }));
      if (this.#publisher === undefined) await this.#openPublisher(connection);
    }
    const publisher = this.#publisher;
    if (this.#closed || publisher === undefined) {
      await this.#shutdown();
      throw this.#closedError();
    }
    return publisher;
  }

  async #openPublisher(connection: QAMConnection): Promise<AmqpChannel> {
    const channel = await connection.openChannel({ confirms: true });
    channel.onReturn((message) => this.#returned(message));
    channel.onClose((error) => this.#publisherClosed(channel, error));
    try {
      await this.#protocol.declareRequests(channel);
    } catch (error) {
      await channel.close();
      throw error;
    }
    this.#publisher = channel;
    this.#publisherSince = Date.now();
    this.#congested = false;
    return channel;
  }

  async #consume(channel: AmqpChannel): Promise<void> {
    if (!this.#protocol.repliesOnPublisher) channel.onClose((error) => this.#consumerClosed(channel, error));
    try {
      this.#declared = true;
      await this.#protocol.declareReplies(channel);
      await channel.consume(
        this.#protocol.replyQueue,
        (message) => this.#receive(message),
        { noAck: true },
        () => this.#consumerCancelled(channel),
      );
      this.#consumer = channel;
    } catch (error) {
      await channel.close();
      throw error;
    }
  }

  async #shutdown(): Promise<void> {
    const channels = new Set([this.#publisher, this.#consumer, ...this.#retired.takeAll()]);
    this.#publisher = undefined;
    this.#consumer = undefined;
    for (const channel of channels) await channel?.close();
    if (this.#declared) await this.#removeReplies();
  }

  async #removeReplies(): Promise<void> {
    this.#declared = false;
    const queue = this.#protocol.replyQueue;
    if (this.#protocol.repliesOnPublisher) return;
    if (!this.#settings.connection.connected || this.#settings.connection.blocked) {
      this.#settings.logger.warn(
        `proxy for server ${this.#settings.serverId}: disconnected or blocked at close, reply queue ${queue} left to the broker`,
      );
      return;
    }
    try {
      const channel = await this.#settings.connection.openChannel({ confirms: false });
      await this.#protocol.removeReplies(channel);
      await channel.close();
    } catch (error) {
      this.#settings.logger.warn(
        `proxy for server ${this.#settings.serverId} could not delete its reply queue ${queue}: ${describeError(error)}`,
      );
    }
  }

  #returned(message: Returned): void {
    const id = this.#protocol.returnedId(message);
    if (id === undefined) return;
    const serverId = this.#servers.get(routeKey(message.exchange, message.routingKey)) ?? this.#settings.serverId;
    this.#pending.settle(
      id,
      new QAMNoRouteException(`No queue serves server '${serverId}': the broker returned the request as unroutable`),
    );
  }

  #receive(message: Delivery): void {
    const notice = this.#protocol.readNotice(message);
    if (notice !== undefined) {
      this.#started(notice.id, notice.instance, notice.cancelTo);
      return;
    }
    const { id, outcome } = this.#protocol.readReply(message);
    if (id !== undefined && this.#pending.settle(id, outcome)) return;
    this.#pending.noteUnknownReply();
    const problem = outcome instanceof Error ? ` (${describeError(outcome)})` : '';
    this.#settings.logger.debug(
      `proxy for server ${this.#settings.serverId} dropped a reply for ${String(id)}${problem}: no call waits for it`,
    );
  }

  /** A server instance took a call that asked to be told; a notice for any other call is dropped. */
  #started(id: string, instance: string, cancelTo: string | undefined): void {
    const watched = this.#watched.get(id);
    if (watched === undefined || !this.#pending.has(id)) return;
    watched.instance = instance;
    // A notice may name only a cancel queue of the server the call went to.
    if (cancelTo !== undefined && isCancelQueueOf(watched.target.serverId, cancelTo)) watched.cancelTo = cancelTo;
    if (watched.listener === undefined) return;
    try {
      const returned = watched.listener(id, instance);
      if (isThenable(returned)) Promise.resolve(returned).catch((error: unknown) => this.#listenerFailed(id, error));
    } catch (error) {
      this.#listenerFailed(id, error);
    }
  }

  #watch(id: string, target: RequestTarget, listener: StartedListener | undefined): void {
    this.#watched.set(id, { target, instance: undefined, cancelTo: undefined, listener });
  }

  /** A call that asked for a started notice ended; cancelled after a notice that named a cancel queue, it tells that instance. */
  #unwatch(id: string, outcome: Error | { value: unknown }): void {
    const watched = this.#watched.get(id);
    if (watched === undefined) return;
    this.#watched.delete(id);
    if (watched.cancelTo !== undefined && outcome instanceof QAMAbortException) this.#sendCancel(id, watched.target, watched.cancelTo);
  }

  /**
   * Publishes a cancel to the server instance running the call, best effort: on the publisher
   * channel when one is open, unconfirmed and not mandatory (a gone instance's queue drops it).
   */
  #sendCancel(id: string, target: RequestTarget, cancelTo: string): void {
    const channel = this.#publisher;
    const cancel = this.#protocol.cancel?.(id, target, cancelTo);
    if (channel === undefined || cancel === undefined) return;
    const userId = this.#settings.userId ? this.#settings.connection.username : undefined;
    const properties = userId === undefined ? cancel.properties : { ...cancel.properties, userId };
    try {
      channel.publish(cancel.exchange, cancel.routingKey, cancel.body, properties, { mandatory: false }, noConfirmation);
    } catch (error) {
      this.#settings.logger.debug(`proxy for server ${target.serverId} could not send the cancel of call ${id}: ${describeError(error)}`);
    }
  }

  #listenerFailed(id: string, error: unknown): void {
    this.#settings.logger.error(`the started listener of call ${id} threw: ${describeError(error)}`);
  }

  /**
   * The publish channel closed. Its unconfirmed requests fail through their confirms. With direct
   * reply-to, replies are bound to that channel: every call published on it fails now rather than
   * at its timeout (calls still queued wait for the next channel).
   */
  #publisherClosed(channel: AmqpChannel, error: Error | undefined): void {
    const retired = this.#retired.closed(channel);
    if (retired !== undefined) {
      this.#retiredClosed(retired, error);
      return;
    }
    if (this.#publisher !== channel) return;
    this.#publisher = undefined;
    this.#congested = false;
    if (!this.#protocol.repliesOnPublisher) return;
    this.#consumer = undefined;
    if (this.#closed) return;
    this.#repliesLost(`the channel to the broker closed${error === undefined ? '' : ` (${describeError(error)})`}`, error);
  }

  /**
   * The broker nacked a request on `channel`. Unless it is no longer the publisher or opened less
   * than {@link replaceNackedAfterMs} ago, the next call opens a new one; this one stays open for
   * the replies to the calls published on it (all the calls sent and not yet ended: no other
   * channel takes calls meanwhile), and closes once they have ended.
   */
  #retire(channel: AmqpChannel): void {
    if (this.#publisher !== channel || this.#closed || Date.now() - this.#publisherSince < replaceNackedAfterMs) return;
    this.#publisher = undefined;
    this.#congested = false;
    if (this.#consumer === channel) this.#consumer = undefined;
    const calls = new Set(this.#pending.ids().filter((id) => !this.#queue.has(id)));
    this.#settings.logger.info(
      `proxy for server ${this.#settings.serverId}: the broker nacked a request; later calls go out on a new channel`,
    );
    this.#retired.retire(channel, calls);
  }

  /** A retired channel closed before its calls ended: with direct reply-to, their replies cannot arrive. */
  #retiredClosed(calls: Set<string>, error: Error | undefined): void {
    if (error === undefined || !this.#protocol.repliesOnPublisher || this.#closed) return;
    this.#pending.settleEach(
      [...calls],
      new QAMConnectionException(
        `Proxy for server ${this.#settings.serverId}: a channel the broker had nacked a request on closed (${describeError(error)}); replies to the calls sent on it cannot arrive`,
        error,
      ),
    );
  }

  /** The reply channel closed: by the broker with an error, or with its connection (see #disconnected). */
  #consumerClosed(channel: AmqpChannel, error: Error | undefined): void {
    if (this.#consumer !== channel) return;
    this.#consumer = undefined;
    if (error !== undefined) this.#repliesLost(`its reply channel closed (${describeError(error)})`, error);
  }

  /** The broker cancels a consumer whose queue was deleted: replies to the calls in flight are gone. */
  #consumerCancelled(channel: AmqpChannel): void {
    if (this.#consumer === channel) this.#consumer = undefined;
    if (this.#protocol.repliesOnPublisher && this.#publisher === channel) this.#publisher = undefined;
    void channel.close();
    this.#repliesLost(`the broker cancelled the consumer of ${this.#protocol.replyQueue} (queue deleted?)`, undefined);
  }

  /**
   * Fails the calls sent whose replies can no longer arrive; calls still queued are sent later.
   * The connection's own close follows its channels' in the same turn; failing after it makes
   * retries wait for the reconnect instead of reopening on the dead connection.
   */
  #repliesLost(reason: string, cause: unknown): void {
    // A channel and then its connection may both report one loss: the calls fail (or retry) once.
    if (this.#closed || this.#losing) return;
    this.#losing = true;
    const lost = this.#pending.ids().filter((id) => !this.#queue.has(id));
    const error = new QAMConnectionException(
      `Proxy for server ${this.#settings.serverId}: ${reason}; replies to calls in flight cannot arrive`,
      cause,
    );
    setImmediate(() => {
      this.#losing = false;
      this.#pending.settleEach(lost, error);
    });
  }

  #disconnected(error: Error): void {
    this.#consumer = undefined;
    this.#publisher = undefined;
    this.#retired.clear();
    this.#congested = false;
    if (!this.#protocol.repliesOutliveConnection) this.#repliesLost(`the connection was lost (${error.message})`, error);
  }

  /** Consumes the replies again (a durable reply queue kept those that came meanwhile) and writes what waited. */
  #reconnected(): void {
    if (this.#closed) return;
    if (this.#queue.size > 0) this.#pump();
    else if (this.#declared && this.#pending.size > 0 && this.#protocol.repliesOutliveConnection) {
      this.#ready().catch((error: unknown) => {
        this.#settings.logger.warn(
          `proxy for server ${this.#settings.serverId} could not consume its replies again: ${describeError(error)}`,
        );
      });
    }
  }
}

/** What a call that asked for a started notice is known to, from its notice. */
interface Watched {
  readonly target: RequestTarget;
  /** The server instance the notice named. */
  instance: string | undefined;
  /** The queue of that instance's cancels, when it takes them. */
  cancelTo: string | undefined;
  readonly listener: StartedListener | undefined;
}

/** A cancel is best effort: how the broker took it changes nothing. */
function noConfirmation(): void {}

function routeKey(exchange: string, routingKey: string): string {
  return `${exchange}\n${routingKey}`;
}
