#!/usr/bin/env node
/**
 * The `qam` command: serve a module's functions, call a server, list its methods, ping it, bench
 * it. Exit codes (see {@link exitCodes}) and the first line of an error (`qam: <CODE>: <message>`
 * on stderr) are for scripts.
 * @internal
 */
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { isInstance, QAMException, QAMRemoteException } from '../errors.js';
import { libraryVersion } from '../fingerprint.js';
import { debugging, type Logger } from '../logger.js';
import { QAMProxy, type QAMProxyOptions } from '../proxy/proxy.js';
import type { QAMProxy as Proxy } from '../proxy/types.js';
import { QAMServer, type QAMServerOptions } from '../server/server.js';
import type { ServerDescription } from '../server/dispatch.js';
import { bench, formatBench, ProgressBar } from './bench.js';
import { importModule, registerExports } from './serve.js';

/** What the process exits with. */
export const exitCodes = {
  /** The command did what it was asked. */
  ok: 0,
  /** The server answered with an error (the function threw, no such method, invalid params, …), or anything else failed. */
  error: 1,
  /** The command line is wrong: unknown command or option, a missing or malformed argument. */
  usage: 2,
  /** No answer: the broker cannot be reached or refused, nothing serves the id, or the call timed out. */
  unreachable: 3,
} as const;

/** Error codes meaning the call got no answer from a server. */
const noAnswer: ReadonlySet<string> = new Set([
  'CONNECT_FAILED',
  'TLS_FAILED',
  'CONNECTION_LOST',
  'TIMEOUT',
  'NO_ROUTE',
  'ACCESS_REFUSED',
  'PUBLISH_FAILED',
  'CLOSED',
]);

class UsageError extends Error {}

const help = `Usage: qam <command> [options]

Commands:
  serve <module> --server-id ID   serve the module's exported functions and class instances
        [--workers N] [--protocol native|qam]... [--no-introspection] [--drain-timeout S]
  call <server-id> <method> [json-arg...] [--timeout S] [--protocol native|qam]
                                  call a method; prints its result as JSON
  methods <server-id> [--json]    list the methods a server serves
  ping <server-id> [--count N]    measure round trips to a server
  bench <server-id> <method> [json-arg...] [--calls N] [--in-flight K] [--json]
                                  call a method N times, K at once; prints latency and calls/s

Options of every command:
  --url URL        the broker (default: QAM_URL, or QAM_HOST, QAM_PORT, QAM_USER, QAM_PASSWORD,
                   QAM_VHOST, or amqp://guest:guest@localhost:5672/)
  --timeout S      seconds a call waits for its answer (default 30)
  -h, --help       this help;  --version  the version

Arguments are JSON: strings need quotes ('"text"'); put -- before an argument that starts with -.
Exit codes: 0 ok, 1 the server answered with an error (or another failure), 2 usage,
3 no answer (broker unreachable, nothing serves the id, timeout). Errors go to stderr as
'qam: <CODE>: <message>'.
`;

type Values = Record<string, string | boolean | (string | boolean)[] | undefined>;

interface Command {
  readonly options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean }>;
  /** The positionals it needs before any optional ones. */
  readonly positionals: readonly string[];
  /** True when more positionals (JSON arguments) may follow. */
  readonly rest?: boolean;
  run(values: Values, positionals: string[]): Promise<number>;
}

const commonOptions = {
  url: { type: 'string' },
  timeout: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Writes to stderr: the CLI's stdout carries results only. */
function stderrLogger(warnings: boolean): Logger {
  const write = (message: string): void => void process.stderr.write(`qam: ${message}\n`);
  const ignore = (): void => undefined;
  return {
    debug: debugging ? write : ignore,
    info: debugging ? write : ignore,
    warn: warnings || debugging ? write : ignore,
    error: warnings || debugging ? write : ignore,
  };
}

function stringOption(values: Values, name: string): string | undefined {
  const value = values[name];
  return typeof value === 'string' ? value : undefined;
}

function numberOption(values: Values, name: string, integer: boolean, fallback: number): number;
function numberOption(values: Values, name: string, integer: boolean): number | undefined;
function numberOption(values: Values, name: string, integer: boolean, fallback?: number): number | undefined {
  const text = stringOption(values, name);
  if (text === undefined) return fallback;
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value) || value <= 0 || (integer && !Number.isSafeInteger(value))) {
    throw new UsageError(`--${name} must be a positive ${integer ? 'integer' : 'number'}, got '${text}'`);
  }
  return value;
}

function jsonArguments(texts: readonly string[]): unknown[] {
  return texts.map((text, index) => {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new UsageError(`argument ${index + 1} is not JSON: ${text} (a string needs quotes: '"${text}"')`);
    }
  });
}

function connection(values: Values): { url?: string } {
  const url = stringOption(values, 'url');
  return url === undefined ? {} : { url };
}

