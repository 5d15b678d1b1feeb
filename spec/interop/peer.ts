/**
 * Drives spec/interop/qam_peer.py, the independent Python QAM peer (see README.md beside it): one
 * child process per peer, JSON lines in on stdin, JSON lines out on stdout.
 */
import { execFile, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const script = fileURLToPath(new URL('./qam_peer.py', import.meta.url));
const python = '/usr/bin/python3';

/** One line the peer printed (the fields depend on the line's kind; see README.md). */
export interface PeerLine {
  seq?: number | null;
  ok?: boolean;
  result?: unknown;
  internal_exception?: number;
  timeout?: boolean;
  sent?: boolean;
  unmatched?: boolean;
  error?: string;
  malformed_reply?: string;
  reply?: Record<string, unknown>;
  properties?: Record<string, unknown>;
  problems?: string[];
}

export class QamPeer {
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #lines: PeerLine[] = [];
  readonly #waiters = new Set<() => void>();
  readonly #exited: Promise<number | null>;
  #stderr = '';

  private constructor(child: ChildProcessWithoutNullStreams) {
    this.#child = child;
    child.stderr.on('data', (chunk: Buffer) => {
      this.#stderr += chunk.toString('utf8');
    });
    this.#exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  }

  /** Starts the peer (`server` or `proxy` mode) and resolves once it printed READY. */
  static async start(args: string[], url: string): Promise<QamPeer> {
    const child = spawn(python, [script, '--url', url, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    const peer = new QamPeer(child);
    await new Promise<void>((resolve, reject) => {
      const lines = createInterface({ input: child.stdout });
      const failed = (code: number | null): void => reject(new Error(`qam_peer exited with ${String(code)} before READY: ${peer.#stderr}`));
      child.once('exit', failed);
      lines.on('line', (line) => {
        if (line === 'READY') {
          child.off('exit', failed);
          resolve();
          return;
        }
        peer.#lines.push(JSON.parse(line) as PeerLine);
        for (const wake of peer.#waiters) wake();
      });
    });
    return peer;
  }

  /** Everything the peer wrote to stderr so far (its log). */
  get log(): string {
    return this.#stderr;
  }

  /** Writes one input line (proxy mode). */
  send(line: object): void {
    this.#child.stdin.write(`${JSON.stringify(line)}\n`);
  }

  /** The first output line `match` accepts, waiting up to `timeoutMs` for it. */
  async next(match: (line: PeerLine) => boolean, timeoutMs = 10_000): Promise<PeerLine> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.#lines.find(match);
      if (found !== undefined) return found;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`qam_peer printed no matching line within ${timeoutMs} ms; log:\n${this.#stderr}`);
      await new Promise<void>((resolve) => {
        const wake = (): void => {
          clearTimeout(timer);
          this.#waiters.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, left);
        this.#waiters.add(wake);
      });
    }
  }

  /** The output line of call `seq`. */
  result(seq: number, timeoutMs?: number): Promise<PeerLine> {
    return this.next((line) => line.seq === seq && line.sent !== true, timeoutMs);
  }

  /** The lines printed so far. */
  lines(): readonly PeerLine[] {
    return this.#lines;
  }

  /** Closes stdin (the peer finishes and exits) and resolves with its exit code. */
  async stop(): Promise<number | null> {
    this.#child.stdin.end();
    const timer = setTimeout(() => this.#child.kill('SIGTERM'), 10_000);
    const code = await this.#exited;
    clearTimeout(timer);
    return code;
  }
}

/** Runs the peer's `cleanup` mode: deletes the server's durable QAM queue and exchanges and the clients' queues. */
export function peerCleanup(url: string, serverId: string, clientIds: string[] = []): Promise<void> {
  const args = [script, '--url', url, 'cleanup', '--server-id', serverId, ...clientIds.flatMap((id) => ['--client-id', id])];
  return new Promise((resolve, reject) => {
    execFile(python, args, { timeout: 30_000 }, (error, _stdout, stderr) => {
      if (error) reject(new Error(`qam_peer cleanup failed: ${stderr}`));
      else resolve();
    });
  });
}
