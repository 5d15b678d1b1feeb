/**
 * CPU time per call, one call in flight, server and proxy in this process over RabbitMQ: a
 * measure that a noisy, shared machine disturbs far less than wall time. Compares builds of qam
 * given by the path of their `lib/index.js` (default: this build), alternating them in rounds.
 *
 *   node dist/bench/cpu-per-call.js [--calls=N] [--rounds=R] [index.js …]
 *
 * Prints, per build, the median over rounds of (user + system CPU µs) / call.
 */
import { randomBytes } from 'node:crypto';
import { pathToFileURL } from 'node:url';

type Lib = typeof import('../lib/index.js');

const args = process.argv.slice(2);
const option = (name: string, fallback: number): number => {
  const found = args.find((arg) => arg.startsWith(`--${name}=`));
  return found === undefined ? fallback : Number(found.slice(name.length + 3));
};
const calls = option('calls', 3000);
const rounds = option('rounds', 5);
const paths = args.filter((arg) => !arg.startsWith('--'));
const url = process.env['QAM_URL'] ?? 'amqp://guest:guest@127.0.0.1:5672/';

async function load(path: string | undefined): Promise<Lib> {
  return (path === undefined ? await import('../lib/index.js') : await import(pathToFileURL(path).href)) as Lib;
}

async function measure(lib: Lib): Promise<number> {
  const serverId = `cpu_${randomBytes(4).toString('hex')}`;
  const server = new lib.QAMServer({ serverId, url, logger: lib.silentLogger }).registerFunction((value: unknown) => value, 'echo');
  await server.serve();
  const proxy = new lib.QAMProxy({ serverId, url, logger: lib.silentLogger });
  const payload = 'x'.repeat(100);
  for (let i = 0; i < 300; i++) await proxy['echo'](payload);
  const start = process.cpuUsage();
  for (let i = 0; i < calls; i++) await proxy['echo'](payload);
  const used = process.cpuUsage(start);
  await proxy.close();
  await server.close({ deleteQueue: true });
  return (used.user + used.system) / calls;
}

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN;

const builds = paths.length === 0 ? [undefined] : paths;
const libs = await Promise.all(builds.map(load));
const results = builds.map(() => [] as number[]);
for (let round = 0; round < rounds; round++) {
  for (const [index, lib] of libs.entries()) results[index]!.push(await measure(lib));
}
for (const [index, path] of builds.entries()) {
  const values = results[index]!;
  console.log(`${path ?? 'this build'}: ${median(values).toFixed(1)} µs CPU/call (rounds: ${values.map((v) => v.toFixed(1)).join(', ')})`);
}
