/**
 * The `qam` command line, built and run as child processes against RabbitMQ: `qam serve` serving
 * a module, and `call`, `methods`, `ping`, `bench` against it, with their output and exit codes.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { QAMProxy, silentLogger } from '../lib/index.js';
import { qamServerNames, serverNames } from '../lib/protocols/naming.js';
import { uniqueName } from './support/broker.js';
import { Servers, rawChannel, url } from './integration/fixtures.js';
import { buildScripts, type ScriptBuild } from './integration/processes.js';

const service = fileURLToPath(new URL('fixtures/cli-service.mjs', import.meta.url));

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

describe('the qam command line', () => {
  let build: ScriptBuild;
  let cli: string;
  const servers = new Servers();
  const served: string[] = [];
  const children: ChildProcess[] = [];

  /** Runs `qam args…` to its end. */
  const qam = (args: string[], env: Record<string, string> = {}): Promise<Ran> =>
    new Promise((resolve) => {
      execFile(
        process.execPath,
        [cli, ...args],
        { env: { ...process.env, QAM_URL: url, ...env }, timeout: 60_000 },
        (error, stdout, stderr) => {
          const code = error === null ? 0 : typeof error.code === 'number' ? error.code : null;
          resolve({ code, stdout, stderr });
        },
      );
    });

  /** Starts `qam serve` of the fixture module and resolves with the process and its first line once it serves. */
  const serve = async (serverId: string, ...more: string[]): Promise<{ child: ChildProcess; line: string; output: () => string }> => {
    served.push(serverId);
    const child = spawn(process.execPath, [cli, 'serve', service, '--server-id', serverId, ...more], {
      env: { ...process.env, QAM_URL: url },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let output = '';
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const lines = createInterface({ input: child.stdout! });
    const line = await new Promise<string>((resolve, reject) => {
      lines.on('line', (text) => {
        output += `${text}\n`;
        if (text.startsWith('serving ')) resolve(text);
      });
      child.once('exit', (code) => reject(new Error(`qam serve ended (${String(code)}) before serving: ${output}`)));
    });
    return { child, line, output: () => output };
  };

  beforeAll(async () => {
    build = await buildScripts(['lib/cli/main.ts']);
    cli = build.script('lib/cli/main.ts');
  }, 120_000);

  afterAll(async () => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await servers.closeAll();
    const channel = await rawChannel();
    for (const serverId of served) {
      const native = serverNames(serverId);
      const qam = qamServerNames(serverId);
      await channel.deleteQueue(native.queue);
      await channel.deleteExchange(native.exchange);
      await channel.deleteQueue(qam.queue);
      await channel.deleteExchange(qam.exchange);
      await channel.deleteExchange(qam.replyExchange);
    }
    await build?.remove();
  }, 60_000);

  it('serves a module; call, methods, ping and bench answer with their output and exit codes; SIGTERM drains and exits 0', async () => {
    const serverId = uniqueName('cli');
    const { child, line, output } = await serve(serverId, '--protocol', 'native', '--protocol', 'qam');
    const exited = once(child, 'exit');
    expect(line).toMatch(new RegExp(`^serving ${serverId} as ${serverId}\\.[0-9a-f]{16}: add, calc, fail, sleep$`));
    expect(output()).toContain('qam: skipped export version (neither a function nor a class instance)');

    expect(await qam(['call', serverId, 'add', '2', '3'])).toEqual({ code: 0, stdout: '5\n', stderr: '' });
    expect(await qam(['call', serverId, 'calc.mul', '--', '-2', '3'])).toEqual({ code: 0, stdout: '-6\n', stderr: '' });
    expect(await qam(['call', serverId, 'add', '1', '2', '--protocol', 'qam'])).toEqual({ code: 0, stdout: '3\n', stderr: '' });
    expect(await qam(['call', serverId, 'fail', '"boom"'])).toEqual({
      code: 1,
      stdout: '',
      stderr: 'qam: REMOTE_ERROR: boom (RangeError, code E_FAIL)\n',
    });
    expect(await qam(['call', serverId, 'nosuch'])).toEqual({
      code: 1,
      stdout: '',
      stderr: `qam: METHOD_NOT_FOUND: Method 'nosuch' is not registered on server ${serverId}\n`,
    });
    expect(await qam(['call', serverId, 'sleep', '2', '--timeout', '0.2'])).toEqual({
      code: 3,
      stdout: '',
      stderr: 'qam: TIMEOUT: Call to sleep got no reply within 0.2 s\n',
    });

    const methods = await qam(['methods', serverId]);
    expect(methods).toEqual({
      code: 0,
      stdout: ['METHOD    PARAMS  DESCRIPTION', 'add       2       adds two numbers', 'calc.mul  2', 'fail      1', 'sleep     1', ''].join(
        '\n',
      ),
      stderr: '',
    });
    const json = await qam(['methods', serverId, '--json']);
    expect(JSON.parse(json.stdout)).toEqual({
      serverId,
      instanceId: expect.stringMatching(new RegExp(`^${serverId}\\.`)),
      methods: [
        { name: 'add', params: 2, description: 'adds two numbers' },
        { name: 'calc.mul', params: 2 },
        { name: 'fail', params: 1 },
        { name: 'sleep', params: 1 },
      ],
    });

    const ping = await qam(['ping', serverId, '--count', '2']);
    expect(ping.code).toBe(0);
    expect(ping.stdout).toMatch(
      new RegExp(
        `^reply 1 from ${serverId}\\.[0-9a-f]{16}: \\d+\\.\\d\\d ms\\nreply 2 from ${serverId}\\.[0-9a-f]{16}: \\d+\\.\\d\\d ms\\n` +
          `2 sent, 2 answered: min \\d+\\.\\d\\d, avg \\d+\\.\\d\\d, max \\d+\\.\\d\\d ms\\n$`,
      ),
    );

    const bench = await qam(['bench', serverId, 'add', '1', '2', '--calls', '40', '--in-flight', '4']);
    expect(bench.code).toBe(0);
    expect(bench.stdout).toMatch(
      /^add: 40 calls, 4 in flight, 0 errors, in \d+\.\d\d s\ncalls\/s: \d+\nlatency ms: p50 [\d.]+ {2}p90 [\d.]+ {2}p99 [\d.]+ {2}max [\d.]+\n$/,
    );
    const benchJson = await qam(['bench', serverId, 'fail', '"x"', '--calls', '10', '--in-flight', '2', '--json']);
    // The warm-up call fails first: the bench stops there with its error.
    expect(benchJson).toMatchObject({ code: 1, stdout: '', stderr: 'qam: REMOTE_ERROR: x (RangeError, code E_FAIL)\n' });
    const benchOk = JSON.parse((await qam(['bench', serverId, 'add', '1', '2', '--calls', '10', '--json'])).stdout) as Record<
      string,
      unknown
    >;
    expect(benchOk).toMatchObject({ method: 'add', calls: 10, inFlight: 10, errors: {}, latencyMs: { p50: expect.any(Number) } });

    // A call running when SIGTERM comes finishes and replies; then the process exits 0.
    const proxy = new QAMProxy<{ sleep(seconds: number): string }>({ serverId, url, timeout: 20, logger: silentLogger });
    try {
      let started: () => void = () => undefined;
      const running = new Promise<void>((resolve) => (started = resolve));
      const call = proxy.withStartNotice(() => started()).sleep(1);
      await running;
      child.kill('SIGTERM');
      await expect(call).resolves.toBe('slept');
    } finally {
      await proxy.close();
    }
    const [code] = await exited;
    expect(code).toBe(0);
    expect(output()).toMatch(new RegExp(`qam: SIGTERM: draining ${serverId} \\(\\d calls running\\)\n`));
    expect(output()).toContain(`closed ${serverId}\n`);
  }, 120_000);

  it('exits 3 when no answer can come: nothing serves the id, the broker cannot be reached', async () => {
    const nobody = uniqueName('cli_nobody');
    expect(await qam(['call', nobody, 'add', '1', '2'])).toEqual({
      code: 3,
      stdout: '',
      stderr: `qam: NO_ROUTE: No queue serves server '${nobody}': the broker returned the request as unroutable\n`,
    });
    const unreachable = await qam(['ping', nobody, '--url', 'amqp://guest:guest@127.0.0.1:1/']);
    expect(unreachable.code).toBe(3);
    expect(unreachable.stderr).toMatch(/^qam: CONNECT_FAILED: Cannot connect to the broker at amqp:\/\/guest:\*\*\*@127\.0\.0\.1:1\//);
  }, 60_000);

  it('methods and ping against a server without introspection', async () => {
    const server = servers.create({ introspection: false }).registerFunction((a: number) => a, 'echo');
    await server.serve();
    const methods = await qam(['methods', server.serverId]);
    expect(methods).toEqual({
      code: 1,
      stdout: '',
      stderr: `qam: METHOD_NOT_FOUND: server ${server.serverId} does not answer introspection (it predates it, or its option introspection is false): Server ${server.serverId} does not answer introspection (its option introspection is false)\n`,
    });
    const ping = await qam(['ping', server.serverId, '--count', '1']);
    expect(ping.code).toBe(0);
    expect(ping.stdout).toMatch(new RegExp(`^reply 1 from ${server.serverId} \\(without introspection\\): `));
  }, 60_000);

  it('exits 2 on usage errors, with the reason on stderr', async () => {
    const usage = async (args: string[]): Promise<string> => {
      const ran = await qam(args);
      expect({ code: ran.code, stdout: ran.stdout }).toEqual({ code: 2, stdout: '' });
      return ran.stderr;
    };
    expect(await usage([])).toMatch(/^Usage: qam <command> \[options\]/);
    expect(await usage(['frob'])).toBe("qam: USAGE: unknown command 'frob' (see qam --help)\n");
    expect(await usage(['call', 'calc'])).toBe('qam: USAGE: call needs <server-id> <method> (see qam --help)\n');
    expect(await usage(['call', 'calc', 'add', 'two'])).toBe(
      `qam: USAGE: argument 1 is not JSON: two (a string needs quotes: '"two"') (see qam --help)\n`,
    );
    expect(await usage(['bench', 'calc', 'add', '--calls', '0'])).toBe(
      "qam: USAGE: --calls must be a positive integer, got '0' (see qam --help)\n",
    );
    expect(await usage(['serve', service])).toBe('qam: USAGE: serve needs --server-id (see qam --help)\n');
    expect(await usage(['call', 'calc', 'add', '--url', 'http://nope'])).toMatch(/^qam: USAGE: .*amqp:\/\//);
    const help = await qam(['--help']);
    expect(help).toMatchObject({ code: 0, stderr: '' });
    expect(help.stdout).toContain('Exit codes: 0 ok, 1 the server answered with an error');
  }, 60_000);
});
