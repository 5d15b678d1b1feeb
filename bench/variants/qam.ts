/**
 * qam itself: QAMServer with the handler registered as `echo`, QAMProxy calling it, awaited or
 * in callback mode, over qam's own wire protocol or Python QAM's, with json or superjson, and with
 * the CPU-bound handler on worker threads. qam sets TCP_NODELAY itself, so its rows are also its
 * defaults.
 */

import * as amqp from 'amqplib';
import type { QAMProxy, QAMProxyOptions, QAMServer, QAMServerOptions, SerializerName } from '../../lib/index.js';
import { qamClientNames, qamServerNames, serverNames } from '../../lib/protocols/naming.js';
import type { BrokerNames, ClientDriver, ServerHandle, Variant } from './types.js';

export interface QamSettings {
  mode: 'await' | 'callback';
  serializer: SerializerName;
  /** `'qam'`: Python QAM's wire protocol; undefined: qam's own. */
  protocol?: 'qam';
  /** Run a handler that has a module form (the CPU-bound one) on qam's worker threads. */
  threads?: boolean;
}

/**
 * The qam build measured: this tree's lib/, or another build of qam with the same public API
 * (the `qam-base` variant: a commit to compare with, see bench/README.md).
 */
export interface QamLibrary {
  QAMProxy: typeof QAMProxy;
  QAMServer: typeof QAMServer;
}

/** The API the bench server exposes, so the proxy is typed. */
interface EchoApi {
  echo(value: unknown): unknown;
}

/** With the QAM protocol the proxy declares a reply queue; name it after the run's server name. */
function clientIdFor(serverName: string): string {
  return `${serverName}-client`;
}

/**
 * The protocol option is checked at run time too: a server that ignored it would declare qam's
 * own names, and the row would silently measure the wrong protocol.
 */
async function expectQueue(url: string, queue: string): Promise<void> {
  const model = await amqp.connect(url);
  try {
    const channel = await model.createChannel();
    channel.on('error', () => undefined);
    await channel.checkQueue(queue);
  } catch {
    throw new Error(`QAMServer did not declare ${queue}: it does not speak the 'qam' wire protocol`);
  } finally {
    await model.close().catch(() => undefined);
  }
}

export function qamVariant(settings: QamSettings, { QAMProxy, QAMServer }: QamLibrary): Variant {
  return {
    brokerNames(serverName: string): BrokerNames {
      const own = serverNames(serverName);
      const qam = qamServerNames(serverName);
      return {
        queues: [own.queue, qam.queue, qamClientNames(clientIdFor(serverName)).queue],
        exchanges: [own.exchange, qam.exchange, qam.replyExchange],
      };
    },

    async startServer({ url, name, handler, concurrency, threadable }): Promise<ServerHandle> {
      const options: QAMServerOptions = { serverId: name, url, workers: concurrency };
      if (settings.protocol !== undefined) options.protocol = settings.protocol;
      const server = new QAMServer(options);
      if (settings.threads === true && threadable !== undefined) {
        server.registerWorkerFunction(threadable.module, threadable.exportName, 'echo');
      } else {
        server.registerFunction(handler, 'echo');
      }
      const close = (): Promise<void> => server.close({ deleteQueue: true });
      await server.serve();
      if (settings.protocol === 'qam')
        await expectQueue(url, qamServerNames(name).queue).catch(async (error: unknown) => {
          await close();
          throw error;
        });
      return { close };
    },

    async openClient({ url, name, timeoutMs }): Promise<ClientDriver> {
      const options: QAMProxyOptions = { serverId: name, url, serializer: settings.serializer, timeout: timeoutMs / 1000 };
      if (settings.protocol !== undefined) {
        options.protocol = settings.protocol;
        options.clientId = clientIdFor(name);
      }
      const proxy = new QAMProxy<EchoApi, SerializerName>(options);
      const call =
        settings.mode === 'await'
          ? (payload: unknown): Promise<unknown> => proxy.echo(payload)
          : (payload: unknown): Promise<unknown> =>
              new Promise((resolve, reject) => {
                proxy.callback(resolve, reject).echo(payload);
              });
      return { call, close: () => proxy.close() };
    },
  };
}
