import { QAMProxy, QAMServer, type ServerApi } from '../lib/index.js';
import { startTestBroker } from '../lib/testing.js';

class Inventory {
  readonly #stock = new Map<string, number>([['apple', 3]]);

  take(item: string): number {
    const left = (this.#stock.get(item) ?? 0) - 1;
    if (left < 0) throw Object.assign(new Error(`no ${item} left`), { code: 'OUT_OF_STOCK' });
    this.#stock.set(item, left);
    return left;
  }
}

function buildServer(url: string) {
  return new QAMServer({ serverId: 'inventory', url }).registerClass(new Inventory(), 'inventory');
}

/** A service tested without RabbitMQ: its server and a proxy on an embedded broker. */
export async function testingSample(print: (line: string) => void = console.log): Promise<void> {
  const { url, broker, close } = startTestBroker();
  const server = buildServer(url);
  await server.serve();
  const proxy = new QAMProxy<ServerApi<ReturnType<typeof buildServer>>>({ serverId: 'inventory', url, timeout: 5 });
  try {
    print(`apples left: ${await proxy.inventory.take('apple')}`);
    await proxy.inventory.take('pear').catch((error: { remoteCode?: string }) => print(`pear: ${error.remoteCode}`));
    // The server's queue; each server instance also has an exclusive queue for cancels.
    const queue = broker.queues().find((info) => info.name === 'server_inventory_queue');
    print(`server_inventory_queue: ${queue?.ready} ready, ${queue?.unacked} unacked, ${queue?.consumers} consumer`);
    broker.cut();
    // The cut reaches the proxy and the server a moment later, as a lost socket would; calls made
    // then wait for the reconnect.
    await new Promise((resolve) => setTimeout(resolve, 50));
    print(`after a cut, apples left: ${await proxy.inventory.take('apple')}`);
  } finally {
    await proxy.close();
    await server.close({ deleteQueue: true });
    close();
  }
}
