/**
 * @cloudamqp/amqp-client with hand-written direct reply-to RPC, built the same way as the amqplib
 * reference: one channel with a noAck reply consumer and a correlation map on the client;
 * basicQos(concurrency), noAck=false and ack after the reply on the server.
 */

import { AMQPClient } from '@cloudamqp/amqp-client';
import type { AMQPProperties } from '@cloudamqp/amqp-client';
import { PendingCalls, decodeJson, directReplyTo, encodeJson, jsonContentType, queueOnly, respond } from './shared.js';
import type { ClientDriver, ServerHandle, Variant } from './types.js';

export interface CloudamqpSettings {
  /**
   * TCP_NODELAY. The library never calls setNoDelay and has no option for it (its second
   * constructor argument is spread into the connect options but is typed as TLS-only), so the
   * harness sets it on the public `client.socket` once connected. Default: Nagle on.
   */
  noDelay: boolean;
}

const noBody = new Uint8Array(0);

async function connect(url: string, settings: CloudamqpSettings): Promise<AMQPClient> {
  const client = new AMQPClient(url);
  client.onerror = (error) => console.error(`@cloudamqp/amqp-client error: ${error.message}`);
  await client.connect();
  if (settings.noDelay) client.socket?.setNoDelay(true);
  return client;
}

function logFailure(error: unknown): void {
  console.error(`@cloudamqp/amqp-client: ${error instanceof Error ? error.message : String(error)}`);
}

export function cloudamqpVariant(settings: CloudamqpSettings): Variant {
  return {
    brokerNames: queueOnly,

    async startServer({ url, name, handler, concurrency }): Promise<ServerHandle> {
      const client = await connect(url, settings);
      const channel = await client.channel();
      await channel.queueDeclare(name, { durable: false, autoDelete: false, exclusive: false });
      await channel.basicQos(concurrency);
      const consumer = await channel.basicConsume(name, { noAck: false }, (message) => {
        const { replyTo, correlationId } = message.properties;
        respond(
          handler,
          decodeJson(message.body ?? noBody),
          (result) => {
            if (replyTo !== undefined) {
              const properties: AMQPProperties = { contentType: jsonContentType };
              if (correlationId !== undefined) properties.correlationId = correlationId;
              channel.basicPublish('', replyTo, encodeJson(result), properties).catch(logFailure);
            }
            message.ack().catch(logFailure);
          },
          () => message.nack(false).catch(logFailure),
        );
      });
      return {
        async close() {
          await consumer.cancel();
          await channel.queueDelete(name);
          await client.close();
        },
      };
    },

    async openClient({ url, name }): Promise<ClientDriver> {
      const client = await connect(url, settings);
      const channel = await client.channel();
      const pending = new PendingCalls();
      await channel.basicConsume(directReplyTo, { noAck: true }, (message) => {
        pending.settle(message.properties.correlationId, () => decodeJson(message.body ?? noBody));
      });
      return {
        call(payload) {
          return pending.start((correlationId) => {
            channel
              .basicPublish('', name, encodeJson(payload), { correlationId, replyTo: directReplyTo, contentType: jsonContentType })
              .catch((error: unknown) => pending.fail(correlationId, error));
          });
        },
        async close() {
          pending.failAll(new Error('client closed'));
          await client.close();
        },
      };
    },
  };
}