function protocolOf(values: Values): 'native' | 'qam' | undefined {
  const protocol = stringOption(values, 'protocol');
  if (protocol === undefined || protocol === 'native' || protocol === 'qam') return protocol;
  throw new UsageError(`--protocol must be native or qam, got '${protocol}'`);
}

function proxyFor(values: Values, serverId: string): Proxy {
  const options: QAMProxyOptions = { serverId, ...connection(values), logger: stderrLogger(false) };
  const timeout = numberOption(values, 'timeout', false);
  if (timeout !== undefined) options.timeout = timeout;
  const protocol = protocolOf(values);
  if (protocol !== undefined) options.protocol = protocol;
  return new QAMProxy(options);
}

/** Runs `use` with a proxy, closing it after. */
async function withProxy(values: Values, serverId: string, use: (proxy: Proxy) => Promise<number>): Promise<number> {
  const proxy = proxyFor(values, serverId);
  try {
    return await use(proxy);
  } finally {
    await proxy.close();
  }
}

function print(text: string): void {
  process.stdout.write(`${text}\n`);
}

const serve: Command = {
  options: {
    'server-id': { type: 'string' },
    workers: { type: 'string' },
    protocol: { type: 'string', multiple: true },
    'no-introspection': { type: 'boolean' },
    'drain-timeout': { type: 'string' },
  },
  positionals: ['module'],
  async run(values, [path = '']) {
    const serverId = stringOption(values, 'server-id');
    if (serverId === undefined) throw new UsageError('serve needs --server-id');
    const protocols = ((values['protocol'] as string[] | undefined) ?? []).map((protocol) => protocolOf({ protocol }) ?? 'native');
    const options: QAMServerOptions = { serverId, ...connection(values), logger: stderrLogger(true) };
    const workers = numberOption(values, 'workers', true);
    if (workers !== undefined) options.workers = workers;
    if (protocols.length > 0) options.protocol = protocols;
    if (values['no-introspection'] === true) options.introspection = false;
    const drainTimeout = numberOption(values, 'drain-timeout', false);
    if (drainTimeout !== undefined) options.drainTimeout = drainTimeout;
    if (values['timeout'] !== undefined) throw new UsageError('--timeout applies to calls, not to serve');
    const exports = await importModule(path);
    const server = new QAMServer(options);
    const { registered, skipped } = registerExports(server, exports);
    for (const what of skipped) process.stderr.write(`qam: skipped export ${what}\n`);
    if (registered.length === 0) throw new UsageError(`${path} exports no function or class instance to serve`);
    await server.serve();
    print(`serving ${server.serverId} as ${server.instanceId}: ${registered.join(', ')}`);
    const signal = await new Promise<NodeJS.Signals>((resolve) => {
      process.once('SIGTERM', resolve).once('SIGINT', resolve);
    });
    // A second signal ends the process at once.
    const now = (): never => process.exit(128 + (signal === 'SIGINT' ? 2 : 15));
    process.once('SIGTERM', now).once('SIGINT', now);
    process.stderr.write(`qam: ${signal}: draining ${server.serverId} (${server.stats().active} calls running)\n`);
    await server.close();
    print(`closed ${server.serverId}`);
    // The module may hold handles of its own (timers, sockets): the server's end is the process's.
    process.exit(exitCodes.ok);
  },
};

const call: Command = {
  options: { protocol: { type: 'string' } },
  positionals: ['server-id', 'method'],
  rest: true,
  run: (values, [serverId = '', method = '', ...rest]) => {
    const params = jsonArguments(rest);
    return withProxy(values, serverId, async (proxy) => {
      const result = await proxy.invoke(method, ...params);
      print(JSON.stringify(result ?? null, null, process.stdout.isTTY ? 2 : undefined));
      return exitCodes.ok;
    });
  },
};

/** The answer of a server that predates introspection or turned it off. */
function noIntrospection(error: unknown): boolean {
  return isInstance(error, QAMException) && (error.code === 'METHOD_NOT_FOUND' || error.code === 'BAD_MESSAGE');
}

