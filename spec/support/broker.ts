/**
 * Test-support helpers that inspect and manipulate the local RabbitMQ broker (127.0.0.1:5672,
 * guest/guest) through `rabbitmqctl` and a short-lived amqplib connection.
 *
 * Everything here acts only on what the caller names, so tests running in parallel against the
 * same broker (other suites, other languages) are left alone.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as amqp from 'amqplib';

export const BROKER_HOST = '127.0.0.1';
export const BROKER_PORT = 5672;

/** `amqp://guest:guest@127.0.0.1:5672/<vhost>` with the vhost URL-encoded ('/' becomes `%2F`). */
export function brokerUrl(vhost = '/', user = 'guest', password = 'guest'): string {
  return (
    `amqp://${encodeURIComponent(user)}:${encodeURIComponent(password)}@${BROKER_HOST}:${BROKER_PORT}` + `/${encodeURIComponent(vhost)}`
  );
}

/**
 * The tag of this test run (set by spec/support/global-setup.ts), carried by every
 * {@link uniqueName}, so the run's teardown can find what its tests left on the broker.
 */
export const RUN_TAG = process.env['QAM_TEST_RUN'] ?? '';

/** `${prefix}_${run tag}${hex digits}`; safe as a queue, exchange, vhost or user name. */
export function uniqueName(prefix: string): string {
  return `${prefix}_${RUN_TAG}${randomBytes(RUN_TAG === '' ? 8 : 5).toString('hex')}`;
}

export type Truthy<T> = Exclude<T, false | null | undefined | 0 | ''>;

