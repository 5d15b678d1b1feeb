import { hostname, userInfo } from 'node:os';
import { basename } from 'node:path';

/** The library's name and version, as fingerprints carry them. */
export const libraryName = 'qam';
export const libraryVersion = '0.1.0';

/**
 * Who sent a message, as Postage describes a component: its name and type (options), its process
 * id, host, OS user and RabbitMQ virtual host, and the library that sent it. A fingerprint that
 * arrives is what its sender claims, never verified identity (for the verified AMQP user, see the
 * broker's `user_id` check).
 */
export interface Fingerprint {
  /** The component's name. @default the main script's file name (or the process title) */
  readonly name: string | null;
  /** A plain categorization of the component. @default null */
  readonly type: string | null;
  readonly pid: number;
  readonly host: string;
  /** The OS user running the process. */
  readonly user: string;
  /** The RabbitMQ virtual host the connection uses. */
  readonly vhost: string;
  readonly library: string;
  readonly version: string;
}

/** The options that name a component; the other fields come from the process and the connection. */
export interface FingerprintOptions {
  name?: string;
  type?: string;
}

function osUser(): string {
  try {
    return userInfo().username;
  } catch {
    // No passwd entry for this uid (some containers).
    return process.env['USER'] ?? String(process.getuid?.() ?? 'unknown');
  }
}

/** This process's fingerprint on a connection to `vhost`. @internal */
export function processFingerprint(options: FingerprintOptions, vhost: string): Fingerprint {
  const script = process.argv[1];
  return Object.freeze({
    name: options.name ?? (script === undefined ? process.title : basename(script)),
    type: options.type ?? null,
    pid: process.pid,
    host: hostname(),
    user: osUser(),
    vhost,
    library: libraryName,
    version: libraryVersion,
  });
}

/** Longest fingerprint header read: a claim, so a hostile one cannot cost more than this. */
const maxEncodedBytes = 4096;

const text = (value: unknown): string | null => (typeof value === 'string' ? value.slice(0, 256) : null);

/** Reads a fingerprint as it arrived (JSON text, or a table), keeping only its known fields; undefined when absent or unreadable. @internal */
export function readFingerprint(value: unknown): Fingerprint | undefined {
  let record: unknown = value;
  if (Buffer.isBuffer(value)) record = value.toString('utf8');
  if (typeof record === 'string') {
    if (record.length > maxEncodedBytes) return undefined;
    try {
      record = JSON.parse(record);
    } catch {
      return undefined;
    }
  }
  if (typeof record !== 'object' || record === null || Array.isArray(record)) return undefined;
  const fields = record as Record<string, unknown>;
  const own = (key: string): unknown => (Object.prototype.hasOwnProperty.call(fields, key) ? fields[key] : undefined);
  const pid = own('pid');
  return Object.freeze({
    name: text(own('name')),
    type: text(own('type')),
    // Postage writes the pid as a string.
    pid: typeof pid === 'number' && Number.isSafeInteger(pid) ? pid : typeof pid === 'string' && /^\d{1,15}$/.test(pid) ? Number(pid) : 0,
    host: text(own('host')) ?? '',
    user: text(own('user')) ?? '',
    vhost: text(own('vhost')) ?? '',
    library: text(own('library')) ?? '',
    version: text(own('version')) ?? '',
  });
}
