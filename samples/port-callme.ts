import { QAMProxy, QAMServer } from '../lib/index.js';

/**
 * callme's getting-started program (its README's server and client), ported line by line with
 * callme's names: README.md, "Porting a callme program". `replies: 'callme'` keeps callme's
 * reply names (`client_<user>_ex_<uid>`), which its broker permission recipes rely on.
 */

function add(a: number, b: number): number {
  return a + b;
}

/** The server: `fooserver` (here `serverId`) with `add`; resolves once it consumes. */
export async function callmeServer(serverId: string, amqp_host = 'localhost'): Promise<QAMServer> {
  const server = new QAMServer({ server_id: serverId, amqp_host });
  server.register_function(add, 'add');
  await server.start();
  return server;
}

/** The client: one proxy, bound to a server per call with `use_server`. */
export async function callmeClient(serverId: string, print: (line: string) => void = console.log, amqp_host = 'localhost'): Promise<void> {
  const proxy = new QAMProxy({ amqp_host, replies: 'callme' });

  print(String(await proxy.use_server<{ add(a: number, b: number): number }>(serverId).add(1, 1)));
  await proxy.close();
}
