/**
 * rabbitmq-client used the way its README shows: `createRPCClient()` on the client (direct
 * reply-to inside), `createConsumer()` answering with its `reply()` on the server. Bodies are
 * plain objects, which the library JSON-encodes and decodes itself.
 */

import { once } from 'node:events';
import { Connection } from 'rabbitmq-client';
import { queueOnly } from './shared.js';
import type { ClientDriver, ServerHandle, Variant } from './types.js';

export interface RabbitmqClientSettings {
  /** TCP_NODELAY (ConnectionOptions.noDelay); the library's default is false (Nagle on). */
  noDelay: boolean;
}

function connect(url: string, settings: RabbitmqClientSettings): Connection {
  const connection = new Connection(settings.noDelay ? { url, noDelay: true } : { url });
  connection.on('error', (error: Error) => console.error(`rabbitmq-client connection error: ${error.message}`));
  return connection;
}

export function rabbitmqClientVariant(settings: RabbitmqClientSettings): Variant {
  return {
    brokerNames: queueOnly,

    async startServer({ url, name, handler, concurrency }): Promise<ServerHandle> {
      const connection = connect(url, settings);
      const consumer = connection.createConsumer(
        { queue: name, queueOptions: { durable: false }, qos: { prefetchCount: concurrency }, concurrency },
        async (message, reply) => {
          await reply(await handler(message.body));
        },
      );
      consumer.on('error', (error: Error) => console.error(`rabbitmq-client consumer error: ${error.message}`));
      await once(consumer, 'ready');
      return {
        async close() {
          await consumer.close();
          await connection.queueDelete(name);
          await connection.close();
        },
      };
    },

    async openClient({ url, name, timeoutMs }): Promise<ClientDriver> {
      const connection = connect(url, settings);
      await connection.onConnect();
      const rpc = connection.createRPCClient({ timeout: timeoutMs });
      return {
        async call(payload) {
          const reply = await rpc.send(name, payload);
          return reply.body as unknown;
        },
        async close() {
          await rpc.close();
          await connection.close();
        },
      };
    },
  };
}
