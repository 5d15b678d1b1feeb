/**
 * A second RabbitMQ node of its own for a test: broker faults (memory alarm, restarts, kill) that
 * must not touch the shared broker on 127.0.0.1:5672, which other suites and programs use.
 *
 * Each node has its own name (`qamtest_<hex>@localhost`), its own loopback ports (AMQP and Erlang
 * distribution, both picked free), and its own directory under `os.tmpdir()` holding its data,
 * logs, config files and Erlang cookie. The system's `/etc/rabbitmq` files are never read (they pin
 * the shared node's name and port 5672), and `rabbitmqctl` is run with `-n <node>` and this
 * node's cookie only, so nothing here can reach the shared broker.
 *
 * @example
 * const node = await startNode();
 * try {
 *   await node.setMemoryAlarm(true); // publishers on node.url get connection.blocked
 * } finally {
 *   await node.stop();
 * }
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, constants, closeSync, mkdirSync, mkdtempSync, openSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';

export interface TestNode {
  /** Erlang node name, e.g. `qamtest_0123456789abcdef@localhost`. */
  readonly nodeName: string;
  /** AMQP port on 127.0.0.1. */
  readonly port: number;
  /** Erlang distribution port on 127.0.0.1 (what `rabbitmqctl -n` talks to). */
  readonly distPort: number;
  /** `amqp://guest:guest@127.0.0.1:<port>` (guest may log in: the connection is from loopback). */
  readonly url: string;
  /** OS pid of the node's Erlang VM (beam.smp). */
  readonly pid: number;
  /** The node's directory (data, logs, config); deleted by {@link stop}. */
  readonly dir: string;
  /** Milliseconds from spawning the node until it had booted. */
  readonly startupMs: number;
  /** Runs `rabbitmqctl -n <node> ...args`; resolves with stdout, rejects with stderr in the message. */
  ctl(...args: string[]): Promise<string>;
  /**
   * Raises (true) or clears (false) the node's memory alarm, as if it had crossed its memory high
   * watermark. While it is raised the broker blocks every connection that publishes: a client
   * that announced the `connection.blocked` capability (amqplib does) gets `connection.blocked`
   * when it next publishes, not before, and `connection.unblocked` once the alarm clears; the
   * broker reads nothing more from a blocked connection meanwhile.
   */
  setMemoryAlarm(on: boolean): Promise<void>;
  /** Stops and starts the RabbitMQ application (`stop_app`, `start_app`): every connection is closed. */
  restart(): Promise<void>;
  /**
   * Kills the node's VM (SIGKILL, as a crash or power loss would) and waits until it and its port
   * are gone, keeping its directory: {@link start} boots it again with its data (and, in a cluster,
   * it rejoins its peers).
   */
  kill(): Promise<void>;
  /** Stops the node gracefully (`rabbitmqctl stop`: it hands its queue leaderships over first), keeping its directory. */
  shutdown(): Promise<void>;
  /** Boots the node again after {@link kill} or {@link shutdown}: same name, ports, cookie and data. */
  start(): Promise<void>;
  /** True while the node's VM runs. */
  readonly running: boolean;
  /** Kills the node (SIGKILL to its VM, then to its own process group), waits until the VM and its port are gone, and deletes its directory. Idempotent. */
  stop(): Promise<void>;
}

export interface StartNodeOptions {
  /** Milliseconds to wait for the node to boot. @default 90000 */
  startTimeoutMs?: number;
  /**
   * The node's Erlang cookie. Nodes of one cluster must share one (see rabbit-cluster.ts).
   * @default a random one of its own
   */
  cookie?: string;
}

/** Nodes started and not yet stopped, killed when the process exits (a test that failed before stop()). */
const running = new Set<RunningNode>();
let exitHookInstalled = false;

/** Starts a fresh RabbitMQ node on free loopback ports; resolves once it accepts AMQP connections. */
export async function startNode(options: StartNodeOptions = {}): Promise<TestNode> {
  const timeoutMs = options.startTimeoutMs ?? 90_000;
  for (let attempt = 1; ; attempt++) {
    const node = await RunningNode.create(options.cookie ?? randomBytes(24).toString('hex').toUpperCase());
    try {
      await node.awaitBoot(timeoutMs);
      return node;
    } catch (error) {
      await node.stop();
      // Another program may take a port between its probe and the node's listen: pick others.
      if (!(error instanceof PortTakenError) || attempt >= 3) throw error;
    }
  }
}

class PortTakenError extends Error {}

