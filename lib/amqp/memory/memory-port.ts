/**
 * The port to embedded brokers: `connect()` reads `memory://[user:pass@]name[/vhost]`.
 * @internal
 */
import { PortError, type AmqpConnection, type AmqpPort, type ConnectTarget } from '../port.js';
import { memoryBroker } from './broker.js';

/** What a `memory:` URL names. */
export interface MemoryAddress {
  /** The broker's name; `default` when the URL names none (`memory://`). */
  readonly broker: string;
  readonly username: string;
  readonly password: string;
  readonly vhost: string;
}

/**
 * Reads `memory://[user:pass@]name[/vhost]` the way amqplib reads an `amqp:` URL: parts
 * URL-encoded, user and password `guest` when absent, vhost `/` when absent or empty (`%2F` is
 * `/` too). A query (such as `?heartbeat=10`) is ignored.
 * @example parseMemoryUrl('memory://app:secret@tests/%2Fstaging') // { broker: 'tests', username: 'app', password: 'secret', vhost: '/staging' }
 */
export function parseMemoryUrl(url: string): MemoryAddress {
  if (!/^memory:\/\//i.test(url))
    throw new PortError('other', `An embedded broker URL starts with memory://, got ${url.split(':')[0] ?? url}:`);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (error) {
    throw new PortError('other', 'The embedded broker URL cannot be parsed', { cause: error });
  }
  const decode = (part: string): string => {
    try {
      return decodeURIComponent(part);
    } catch (error) {
      throw new PortError('other', 'The embedded broker URL has an invalid %-escape', { cause: error });
    }
  };
  const path = parsed.pathname === '' ? '' : decode(parsed.pathname.slice(1));
  return {
    broker: parsed.hostname === '' ? 'default' : decode(parsed.hostname),
    username: parsed.username === '' ? 'guest' : decode(parsed.username),
    password: parsed.password === '' ? 'guest' : decode(parsed.password),
    vhost: path === '' ? '/' : path,
  };
}

/** Connects to embedded brokers (made on first use, per name). The URL names the user; `target.username` is not read. */
export const memoryPort: AmqpPort = {
  connect(target: ConnectTarget): Promise<AmqpConnection> {
    let address: MemoryAddress;
    try {
      address = parseMemoryUrl(target.url);
    } catch (error) {
      return Promise.reject(error);
    }
    const { broker, username, password, vhost } = address;
    return memoryBroker(broker).connect({
      username,
      password,
      vhost,
      ...(target.connectionName === undefined ? {} : { connectionName: target.connectionName }),
    });
  },
};
