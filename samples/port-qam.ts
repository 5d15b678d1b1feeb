import { setTimeout as delay } from 'node:timers/promises';
import { QAMProxy, QAMServer, QAMTimeoutException } from '../lib/index.js';

/**
 * QAM's tutorial program (its README's server and proxy), ported line by line with QAM's names:
 * README.md, "Porting a QAM program". The server serves QAM's wire format beside qam's own, so
 * the Python QAM proxies still running keep calling it; the proxy speaks QAM's format, so it can
 * call the Python QAM server until that is ported too. The tests run both halves against each
 * other and each against spec/interop/qam_peer.py, which stands in for the Python side.
 */

/** Where the broker is, in QAM's discrete options. */
export interface QamBroker {
  hostname: string;
  port: number;
  username: string;
  password: string;
  vhost: string;
}

export const localBroker: QamBroker = { hostname: 'localhost', port: 5672, username: 'guest', password: 'guest', vhost: '/' };

function adder_function(x: number, y: number): number {
  return x + y;
}

class TestClass {
  adder_function(a: number, b: number): number {
    return a + b;
  }
}

/** server.py: registers `add` and `my_instance`, then serves (resolves once it consumes). */
export async function qamServer(serverId: string, broker: QamBroker = localBroker): Promise<QAMServer> {
  const { hostname, port, username, password, vhost } = broker;
  const qam_server = new QAMServer({ hostname, port, username, password, vhost, server_id: serverId, protocol: ['native', 'qam'] });
  qam_server.register_function(adder_function, 'add');
  qam_server.register_class(new TestClass(), 'my_instance');
  await qam_server.serve();
  return qam_server;
}

/** proxy.py: a synchronous call, an instance method, a callback with its state polled, a timeout. */
export async function qamProxy(
  serverId: string,
  clientId: string,
  print: (line: string) => void = console.log,
  broker: QamBroker = localBroker,
): Promise<void> {
  const { hostname, port, username, password, vhost } = broker;
  const qam_proxy = new QAMProxy<{ add(x: number, y: number): number; my_instance: TestClass }>({
    hostname,
    port,
    username,
    password,
    vhost,
    server_id: serverId,
    client_id: clientId,
    protocol: 'qam',
  });

  const result = await qam_proxy.add(2, 3);
  print(`add(2, 3) = ${result}`);
  print(`my_instance.adder_function(2, 4) = ${await qam_proxy.my_instance.adder_function(2, 4)}`);

  const success = (arg: number): void => print(`success: ${arg}`);
  const error = (arg: Error): void => {
    if (arg instanceof QAMTimeoutException) print('Timeout occoured');
    else print('Other error happened');
  };
  const uid = qam_proxy.callback(success, error).set_timeout(10).add(2, 4);
  while (qam_proxy.get_callback_state(uid) !== 2) await delay(10);

  try {
    print(`set_timeout(10).add(2, 3) = ${await qam_proxy.set_timeout(10).add(2, 3)}`);
  } catch (reason) {
    if (!(reason instanceof QAMTimeoutException)) throw reason;
    print('Remote function is too slow, timeout occoured.');
  }
  await qam_proxy.close();
}