function methodTable(description: ServerDescription): string {
  const rows = description.methods.map((method) => [
    method.name,
    method.params === undefined ? '?' : String(method.params),
    method.description ?? '',
  ]);
  const header = ['METHOD', 'PARAMS', 'DESCRIPTION'];
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]?.length ?? 0)));
  return [header, ...rows]
    .map((row) =>
      row
        .map((cell, column) => cell.padEnd(column < 2 ? (widths[column] ?? 0) : 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

const methods: Command = {
  options: { json: { type: 'boolean' } },
  positionals: ['server-id'],
  run: (values, [serverId = '']) =>
    withProxy(values, serverId, async (proxy) => {
      let description: ServerDescription;
      try {
        description = await proxy.getRemoteMethods();
      } catch (error) {
        if (!noIntrospection(error)) throw error;
        throw new QAMException(
          `server ${serverId} does not answer introspection (it predates it, or its option introspection is false): ${(error as Error).message}`,
          { code: (error as QAMException).code },
        );
      }
      print(values['json'] === true ? JSON.stringify(description, null, process.stdout.isTTY ? 2 : undefined) : methodTable(description));
      return exitCodes.ok;
    }),
};

const ping: Command = {
  options: { count: { type: 'string' } },
  positionals: ['server-id'],
  run: (values, [serverId = '']) => {
    const count = numberOption(values, 'count', true, 3);
    return withProxy(values, serverId, async (proxy) => {
      const times: number[] = [];
      for (let sent = 1; sent <= count; sent++) {
        const at = performance.now();
        let from: string;
        try {
          from = (await proxy.getRemoteMethods()).instanceId;
        } catch (error) {
          // A server without introspection still answered: the round trip is as long.
          if (!noIntrospection(error)) throw error;
          from = `${serverId} (without introspection)`;
        }
        const ms = performance.now() - at;
        times.push(ms);
        print(`reply ${sent} from ${from}: ${ms.toFixed(2)} ms`);
      }
      const average = times.reduce((sum, ms) => sum + ms, 0) / times.length;
      print(
        `${count} sent, ${times.length} answered: min ${Math.min(...times).toFixed(2)}, avg ${average.toFixed(2)}, max ${Math.max(...times).toFixed(2)} ms`,
      );
      return exitCodes.ok;
    });
  },
};

const benchCommand: Command = {
  options: { calls: { type: 'string' }, 'in-flight': { type: 'string' }, json: { type: 'boolean' } },
  positionals: ['server-id', 'method'],
  rest: true,
  run: (values, [serverId = '', method = '', ...rest]) => {
    const params = jsonArguments(rest);
    const calls = numberOption(values, 'calls', true, 1000);
    const inFlight = numberOption(values, 'in-flight', true, 10);
    return withProxy(values, serverId, async (proxy) => {
      const once = (): Promise<unknown> => proxy.invoke(method, ...params);
      // One call first, not counted: it opens the channel, and a call that cannot work stops here.
      await once();
      const bar = process.stderr.isTTY ? new ProgressBar(process.stderr, calls) : undefined;
      const result = await bench(once, calls, inFlight, (done) => bar?.update(done));
      bar?.end();
      print(values['json'] === true ? JSON.stringify({ method, ...result }) : formatBench(method, result));
      const codes = Object.keys(result.errors);
      if (codes.length === 0) return exitCodes.ok;
      return codes.some((code) => noAnswer.has(code)) ? exitCodes.unreachable : exitCodes.error;
    });
  },
};

const commands: Readonly<Record<string, Command>> = { serve, call, methods, ping, bench: benchCommand };

/** Runs the command line `args` (without `node` and the script); resolves with the exit code. */
async function main(args: readonly string[]): Promise<number> {
  const [name, ...rest] = args;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    (name === undefined ? process.stderr : process.stdout).write(help);
    return name === undefined ? exitCodes.usage : exitCodes.ok;
  }
  if (name === '--version') {
    print(libraryVersion);
    return exitCodes.ok;
  }
  const command = Object.hasOwn(commands, name) ? commands[name] : undefined;
  if (command === undefined) throw new UsageError(`unknown command '${name}'`);
  let parsed;
  try {
    parsed = parseArgs({ args: [...rest], options: { ...commonOptions, ...command.options }, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const { values, positionals } = parsed;
  if (values['help'] === true) {
    print(help);
    return exitCodes.ok;
  }
  if (positionals.length < command.positionals.length) {
    throw new UsageError(`${name} needs ${command.positionals.map((positional) => `<${positional}>`).join(' ')}`);
  }
  if (command.rest !== true && positionals.length > command.positionals.length) {
    throw new UsageError(`${name} takes ${command.positionals.length} argument(s), got ${positionals.length}`);
  }
  return command.run(values, positionals);
}

/** The exit code and the stderr line for an error. */
function report(error: unknown): { code: number; line: string } {
  if (error instanceof UsageError || error instanceof TypeError) {
    return { code: exitCodes.usage, line: `qam: USAGE: ${error.message} (see qam --help)` };
  }
  if (isInstance(error, QAMException)) {
    const remote = isInstance(error, QAMRemoteException)
      ? ` (${error.remoteName}${error.remoteCode === undefined ? '' : `, code ${error.remoteCode}`})`
      : '';
    return {
      code: noAnswer.has(error.code) ? exitCodes.unreachable : exitCodes.error,
      line: `qam: ${error.code}: ${error.message}${remote}`,
    };
  }
  return { code: exitCodes.error, line: `qam: ERROR: ${error instanceof Error ? error.message : String(error)}` };
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    const { code, line } = report(error);
    process.stderr.write(`${line}\n`);
    process.exitCode = code;
  },
);