/** The directory of the real RabbitMQ scripts (Debian's /usr/sbin ones are wrappers that `su rabbitmq`). */
function scriptsDir(): string {
  const candidates = ['/usr/lib/rabbitmq/bin', ...(process.env['PATH'] ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin'];
  for (const dir of candidates) {
    if (dir === '') continue;
    try {
      const real = realpathSync(join(dir, 'rabbitmq-server'));
      accessSync(join(dirname(real), 'rabbitmqctl'), constants.X_OK);
      accessSync(join(dirname(real), 'rabbitmq-server'), constants.X_OK);
      return dirname(real);
    } catch {
      // not here
    }
  }
  throw new Error('rabbitmq-server not found (looked in /usr/lib/rabbitmq/bin and PATH)');
}

/** Two distinct free TCP ports on 127.0.0.1, found by listening on port 0. */
async function freePorts(count: number): Promise<number[]> {
  const servers: net.Server[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const server = net.createServer();
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', resolve);
      });
    }
    return servers.map((server) => {
      const address = server.address();
      if (address === null || typeof address === 'string') throw new Error('unexpected server address');
      return address.port;
    });
  } finally {
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  }
}

/** True if something accepts TCP connections on 127.0.0.1:port. */
function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** True while `pid` names a process, a zombie included. */
function alive(pid: number): boolean {
  if (pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function killGroupSync(pgid: number | undefined): void {
  if (pgid === undefined) return;
  try {
    process.kill(-pgid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** Variables of the calling environment that would steer rabbitmq-server or Erlang elsewhere. */
function cleanEnvironment(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('RABBITMQ_') && !key.startsWith('ERL_') && key !== 'HOME') env[key] = value;
  }
  return env;
}

class RunningNode implements TestNode {
  readonly nodeName: string;
  readonly port: number;
  readonly distPort: number;
  readonly url: string;
  readonly dir: string;
  pid = 0;
  startupMs = 0;
  readonly #scripts: string;
  /** Environment for the node and for rabbitmqctl: this node's HOME (cookie) and conf files. */
  readonly #env: NodeJS.ProcessEnv;
  #startedAt = 0;
  #child: ChildProcess | undefined;
  #exited = true;
  #stopping: Promise<void> | undefined;

  private constructor(dir: string, port: number, distPort: number, cookie: string) {
    this.dir = dir;
    this.port = port;
    this.distPort = distPort;
    this.nodeName = `qamtest_${randomBytes(8).toString('hex')}@localhost`;
    this.url = `amqp://guest:guest@127.0.0.1:${port}`;
    this.#scripts = scriptsDir();
    const home = join(dir, 'home');
    this.#env = {
      ...cleanEnvironment(),
      HOME: home,
      // Only if no epmd runs yet does the node start one; it then listens on loopback only.
      ERL_EPMD_ADDRESS: '127.0.0.1',
      RABBITMQ_CONF_ENV_FILE: join(dir, 'rabbitmq-env.conf'),
      RABBITMQ_CONFIG_FILE: join(dir, 'rabbitmq.conf'),
      RABBITMQ_ENABLED_PLUGINS_FILE: join(dir, 'enabled_plugins'),
      RABBITMQ_NODENAME: this.nodeName,
      RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
      RABBITMQ_NODE_PORT: String(port),
      RABBITMQ_DIST_PORT: String(distPort),
      RABBITMQ_MNESIA_BASE: join(dir, 'mnesia'),
      RABBITMQ_LOG_BASE: join(dir, 'log'),
      RABBITMQ_PID_FILE: join(dir, 'beam.pid'),
      RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: '-kernel inet_dist_use_interface {127,0,0,1}',
    };
    writeFileSync(join(dir, 'rabbitmq-env.conf'), '# this node is configured by environment variables only\n');
    writeFileSync(join(dir, 'rabbitmq.conf'), `listeners.tcp.local = 127.0.0.1:${port}\n`);
    writeFileSync(join(dir, 'enabled_plugins'), '[].\n');
    writeFileSync(join(home, '.erlang.cookie'), cookie, { mode: 0o400 });
    running.add(this);
    installExitHook();
    this.#spawn();
  }

  /** Spawns `rabbitmq-server` for this node (first boot or a restart). */
  #spawn(): void {
    this.#startedAt = performance.now();
    this.#exited = false;
    this.pid = 0;
    const dir = this.dir;
    const output = openSync(join(dir, 'console.log'), 'a');
    let child: ChildProcess;
    try {
      // Its own process group, so stop() can kill the script and the VM (and the VM's helper
      // processes) together without looking for them by name.
      child = spawn(join(this.#scripts, 'rabbitmq-server'), [], {
        env: this.#env,
        cwd: dir,
        detached: true,
        stdio: ['ignore', output, output],
      });
    } finally {
      closeSync(output);
    }
    this.#child = child;
    const exited = (): void => {
      if (this.#child === child) this.#exited = true;
    };
    child.once('exit', exited);
    child.once('error', exited);
    child.unref();
  }

  /** Creates the node's directory and files and spawns it on two free ports. */
  static async create(cookie: string): Promise<RunningNode> {
    const [port, distPort] = await freePorts(2);
    const dir = mkdtempSync(join(tmpdir(), 'qamtest-'));
    for (const sub of ['home', 'mnesia', 'log']) mkdirSync(join(dir, sub));
    return new RunningNode(dir, port as number, distPort as number, cookie);
  }

  get running(): boolean {
    return !this.#exited;
  }

  /** Waits until the AMQP port accepts connections and the rabbit application has booted. */
  async awaitBoot(timeoutMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (!(await portOpen(this.port))) {
      if (this.#exited) throw await this.#bootFailure('exited while booting');
      if (performance.now() > deadline) throw await this.#bootFailure(`did not open port ${this.port} within ${timeoutMs} ms`);
      await sleep(100);
    }
    // The listener opens a moment before the boot ends.
    await this.ctl('eval', `ok = rabbit:await_startup(${Math.max(1000, Math.round(deadline - performance.now()))}).`);
    this.startupMs = Math.round(performance.now() - this.#startedAt);
    this.pid = Number((await readFile(join(this.dir, 'beam.pid'), 'utf8')).trim());
    if (!Number.isInteger(this.pid) || this.pid <= 0) throw new Error(`node ${this.nodeName}: bad pid file`);
  }

  async #bootFailure(what: string): Promise<Error> {
    const output = await readFile(join(this.dir, 'console.log'), 'utf8').catch(() => '');
    const tail = output.split('\n').slice(-30).join('\n');
    const message = `RabbitMQ test node ${this.nodeName} ${what}; its console output ends with:\n${tail}`;
    return /eaddrinuse/i.test(output) ? new PortTakenError(message) : new Error(message);
  }

  ctl(...args: string[]): Promise<string> {
    return new Promise((resolve, reject) => {
      execFile(
        join(this.#scripts, 'rabbitmqctl'),
        ['-n', this.nodeName, ...args],
        { env: this.#env, cwd: this.dir, timeout: 120_000, maxBuffer: 16 * 1024 * 1024, encoding: 'utf8' },
        (error, stdout, stderr) => {
          if (error) {
            const detail = stderr.trim() || stdout.trim() || error.message;
            reject(new Error(`rabbitmqctl -n ${this.nodeName} ${args.join(' ')} failed: ${detail}`));
          } else {
            resolve(stdout);
          }
        },
      );
    });
  }

  async setMemoryAlarm(on: boolean): Promise<void> {
    // The same alarm the memory monitor raises. The monitor clears only an alarm it raised itself,
    // so this one stays until cleared here, whatever the node's real memory use.
    const expression = on
      ? 'rabbit_alarm:set_alarm({{resource_limit, memory, node()}, []}).'
      : 'rabbit_alarm:clear_alarm({resource_limit, memory, node()}).';
    await this.ctl('eval', expression);
  }

  async restart(): Promise<void> {
    await this.ctl('stop_app');
    await this.ctl('start_app');
  }

  async kill(): Promise<void> {
    // The VM first, so that its parent, the start script, reaps it (a VM orphaned by killing the
    // script first would stay a zombie until init gets to it); then the whole group, in case. While
    // the script lives, the VM's pid cannot have been reused.
    if (!this.#exited && alive(this.pid)) process.kill(this.pid, 'SIGKILL');
    await this.#awaitGone('after SIGKILL');
  }

  async shutdown(): Promise<void> {
    if (this.#exited) return;
    await this.ctl('stop');
    // A clustered node hands its queues over as it stops: slow on a loaded machine.
    await this.#awaitGone('after rabbitmqctl stop', 180_000);
  }

  async start(): Promise<void> {
    if (!this.#exited) throw new Error(`node ${this.nodeName} is running`);
    this.#spawn();
    // A clustered node syncs with its peers as it boots again: slower than a first boot.
    await this.awaitBoot(300_000);
  }

  /** Waits (up to `ms`) until the VM exited, kills the rest of its process group, and waits until its port closed. */
  async #awaitGone(what: string, ms = 30_000): Promise<void> {
    const deadline = performance.now() + ms;
    while (!this.#exited && alive(this.pid) && performance.now() < deadline) await sleep(20);
    this.killSync();
    while (!this.#exited || alive(this.pid) || (await portOpen(this.port))) {
      if (performance.now() > deadline)
        throw new Error(`node ${this.nodeName} (pid ${this.pid}) still runs ${Math.round(ms / 1000)} s ${what}`);
      await sleep(20);
    }
  }

  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    await this.kill();
    running.delete(this);
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** SIGKILL to the node's own process group: the start script, the VM and the VM's helpers. */
  killSync(): void {
    killGroupSync(this.#child?.pid);
  }

  /** For the exit hook: kill and delete, synchronously. */
  discardSync(): void {
    this.killSync();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const node of running) node.discardSync();
  });
}
