/**
 * The state one embedded broker shares between its connections: vhosts, users, the scheduler, and
 * the direct reply-to addresses of its channels.
 * @internal
 */
import { randomBytes } from 'node:crypto';
import { Scheduler } from './scheduler.js';
import { Users } from './users.js';
import { Vhost } from './vhost.js';
import type { WireProperties } from './wire.js';

/** A channel consuming `amq.rabbitmq.reply-to`, as the broker routes replies to it. */
export interface ReplyTarget {
  /** Delivers a reply if `key` is the channel's current key (a key from a cancelled consumer is not). */
  deliverReply(key: string, content: Buffer, properties: WireProperties, routingKey: string): void;
}

/** How a reply address resolved. */
export type ReplyRoute = 'delivered' | 'dropped' | 'malformed';

export const replyToQueue = 'amq.rabbitmq.reply-to';
const replyPrefix = `${replyToQueue}.`;

const base64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** An Erlang term in external format starts with 131: RabbitMQ's own tokens (channel pids) do. */
const erlangTermTag = 131;

export class BrokerCore {
  readonly name: string;
  readonly scheduler = new Scheduler();
  users = new Users();
  readonly vhosts = new Map<string, Vhost>();
  /** RabbitMQ 3.10's default `max_message_size`. */
  readonly maxMessageSize = 128 * 1024 * 1024;
  readonly #replyTargets = new Map<string, ReplyTarget>();
  #serial = 0;

  constructor(name: string) {
    this.name = name;
  }

  nextId(): number {
    return ++this.#serial;
  }

  /** A name as RabbitMQ generates them: `amq.ctag-…`, `amq.gen-…`. */
  generatedName(prefix: 'amq.ctag' | 'amq.gen'): string {
    return `${prefix}-${randomBytes(16).toString('base64url')}`;
  }

  addVhost(name: string): Vhost {
    let vhost = this.vhosts.get(name);
    if (vhost === undefined) this.vhosts.set(name, (vhost = new Vhost(name, this.scheduler)));
    return vhost;
  }

  /**
   * Gives a channel its reply address, `amq.rabbitmq.reply-to.<channel>.<key>` as RabbitMQ makes
   * them: a token naming the channel, a random key naming this consumer of it.
   */
  registerReply(channelId: number, target: ReplyTarget): { token: string; key: string; address: string } {
    const token = Buffer.from(`memory:${channelId}`).toString('base64');
    const key = randomBytes(16).toString('base64');
    this.#replyTargets.set(token, target);
    return { token, key, address: `${replyPrefix}${token}.${key}` };
  }

  unregisterReply(token: string): void {
    this.#replyTargets.delete(token);
  }

  /**
   * Routes a publish to the default exchange with a reply address as its routing key, as RabbitMQ
   * 3.10 does: the suffix must split on dots into exactly two non-empty parts (else the message is
   * dropped); a first part that names no channel is dropped too (its channel closed), unless it is
   * not a channel reference at all, which crashes RabbitMQ's channel and closes the publisher's
   * connection with 541 INTERNAL_ERROR (`'malformed'`).
   */
  routeReply(routingKey: string, content: Buffer, properties: WireProperties): ReplyRoute {
    const parts = replyParts(routingKey);
    if (parts === undefined) return 'dropped';
    const [token, key] = parts;
    const target = this.#replyTargets.get(token);
    if (target !== undefined) {
      target.deliverReply(key, content, properties, routingKey);
      return 'delivered';
    }
    return isChannelReference(token) ? 'dropped' : 'malformed';
  }
}

/** The two parts of a reply address, split as Erlang's `string:tokens` splits (empty parts do not count). */
function replyParts(routingKey: string): [string, string] | undefined {
  const start = replyPrefix.length;
  const dot = routingKey.indexOf('.', start);
  if (dot > start && dot < routingKey.length - 1 && routingKey.indexOf('.', dot + 1) < 0) {
    return [routingKey.slice(start, dot), routingKey.slice(dot + 1)];
  }
  const parts = routingKey
    .slice(start)
    .split('.')
    .filter((part) => part !== '');
  return parts.length === 2 ? (parts as [string, string]) : undefined;
}

export function isReplyAddress(routingKey: string): boolean {
  return routingKey.startsWith(replyPrefix);
}

function isChannelReference(token: string): boolean {
  if (!base64.test(token)) return false;
  const bytes = Buffer.from(token, 'base64');
  return bytes[0] === erlangTermTag || /^memory:\d+$/.test(bytes.toString('latin1'));
}
