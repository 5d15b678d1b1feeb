/**
 * The reference: raw amqplib written to be as fast as possible. Client: one channel, a noAck
 * consumer on `amq.rabbitmq.reply-to`, a correlation map. Server: prefetch = concurrency,
 * noAck=false, ack after the reply is published.
 */

import amqp from 'amqplib';
import type { ChannelModel, Message } from 'amqplib';
import { PendingCalls, decodeJson, directReplyTo, encodeJson, jsonContentType, queueOnly, respond } from './shared.js';
import type { ClientDriver, ServerHandle, Variant } from './types.js';

export interface AmqplibSettings {
  /** TCP_NODELAY; amqplib's default is false (Nagle on). */
  noDelay: boolean;
  /**
   * The client publishes as qam's contract requires: on a confirm channel, each request with a
   * confirm callback (a nack fails the call), `mandatory` (a returned request fails it at once)
   * and an `expiration`. What that costs raw amqplib is the floor for qam's cost per call.
   */
  confirms?: boolean;
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
      const pending = new PendingCalls();
      if (settings.confirms === true) return confirmingClient(connection, name, pending);
      const channel = await connection.createChannel();
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

/** The client of {@link AmqplibSettings.confirms}. */
async function confirmingClient(connection: ChannelModel, name: string, pending: PendingCalls): Promise<ClientDriver> {
  const channel = await connection.createConfirmChannel();
  await channel.consume(
    directReplyTo,
    (message) => {
      if (message !== null) pending.settle(message.properties.correlationId, () => decodeJson(message.content));
    },
    { noAck: true },
  );
  channel.on('return', (message: Message) => {
    const { correlationId } = message.properties as { correlationId?: unknown };
    if (typeof correlationId === 'string') pending.fail(correlationId, new Error('NO_ROUTE'));
  });
  return {
    call(payload) {
      return pending.start((correlationId) => {
        const options = { correlationId, replyTo: directReplyTo, contentType: jsonContentType, expiration: '60000', mandatory: true };
        channel.sendToQueue(name, encodeJson(payload), options, (error: unknown) => {
          if (error !== null && error !== undefined) pending.fail(correlationId, error);
        });
      });
    },
    async close() {
      pending.failAll(new Error('client closed'));
      await connection.close();
    },
  };
}
