/**
 * Broker names. qam's own protocol uses callme's scheme, so RabbitMQ permission regexes can confine
 * each server and client to its own names; the `'qam'` protocol uses Python QAM's names.
 */

/**
 * The wire formats qam speaks: `'native'`, its own (callme's names, correlation in AMQP
 * properties), and `'qam'`, Python QAM's JSON format.
 */
export type WireProtocol = 'native' | 'qam';

const idPattern = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}$/;

/** Throws a TypeError unless `id` can be part of an AMQP name (letters, digits, `_ . : -`). */
export function checkId(kind: string, id: unknown): string {
  if (typeof id !== 'string' || !idPattern.test(id)) {
    throw new TypeError(
      `${kind} must be 1-200 characters of letters, digits, '_', '.', ':' or '-' starting with a letter or digit; got ${JSON.stringify(id)}`,
    );
  }
  return id;
}

/** callme's server names: requests go to `server_<id>_ex`, bound to `server_<id>_queue`. */
export function serverNames(serverId: string): { exchange: string; queue: string; routingKey: string } {
  return { exchange: `server_${serverId}_ex`, queue: `server_${serverId}_queue`, routingKey: serverId };
}

/**
 * The queue of one server instance's cancels: `server_<id>_cancel_<suffix>`, where `suffix` is the
 * hex part of the instance id. Covered by callme's server permissions (`server_<id>_.*`).
 */
export function cancelQueue(serverId: string, suffix: string): string {
  return `server_${serverId}_cancel_${suffix}`;
}

/** True when `queue` is the cancel queue of an instance of `serverId` (a notice cannot send a proxy's cancels elsewhere). */
export function isCancelQueueOf(serverId: string, queue: string): boolean {
  const prefix = `server_${serverId}_cancel_`;
  return queue.startsWith(prefix) && /^[0-9a-f]{16}$/.test(queue.slice(prefix.length));
}

/** callme's client names: replies come through `client_<user>_ex_<uid>` to `client_<user>_queue_<uid>`. */
export function clientNames(user: string, uid: string): { exchange: string; queue: string } {
  return { exchange: `client_${user}_ex_${uid}`, queue: `client_${user}_queue_${uid}` };
}

/** Python QAM's names for a server `S` and a proxy `C` (see qam-wire-format.md). */
export function qamServerNames(serverId: string): {
  exchange: string;
  queue: string;
  routingKey: string;
  replyExchange: string;
} {
  return {
    exchange: `${serverId}_server_exchange`,
    queue: `${serverId}_server_queue`,
    routingKey: `${serverId}_server_routing_key`,
    replyExchange: `${serverId}_client_exchange`,
  };
}

export function qamClientNames(clientId: string): { queue: string; routingKey: string } {
  return { queue: `${clientId}_client_queue`, routingKey: `${clientId}_client_routing_key` };
}

/** RabbitMQ's direct reply-to pseudo queue. */
export const directReplyTo = 'amq.rabbitmq.reply-to';

/**
 * A direct reply-to address: the prefix and a non-empty token. The token's encoding is the
 * broker's own and differs between RabbitMQ versions (3.x: `<base64>.<base64>`, 4.x: one base64
 * token), so it is checked only for the characters base64 and base64url use, and the 255-byte
 * limit of an AMQP short string. A token of the right shape may still be one the broker cannot
 * decode: the server meets those by publishing such replies where a refusal costs it no consumer.
 */
const directReplyToPattern = /^amq\.rabbitmq\.reply-to\.[A-Za-z0-9+/=_.~-]{1,233}$/;

const clientExchangePattern = /^client_.+_ex_[A-Za-z0-9-]+$/;

/** The longest AMQP short string (exchange name, routing key, reply_to): 255 bytes. */
export const maxShortString = 255;

/**
 * Where a reply to `replyTo` is published: direct reply-to names go through the default exchange,
 * callme's client exchanges are published to. Anything else is no reply address: a request must
 * not make a server publish into another server's exchange, or into one that does not exist
 * (which would close the channel its other replies go out on).
 */
export function replyRoute(replyTo: string): { exchange: string; routingKey: string } | undefined {
  if (Buffer.byteLength(replyTo) > maxShortString) return undefined;
  if (directReplyToPattern.test(replyTo)) return { exchange: '', routingKey: replyTo };
  // eslint-disable-next-line no-control-regex -- control characters are what this refuses
  return clientExchangePattern.test(replyTo) && !/[\u0000-\u001f\u007f]/.test(replyTo) ? { exchange: replyTo, routingKey: '' } : undefined;
}