/** Polls `predicate` until it returns truthy (resolving with that value) or the time is up. */
export async function waitUntil<T>(
  predicate: () => T | Promise<T>,
  options: { timeoutMs?: number; intervalMs?: number; message?: string } = {},
): Promise<Truthy<T>> {
  const { timeoutMs = 10_000, intervalMs = 50, message = 'condition' } = options;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await predicate();
    if (value) return value as Truthy<T>;
    if (Date.now() >= deadline) throw new Error(`waitUntil: ${message} not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** Runs `rabbitmqctl ...args`; resolves with stdout, rejects with an Error carrying stderr. */
export function rabbitmqctl(...args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('rabbitmqctl', args, { timeout: 60_000, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' }, (error, stdout, stderr) => {
      if (error) {
        const detail = (stderr || '').trim() || (stdout || '').trim() || error.message;
        const err = new Error(`rabbitmqctl ${args.join(' ')} failed: ${detail}`) as Error & {
          stderr?: string;
          stdout?: string;
          code?: unknown;
        };
        err.stderr = stderr;
        err.stdout = stdout;
        err.code = (error as NodeJS.ErrnoException).code;
        reject(err);
        return;
      }
      resolve(stdout);
    });
  });
}

/** Runs an info-listing rabbitmqctl command with `--formatter json` and parses the rows. */
async function listJson(args: string[]): Promise<Record<string, unknown>[]> {
  const out = (await rabbitmqctl(...args, '--formatter', 'json', '--quiet')).trim();
  if (out === '') return [];
  const rows: unknown = JSON.parse(out);
  if (!Array.isArray(rows)) throw new Error(`rabbitmqctl ${args.join(' ')}: unexpected output ${out}`);
  return rows as Record<string, unknown>[];
}

// ---------------------------------------------------------------------------------------------
// Queues and exchanges

export interface QueueInfo {
  name: string;
  /** messages ready + unacknowledged */
  messages: number;
  messagesReady: number;
  messagesUnacknowledged: number;
  consumers: number;
}

/** Every queue of `vhost`, with message and consumer counts. */
export async function listQueueInfo(vhost = '/'): Promise<QueueInfo[]> {
  const rows = await listJson(['list_queues', '-p', vhost, 'name', 'messages', 'messages_ready', 'messages_unacknowledged', 'consumers']);
  const num = (v: unknown): number => (typeof v === 'number' ? v : Number(v ?? 0) || 0);
  return rows.map((row) => ({
    name: String(row['name']),
    messages: num(row['messages']),
    messagesReady: num(row['messages_ready']),
    messagesUnacknowledged: num(row['messages_unacknowledged']),
    consumers: num(row['consumers']),
  }));
}

/** Names of every queue of `vhost`. */
export async function listQueues(vhost = '/'): Promise<string[]> {
  const rows = await listJson(['list_queues', '-p', vhost, 'name']);
  return rows.map((row) => String(row['name']));
}

/** Names of every exchange of `vhost`, including the default exchange ''. */
export async function listExchanges(vhost = '/'): Promise<string[]> {
  const rows = await listJson(['list_exchanges', '-p', vhost, 'name']);
  return rows.map((row) => String(row['name']));
}

export async function queueExists(name: string, vhost = '/'): Promise<boolean> {
  return (await listQueues(vhost)).includes(name);
}

export async function exchangeExists(name: string, vhost = '/'): Promise<boolean> {
  return (await listExchanges(vhost)).includes(name);
}

/** Messages in the queue (ready + unacknowledged, as `rabbitmqctl list_queues messages`). Rejects if absent. */
export async function queueMessageCount(name: string, vhost = '/'): Promise<number> {
  const info = (await listQueueInfo(vhost)).find((q) => q.name === name);
  if (!info) throw new Error(`queue ${JSON.stringify(name)} does not exist in vhost ${JSON.stringify(vhost)}`);
  return info.messages;
}

/** AMQP reply code of an amqplib channel/connection error, if it carries one. */
function replyCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

/**
 * Opens a guest connection to `vhost` and runs `op` once per name, each on its own channel (a
 * channel error such as 404 closes the channel). Errors for which `ignore` returns true are dropped;
 * for others `fallback` (if given) is tried before rejecting.
 */
async function perNameOnChannel(
  names: readonly string[],
  vhost: string,
  op: (ch: amqp.Channel, name: string) => Promise<unknown>,
  fallback?: (name: string, err: unknown) => Promise<void>,
): Promise<void> {
  if (names.length === 0) return;
  const conn = await amqp.connect(brokerUrl(vhost), {
    clientProperties: { connection_name: 'qam-spec-support-cleanup' },
  });
  conn.on('error', () => {});
  const failures: unknown[] = [];
  try {
    for (const name of names) {
      const ch = await conn.createChannel();
      ch.on('error', () => {});
      let failed: unknown;
      try {
        await op(ch, name);
      } catch (err) {
        failed = err;
      }
      if (failed === undefined) {
        await ch.close().catch(() => {});
      } else if (replyCode(failed) !== 404) {
        if (fallback) {
          try {
            await fallback(name, failed);
          } catch (err) {
            failures.push(err);
          }
        } else {
          failures.push(failed);
        }
      }
    }
  } finally {
    await conn.close().catch(() => {});
  }
  if (failures.length > 0) {
    throw failures.length === 1 ? failures[0] : new AggregateError(failures, 'some deletions failed');
  }
}

/**
 * Deletes the named queues of `vhost`, ignoring any that do not exist. A queue that amqplib may not
 * delete (e.g. exclusive to another connection: 405 RESOURCE_LOCKED) is deleted with
 * `rabbitmqctl delete_queue` instead.
 */
export async function deleteQueues(names: readonly string[], vhost = '/'): Promise<void> {
  await perNameOnChannel(
    names,
    vhost,
    (ch, name) => ch.deleteQueue(name),
    async (name) => {
      try {
        await rabbitmqctl('delete_queue', '-p', vhost, name);
      } catch (err) {
        if (!(await queueExists(name, vhost))) return;
        throw err;
      }
    },
  );
}

/** Deletes the named exchanges of `vhost`, ignoring any that do not exist. */
export async function deleteExchanges(names: readonly string[], vhost = '/'): Promise<void> {
  await perNameOnChannel(names, vhost, (ch, name) => ch.deleteExchange(name));
}

// ---------------------------------------------------------------------------------------------
// Virtual hosts and users

export interface TempVhost {
  vhost: string;
  /** Deletes the vhost (and everything in it). Idempotent. */
  remove(): Promise<void>;
}

/** Creates a fresh vhost on which guest has full permissions. */
export async function createVhost(prefix = 'qam_vhost'): Promise<TempVhost> {
  const vhost = uniqueName(prefix);
  await rabbitmqctl('add_vhost', vhost);
  let removed = false;
  const remove = async (): Promise<void> => {
    if (removed) return;
    removed = true;
    try {
      await rabbitmqctl('delete_vhost', vhost);
    } catch (err) {
      if (!/does not exist|no_such_vhost|not found/i.test(String((err as Error).message))) throw err;
    }
  };
  try {
    await rabbitmqctl('set_permissions', '-p', vhost, 'guest', '.*', '.*', '.*');
  } catch (err) {
    await remove().catch(() => {});
    throw err;
  }
  return { vhost, remove };
}

export interface Permissions {
  /** regular expressions, as for `rabbitmqctl set_permissions`; '' grants nothing */
  configure: string;
  write: string;
  read: string;
}

export interface TempUser {
  name: string;
  password: string;
  /** Deletes the user (the broker closes its connections). Idempotent. */
  remove(): Promise<void>;
}

/** Creates a user with `perms` on `vhost` (no tags). */
export async function createUser(name: string, password: string, vhost: string, perms: Permissions): Promise<TempUser> {
  await rabbitmqctl('add_user', name, password);
  let removed = false;
  const remove = async (): Promise<void> => {
    if (removed) return;
    removed = true;
    try {
      await rabbitmqctl('delete_user', name);
    } catch (err) {
      if (!/does not exist|no_such_user|not found/i.test(String((err as Error).message))) throw err;
    }
  };
  try {
    await rabbitmqctl('set_permissions', '-p', vhost, name, perms.configure, perms.write, perms.read);
  } catch (err) {
    await remove().catch(() => {});
    throw err;
  }
  return { name, password, remove };
}

// ---------------------------------------------------------------------------------------------
// Connections

export interface BrokerConnectionInfo {
  /** Erlang pid as accepted by `rabbitmqctl close_connection`, e.g. `<rabbit@host.1.847.0>` */
  pid: string;
  /** broker-side name: `127.0.0.1:52072 -> 127.0.0.1:5672` (does NOT include connection_name) */
  name: string;
  user: string;
  vhost: string;
  /** client_properties as printed by rabbitmqctl, e.g. `[{"connection_name","x"},{"product","amqplib"},...]` */
  clientProperties: string;
  /** client_properties decoded; nested AMQP tables become objects */
  properties: Record<string, unknown>;
  /** the client-provided `connection_name` client property, if any */
  connectionName: string | undefined;
}

/** Parser for the Erlang-ish terms rabbitmqctl prints in its default table output. */
class TermParser {
  private pos = 0;
  constructor(private readonly text: string) {}

  parseAll(): unknown {
    const value = this.value();
    this.ws();
    if (this.pos !== this.text.length) this.fail('trailing characters');
    return value;
  }

  private fail(what: string): never {
    throw new Error(`cannot parse client_properties at ${this.pos} (${what}): ${this.text}`);
  }

  private ws(): void {
    while (this.pos < this.text.length && /\s/.test(this.text[this.pos] ?? '')) this.pos++;
  }

  private value(): unknown {
    this.ws();
    const c = this.text[this.pos];
    if (c === '"') return this.string();
    if (c === '[') return this.seq('[', ']');
    if (c === '{') return { tuple: this.seq('{', '}') };
    if (c === '<' && this.text[this.pos + 1] === '<') return this.binary();
    if (c === "'") return this.quotedAtom();
    const m = /^-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?/.exec(this.text.slice(this.pos));
    if (m) {
      this.pos += m[0].length;
      return Number(m[0]);
    }
    const a = /^[a-z][A-Za-z0-9_@.]*/.exec(this.text.slice(this.pos));
    if (a) {
      this.pos += a[0].length;
      if (a[0] === 'true') return true;
      if (a[0] === 'false') return false;
      if (a[0] === 'undefined' || a[0] === 'void') return null;
      return { atom: a[0] };
    }
    return this.fail('unexpected character');
  }

  private seq(open: string, close: string): unknown[] {
    if (this.text[this.pos] !== open) this.fail(`expected ${open}`);
    this.pos++;
    const items: unknown[] = [];
    this.ws();
    if (this.text[this.pos] === close) {
      this.pos++;
      return items;
    }
    for (;;) {
      items.push(this.value());
      this.ws();
      const c = this.text[this.pos];
      this.pos++;
      if (c === close) return items;
      if (c !== ',') this.fail(`expected , or ${close}`);
    }
  }

  private binary(): unknown {
    this.pos += 2;
    this.ws();
    if (this.text[this.pos] === '"') {
      const s = this.string();
      this.ws();
      if (this.text.slice(this.pos, this.pos + 2) !== '>>') this.fail('expected >>');
      this.pos += 2;
      return s;
    }
    const end = this.text.indexOf('>>', this.pos);
    if (end < 0) this.fail('unterminated binary');
    const body = this.text.slice(this.pos, end).trim();
    this.pos = end + 2;
    const bytes = body === '' ? [] : body.split(',').map((b) => Number(b.trim()));
    return Buffer.from(bytes).toString('utf8');
  }

  private quotedAtom(): unknown {
    const s = this.string("'");
    return { atom: s };
  }

  string(quote = '"'): string {
    if (this.text[this.pos] !== quote) this.fail(`expected ${quote}`);
    this.pos++;
    let out = '';
    for (;;) {
      const c = this.text[this.pos];
      if (c === undefined) this.fail('unterminated string');
      this.pos++;
      if (c === quote) return out;
      if (c !== '\\') {
        out += c;
        continue;
      }
      const e = this.text[this.pos];
      if (e === undefined) this.fail('unterminated escape');
      this.pos++;
      const simple: Record<string, string> = {
        n: '\n',
        t: '\t',
        r: '\r',
        b: '\b',
        f: '\f',
        v: '\v',
        e: '\x1b',
        s: ' ',
        d: '\x7f',
      };
      const mapped = simple[e];
      if (mapped !== undefined) {
        out += mapped;
      } else if (e === 'x') {
        let hex: string;
        if (this.text[this.pos] === '{') {
          const end = this.text.indexOf('}', this.pos);
          if (end < 0) this.fail('bad \\x{} escape');
          hex = this.text.slice(this.pos + 1, end);
          this.pos = end + 1;
        } else {
          hex = this.text.slice(this.pos, this.pos + 2);
          this.pos += 2;
        }
        out += String.fromCodePoint(parseInt(hex, 16));
      } else if (/[0-7]/.test(e)) {
        let oct = e;
        while (oct.length < 3 && /[0-7]/.test(this.text[this.pos] ?? '')) oct += this.text[this.pos++];
        out += String.fromCodePoint(parseInt(oct, 8));
      } else if (e === 'u' && /^[0-9a-fA-F]{4}/.test(this.text.slice(this.pos))) {
        out += String.fromCharCode(parseInt(this.text.slice(this.pos, this.pos + 4), 16));
        this.pos += 4;
      } else {
        out += e;
      }
    }
  }
}

function isTuple(v: unknown): v is { tuple: unknown[] } {
  return typeof v === 'object' && v !== null && Array.isArray((v as { tuple?: unknown }).tuple);
}

/** Turns a parsed term into a plain JS value: [{k,v}...] becomes an object, char lists a string. */
function termToJs(v: unknown): unknown {
  if (Array.isArray(v)) {
    if (v.length > 0 && v.every((x) => isTuple(x) && x.tuple.length === 2 && typeof x.tuple[0] === 'string')) {
      const obj: Record<string, unknown> = {};
      for (const x of v as { tuple: [string, unknown] }[]) obj[x.tuple[0]] = termToJs(x.tuple[1]);
      return obj;
    }
    if (v.length > 0 && v.every((x) => typeof x === 'number' && Number.isInteger(x) && x >= 0 && x <= 0x10ffff)) {
      return String.fromCodePoint(...(v as number[]));
    }
    return v.map(termToJs);
  }
  if (isTuple(v)) return v.tuple.map(termToJs);
  if (typeof v === 'object' && v !== null && 'atom' in v) return String((v as { atom: unknown }).atom);
  return v;
}

/** Decodes rabbitmqctl's printed client_properties; never throws. */
export function parseClientProperties(text: string): {
  properties: Record<string, unknown>;
  connectionName: string | undefined;
} {
  try {
    const js = termToJs(new TermParser(text.trim()).parseAll());
    const properties = js && typeof js === 'object' && !Array.isArray(js) ? (js as Record<string, unknown>) : {};
    const name = properties['connection_name'];
    return { properties, connectionName: typeof name === 'string' ? name : undefined };
  } catch {
    // Fall back to picking out connection_name alone.
    const m = /\{"connection_name",("(?:[^"\\]|\\.)*")\}/.exec(text);
    let connectionName: string | undefined;
    if (m?.[1]) {
      try {
        connectionName = new TermParser(m[1]).string();
      } catch {
        connectionName = undefined;
      }
    }
    return { properties: {}, connectionName };
  }
}

/**
 * Every client connection of the broker (all vhosts), via
 * `rabbitmqctl list_connections pid name user vhost client_properties`.
 */
export async function listConnections(): Promise<BrokerConnectionInfo[]> {
  const out = await rabbitmqctl('list_connections', 'pid', 'name', 'user', 'vhost', 'client_properties', '--silent');
  const result: BrokerConnectionInfo[] = [];
  for (const line of out.split('\n')) {
    if (line.trim() === '') continue;
    // rabbitmqctl escapes tabs and newlines inside values, so splitting on tabs is safe.
    const [pid = '', name = '', user = '', vhost = '', ...rest] = line.split('\t');
    const clientProperties = rest.join('\t');
    const { properties, connectionName } = parseClientProperties(clientProperties);
    result.push({ pid, name, user, vhost, clientProperties, properties, connectionName });
  }
  return result;
}

/**
 * Force-closes (`rabbitmqctl close_connection`) every connection for which `match` is true; the
 * client sees connection.close 320 CONNECTION_FORCED with `reason`. Resolves with how many
 * connections were closed. Connections that vanish meanwhile are skipped.
 */
export async function closeConnections(match: (info: BrokerConnectionInfo) => boolean, reason = 'closed by test'): Promise<number> {
  const targets = (await listConnections()).filter((info) => match(info));
  const results = await Promise.allSettled(targets.map((t) => rabbitmqctl('close_connection', t.pid, reason)));
  return results.filter((r) => r.status === 'fulfilled').length;
}

/** Force-closes every connection whose client property `connection_name` equals `connectionName`. */
export function closeConnectionsOfClient(connectionName: string, reason = 'closed by test'): Promise<number> {
  return closeConnections((info) => info.connectionName === connectionName, reason);
}

/** Connections whose client property `connection_name` equals `connectionName`. */
export async function connectionsOfClient(connectionName: string): Promise<BrokerConnectionInfo[]> {
  return (await listConnections()).filter((info) => info.connectionName === connectionName);
}
