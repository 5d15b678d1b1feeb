import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Piscina } from 'piscina';
import {
  QAMClosedException,
  QAMException,
  QAMSerializationException,
  QAMTimeoutException,
  describeError,
  serverRaised,
} from '../errors.js';
import type { Logger } from '../logger.js';
import type { RemoteFunction } from './dispatch.js';

/** The exports of a module type `M` a server can run on its worker threads: its functions. */
export type WorkerExport<M> = { [K in keyof M & string]: M[K] extends RemoteFunction ? K : never }[keyof M & string];

/** One call as thread-worker.js receives it. @internal */
export interface ThreadTask {
  /** The `file:` URL of the registered module. */
  href: string;
  exportName: string;
  params: unknown[];
}

/** An error as thread-worker.js hands it back: the fields of an error reply. @internal */
export interface ThreadError {
  name: string;
  message: string;
  code?: string;
  args?: unknown[];
  stack?: string;
  cause?: ThreadError;
}

/** How a call ended on its thread: a result, the error it threw, or a result no thread can pass back. @internal */
export type ThreadOutcome = { result: unknown } | { error: ThreadError } | { unsendable: string };

const entry = fileURLToPath(new URL('./thread-worker.js', import.meta.url));

/**
 * The `file:` URL of a worker module given as a path (relative to the working directory) or a
 * `file:` URL. Throws a TypeError when there is no such file, so a typo fails at registration
 * rather than on every call.
 * @internal
 */
export function workerModuleHref(module: string | URL): string {
  const url = typeof module === 'string' && !/^file:/i.test(module) ? pathToFileURL(resolve(module)) : new URL(String(module));
  if (url.protocol !== 'file:') throw new TypeError(`A worker module must be a file path or a file: URL, got ${url.href}`);
  if (!existsSync(url)) throw new TypeError(`Worker module ${url.href} does not exist`);
  return url.href;
}

/**
 * A server's worker threads, on piscina: started at the first call, `size` threads for the
 * server's lifetime. A thread that dies (process.exit, an uncaught error, out of memory) fails only
 * the call it ran, with WORKER_CRASHED, and piscina starts another in its place. A call still
 * running at its caller's deadline has its thread stopped: nobody waits for its result, and a
 * runaway function would otherwise hold the thread for good.
 * @internal
 */
export class ThreadPool {
  readonly size: number;
  readonly #label: string;
  readonly #logger: Logger;
  #piscina: Promise<Piscina<ThreadTask, ThreadOutcome>> | undefined;
  #closed = false;

  constructor(size: number, label: string, logger: Logger) {
    if (!Number.isInteger(size) || size < 1) throw new TypeError(`threads must be a positive integer, got ${size}`);
    this.size = size;
    this.#label = label;
    this.#logger = logger;
  }

  /** Runs `task` on a thread; resolves with its result, rejects with what it threw or why it failed. */
  async run(task: ThreadTask, deadline: number | undefined): Promise<unknown> {
    const piscina = await this.#start(task);
    // Checked again after the wait: a pool destroyed by close() would start new threads for a late call.
    if (this.#closed) throw this.#closedError(task);
    const stop = deadline === undefined ? undefined : abortAt(deadline);
    let outcome: ThreadOutcome;
    try {
      outcome = await piscina.run(task, { signal: stop?.signal ?? null });
    } catch (error) {
      throw this.#failure(task, error, stop?.signal.aborted === true);
    } finally {
      stop?.clear();
    }
    if ('result' in outcome) return outcome.result;
    if ('error' in outcome) throw rebuild(outcome.error);
    throw serverRaised(
      new QAMSerializationException(`The result of ${task.exportName} cannot leave its worker thread: ${outcome.unsendable}`),
    );
  }

  /** Stops every thread. Calls still running fail with QAMClosedException. */
  async close(): Promise<void> {
    this.#closed = true;
    const starting = this.#piscina;
    this.#piscina = undefined;
    await (await starting?.catch(() => undefined))?.destroy();
  }

  /** Piscina is imported at the first call: servers without worker functions, and proxies, never load it. */
  #start(task: ThreadTask): Promise<Piscina<ThreadTask, ThreadOutcome>> {
    if (this.#closed) return Promise.reject(this.#closedError(task));
    this.#piscina ??= import('piscina').then(({ Piscina }) => {
      // Atomics off: an idle thread then waits in its event loop, not in Atomics.wait, so timers and
      // promises a module leaves behind run (and fail) between calls rather than inside the next one.
      const piscina = new Piscina<ThreadTask, ThreadOutcome>({
        filename: entry,
        name: 'call',
        minThreads: this.size,
        maxThreads: this.size,
        atomics: 'disabled',
      });
      // Piscina emits 'error' for a thread that fails with no call on it; unheard, it would end the process.
      piscina.on('error', (error: unknown) => this.#logger.error(`${this.#label}: a worker thread failed: ${describeError(error)}`));
      return piscina;
    });
    return this.#piscina;
  }

  #closedError(task: ThreadTask): QAMClosedException {
    return serverRaised(new QAMClosedException(`${this.#label} is closed; ${task.exportName} cannot run`));
  }

  #failure(task: ThreadTask, error: unknown, timedOut: boolean): Error {
    if (timedOut)
      return serverRaised(new QAMTimeoutException(`${task.exportName} ran past its caller's deadline; its worker thread was stopped`));
    if (this.#closed) return serverRaised(new QAMClosedException(`${this.#label} closed while ${task.exportName} ran on a worker thread`));
    this.#logger.error(
      `${this.#label}: the worker thread running ${task.exportName} died (${describeError(error)}); a new thread replaces it`,
    );
    return serverRaised(
      new QAMException(`The worker thread running ${task.exportName} died: ${describeError(error)}`, {
        code: 'WORKER_CRASHED',
        cause: error,
      }),
    );
  }
}

/** A signal that aborts at `deadline` (epoch ms), and the way to cancel it once the call ends. */
function abortAt(deadline: number): { signal: AbortSignal; clear: () => void } {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), Math.max(0, deadline - Date.now()));
  return { signal: controller.signal, clear: () => clearTimeout(timer) };
}

/** The error a thread reported, with its name, message, code, args, stack and cause, for the error reply. */
function rebuild(payload: ThreadError): Error {
  const error: Error & { code?: string; args?: unknown[] } = new Error(
    payload.message,
    payload.cause === undefined ? undefined : { cause: rebuild(payload.cause) },
  );
  error.name = payload.name;
  error.stack = payload.stack ?? `${payload.name}: ${payload.message}`;
  if (payload.code !== undefined) error.code = payload.code;
  if (payload.args !== undefined) error.args = payload.args;
  return error;
}
