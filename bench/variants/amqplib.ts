/**
 * The reference: raw amqplib written to be as fast as possible. Client: one channel, a noAck
 * consumer on `amq.rabbitmq.reply-to`, a correlation map. Server: prefetch = concurrency,
 * noAck=false, ack after the reply is published.
 */

import amqp from 'amqplib';
import type { ChannelModel } from 'amqplib';
import { PendingCalls, decodeJson, directReplyTo, encodeJson, jsonContentType, queueOnly, respond } from './shared.js';
import type { ClientDriver, ServerHandle, Variant } from './types.js';

export interface AmqplibSettings {
  /** TCP_NODELAY; amqplib's default is false (Nagle on). */
  noDelay: boolean;
}

async function connect(url: string, settings: AmqplibSettings): Promise<ChannelModel> {
  const connection = await amqp.connect(url, settings.noDelay ? { noDelay: true } : {});
  connection.on('error', (error: Error) => console.error(`amqplib connection error: ${error.message}`));
  return connection;
}

export function amqplibVariant(settings: AmqplibSettings): Variant {
  return {
    brokerNames: queueOnly,

    async startServer({ url, name, handler, concurrency }): Promise<ServerHandle> {
      const connection = await connect(url, settings);
      const channel = await connection.createChannel();
      await channel.assertQueue(name, { durable: false });
      await channel.prefetch(concurrency);
      const { consumerTag } = await channel.consume(
        name,
        (message) => {
          if (message === null) return;
          const replyTo: unknown = message.properties.replyTo;
          const correlationId: unknown = message.properties.correlationId;
          respond(
            handler,
            decodeJson(message.content),
            (result) => {
              if (typeof replyTo === 'string') {
                const options =
                  typeof correlationId === 'string' ? { correlationId, contentType: jsonContentType } : { contentType: jsonContentType };
                channel.sendToQueue(replyTo, encodeJson(result), options);
              }
              channel.ack(message);
            },
            () => channel.nack(message, false, false),
          );
        },
        { noAck: false },
      );
      return {
        async close() {
          await channel.cancel(consumerTag);
          await channel.deleteQueue(name);
          await connection.close();
        },
      };
    },

    async openClient({ url, name }): Promise<ClientDriver> {
      const connection = await connect(url, settings);
      const channel = await connection.createChannel();
      const pending = new PendingCalls();
      await channel.consume(
        directReplyTo,
        (message) => {
          if (message !== null) pending.settle(message.properties.correlationId, () => decodeJson(message.content));
        },
        { noAck: true },
      );
      return {
        call(payload) {
          return pending.start((correlationId) => {
            channel.sendToQueue(name, encodeJson(payload), { correlationId, replyTo: directReplyTo, contentType: jsonContentType });
          });
        },
        async close() {
          pending.failAll(new Error('client closed'));
          await connection.close();
        },
      };
    },
  };
}
