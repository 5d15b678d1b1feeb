/**
 * `npm run build && node dist/bench/poison-attack.js [reply_to]`: the poison-reply attack of
 * issue 10, measured. One request, published with raw amqplib, whose `reply_to` has the shape of
 * a direct reply-to address but cannot be decoded by the broker (RabbitMQ 3.10 closes the whole
 * connection with 541 INTERNAL_ERROR when the reply is published). Prints how often the function
 * ran and how often the server lost its connection in the 5 s after, and whether a normal call
 * made then is answered. Environment: `BENCH_URL` (default `amqp://guest:guest@127.0.0.1:5672`).
 */

import amqp from 'amqplib';
import { QAMProxy, QAMServer, silentLogger } from '../lib/index.js';

const url = process.env['BENCH_URL'] ?? 'amqp://guest:guest@127.0.0.1:5672';
const replyTo = process.argv[2] ?? 'amq.rabbitmq.reply-to.AAAA.BBBB';
const serverId = `poison_attack_${process.pid}_${Date.now()}`;

const counts = { runs: 0, connectionLosses: 0 };
const server = new QAMServer({ serverId, url, logger: silentLogger })
  .registerFunction(() => ++counts.runs, 'target')
  .registerFunction(() => 'answered', 'other');
server.connection.on('disconnect', () => counts.connectionLosses++);
await server.serve();

const attacker = await amqp.connect(url);
const channel = await attacker.createConfirmChannel();
channel.publish(`server_${serverId}_ex`, serverId, Buffer.from(JSON.stringify({ method: 'target', params: [] })), {
  replyTo,
  correlationId: 'poison',
  contentType: 'application/json',
});
await channel.waitForConfirms();
await new Promise((resolve) => setTimeout(resolve, 5000));
const in5s = { ...counts };

const proxy = new QAMProxy<{ other(): string }>({ serverId, url, timeout: 5, logger: silentLogger });
const otherCall = await proxy.other().catch((error: unknown) => `failed with ${String((error as { code?: unknown }).code)}`);
console.log(
  JSON.stringify({ replyTo, functionRunsIn5s: in5s.runs, connectionLossesIn5s: in5s.connectionLosses, otherCallThen: otherCall }),
);

await proxy.close();
await server.close({ deleteQueue: true });
await attacker.close();
