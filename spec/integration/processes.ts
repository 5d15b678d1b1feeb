/**
 * Server processes for the tests that stop, kill or multiply servers: samples/server.ts compiled
 * into a private directory (a fresh clone has no dist/, and other builds may be running), started
 * as children of the test process.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { uniqueName } from '../support/broker.js';
import { url } from './fixtures.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** A build of samples/server.ts and what it imports; `remove()` deletes it. */
export interface SampleBuild {
  serverScript: string;
  remove(): Promise<void>;
}

/** Compiled scripts: `script(source)` is the compiled file of a source file given to {@link buildScripts}. */
export interface ScriptBuild {
  script(source: string): string;
  remove(): Promise<void>;
}

/**
 * Compiles `sources` (paths from the repository root) and what they import with the build's
 * settings into node_modules/.cache, where the compiled files still find the project's
 * node_modules (a few seconds).
 */
export async function buildScripts(sources: string[]): Promise<ScriptBuild> {
  const dir = join(root, 'node_modules', '.cache', 'qam-spec', uniqueName('build'));
  await mkdir(dir, { recursive: true });
  const config = {
    extends: join(root, 'tsconfig.build.json'),
    compilerOptions: { outDir: join(dir, 'out'), rootDir: root, declaration: false, sourceMap: false },
    // Worker threads load thread-worker.js by file, never by import, so it is named here.
    files: [...sources.map((source) => join(root, source)), join(root, 'lib', 'server', 'thread-worker.js')],
    include: [],
  };
  await writeFile(join(dir, 'tsconfig.json'), JSON.stringify(config));
  // node_modules/ ends the search for a package.json, so the build says it is ESM itself.
  await writeFile(join(dir, 'package.json'), JSON.stringify({ type: 'module' }));
  await promisify(execFile)(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(dir, 'tsconfig.json')]);
  return {
    script: (source) => join(dir, 'out', source.replace(/\.ts$/, '.js')),
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}

/** Compiles samples/server.ts (and samples/cpu.ts, which its worker threads load). */
export async function buildSampleServer(): Promise<SampleBuild> {
  const build = await buildScripts(['samples/server.ts', 'samples/cpu.ts']);
  return { serverScript: build.script('samples/server.ts'), remove: () => build.remove() };
}

/** How a process ended. */
export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** One sample server process. */
export class ServerProcess {
  readonly pid: number;
  /** Resolves when the process has ended. */
  readonly exited: Promise<Exit>;
  readonly #child: ChildProcess;
  readonly #output: string[] = [];

  private constructor(child: ChildProcess) {
    if (child.pid === undefined) throw new Error('the server process did not start');
    this.#child = child;
    this.pid = child.pid;
    this.exited = once(child, 'exit').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null }));
  }

  /** Starts `node <serverScript> <serverId>` and resolves once it prints READY. */
  static async start(build: SampleBuild, serverId: string, env: Record<string, string> = {}): Promise<ServerProcess> {
    const child = spawn(process.execPath, [build.serverScript, serverId], {
      env: { ...process.env, QAM_URL: url, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const server = new ServerProcess(child);
    const lines = createInterface({ input: child.stdout! });
    const ready = new Promise<void>((resolve, reject) => {
      lines.on('line', (line) => {
        server.#output.push(line);
        if (line === `READY ${serverId}`) resolve();
      });
      void server.exited.then((exit) => reject(new Error(`server process ended before READY (${JSON.stringify(exit)}): ${server.output}`)));
    });
    child.stderr!.on('data', (chunk: Buffer) => server.#output.push(chunk.toString()));
    await ready;
    return server;
  }

  /** What the process printed so far, stdout and stderr. */
  get output(): string {
    return this.#output.join('\n');
  }

  signal(signal: NodeJS.Signals): void {
    this.#child.kill(signal);
  }

  /** Kills the process unless it has ended; for clean-up after a failed test. */
  async stop(): Promise<void> {
    if (this.#child.exitCode === null && this.#child.signalCode === null) this.#child.kill('SIGKILL');
    await this.exited;
  }
}
