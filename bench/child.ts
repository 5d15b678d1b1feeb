/** Parent side of a bench child process: fork it, wait for its messages with deadlines, reap it. */

import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ChildMessage, ParentMessage } from './ipc.js';

type MessageOf<T extends ChildMessage['type']> = Extract<ChildMessage, { type: T }>;

export class BenchChild {
  readonly #process: ChildProcess;
  readonly #inbox: ChildMessage[] = [];
  #wake: (() => void) | undefined;
  #exitCode: number | null | undefined;
  readonly #exited: Promise<void>;

  /** Forks `dist/bench/<script>` (a sibling of this module) with its config as argv[2]. */
  constructor(script: string, config: object, execArgv: string[] = []) {
    const path = fileURLToPath(new URL(script, import.meta.url));
    this.#process = fork(path, [JSON.stringify(config)], { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    // A child that exits while a message is on its way makes send() fail with EPIPE; reap() copes.
    this.#process.on('error', (error) => console.error(`bench: child ${this.#process.pid}: ${error.message}`));
    this.#process.on('message', (message: ChildMessage) => {
      this.#inbox.push(message);
      this.#wake?.();
    });
    this.#exited = new Promise((resolve) => {
      this.#process.once('exit', (code, signal) => {
        this.#exitCode = code ?? (signal === null ? null : -1);
        this.#wake?.();
        resolve();
      });
    });
  }

  /** The next message of this type; rejects on an 'error' message, an exit, or the deadline. */
  async next<T extends ChildMessage['type']>(type: T, timeoutMs: number): Promise<MessageOf<T>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const message = this.#inbox.shift();
      if (message?.type === 'error') throw new Error(message.message);
      if (message?.type === type) return message as MessageOf<T>;
      if (message !== undefined) continue;
      if (this.#exitCode !== undefined) throw new Error(`child exited (code ${this.#exitCode}) before '${type}'`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no '${type}' from child within ${Math.round(timeoutMs / 1000)} s`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = undefined;
    }
  }

  send(message: ParentMessage): void {
    if (this.#process.connected) this.#process.send(message, undefined, {}, () => undefined);
  }

  /** Waits for the child to exit by itself; kills this child (by its pid) after the grace period. */
  async reap(graceMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(resolve, graceMs, 'late')));
    const outcome = await Promise.race([this.#exited, late]);
    clearTimeout(timer);
    if (outcome === 'late') {
      console.error(`bench: child ${this.#process.pid} did not exit within ${graceMs} ms; killing it`);
      this.#process.kill('SIGKILL');
      await this.#exited;
    }
  }
}
