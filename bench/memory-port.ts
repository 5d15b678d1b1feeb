/**
 * Raw request/reply throughput over the embedded broker's port, 100 calls in flight, client and
 * server in this process; and, for scale, the same calls with raw amqplib over RabbitMQ on
 * loopback (`--rabbit`). Both do what qam's direct reply-to client does per call: a publish on a
 * confirm channel with `mandatory`, `expiration`, `correlationId` and `replyTo`; the server
 * consumes with prefetch 100, publishes the reply and acknowledges the request.
 *
 * Then 100,000 more calls over the port, with the heap measured before and after (run node with
 * `--expose-gc` for a garbage-collected figure).
 *
 *   npx tsc -p tsconfig.build.json && node --expose-gc dist/bench/memory-port.js [--rabbit] [--calls=N] [--rounds=N]
 */
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import amqp from 'amqplib';
import { memoryBroker, memoryPort } from '../lib/amqp/memory/index.js';
import type { AmqpChannel, ConnectTarget, Delivery } from '../lib/amqp/port.js';
import { silentLogger } from '../lib/logger.js';

const inFlight = 100;
const replyTo = 'amq.rabbitmq.reply-to';
const body = Buffer.from(
  JSON.stringify({ method: 'echo', params: ['x'.repeat(40), 12345, true], id: 'c6f0a4b2-1d3e-4f5a-9b8c-7d6e5f4a3b2c' }),
);

/** What a measurement needs from a broker client: one call, and closing. */
interface Rpc {
  call(): Promise<void>;
  close(): Promise<void>;
}

/** Calls waiting for their reply, by correlation id. */
class Pending {
  #next = 0;
  readonly #calls = new Map<string, { resolve: () => void; reject: (error: unknown) => void }>();

  start(send: (id: string) => void): Promise<void> {
    return new Promise((resolve, reject) => {
      const id = String(++this.#next);
      this.#calls.set(id, { resolve, reject });
      send(id);
    });
  }

  settle(id: unknown, error?: unknown): void {
    if (typeof id !== 'string') return;
    const call = this.#calls.get(id);
    if (call === undefined) return;
    this.#calls.delete(id);
    if (error === undefined) call.resolve();
    else call.reject(error);
  }
}

async function memoryRpc(): Promise<Rpc> {
  const url = 'memory://bench';
  // Written so it also type-checks with fields the port may gain (a logger).
  const fields = {
    url,
    label: url,
    username: 'guest',
    heartbeatSeconds: 0,
    connectTimeoutMs: 1000,
    connectionName: undefined,
    tls: undefined,
    logger: silentLogger,
  };
  const target = fields as ConnectTarget;
  const serverConnection = await memoryPort.connect(target);
  const server = await serverConnection.openChannel({ confirms: false });
  await server.declareQueue('echo', { durable: false, exclusive: false, autoDelete: false });
  await server.prefetch(inFlight);
  await server.consume(
    'echo',
    (request: Delivery) => {
      const { replyTo: address, correlationId } = request.properties;
      if (typeof address === 'string' && typeof correlationId === 'string') {
        server.publish('', address, request.content, { correlationId, contentType: 'application/json' }, { mandatory: false });
      }
      server.ack(request);
    },
    { noAck: false },
  );
  const clientConnection = await memoryPort.connect(target);
  const client: AmqpChannel = await clientConnection.openChannel({ confirms: true });
  const pending = new Pending();
  await client.consume(replyTo, (reply) => pending.settle(reply.properties.correlationId), { noAck: true });
  return {
    call: () =>
      pending.start((id) => {
        client.publish(
          '',
          'echo',
          body,
          { correlationId: id, replyTo, contentType: 'application/json', expiration: '30000' },
          { mandatory: true },
          (failure) => {
            if (failure !== undefined) pending.settle(id, failure);
          },
        );
      }),
    async close() {
      await clientConnection.close();
      await serverConnection.close();
      memoryBroker('bench').close();
    },
  };
}

async function rabbitRpc(): Promise<Rpc> {
  const url = process.env['BENCH_URL'] ?? 'amqp://guest:guest@127.0.0.1:5672';
  const queue = `memory-port-bench-${process.pid}`;
  const serverConnection = await amqp.connect(url, { noDelay: true });
  const server = await serverConnection.createChannel();
  await server.assertQueue(queue, { durable: false, autoDelete: false });
  await server.prefetch(inFlight);
  await server.consume(
    queue,
    (request) => {
      if (request === null) return;
      const { replyTo: address, correlationId } = request.properties as { replyTo?: unknown; correlationId?: unknown };
      if (typeof address === 'string' && typeof correlationId === 'string') {
        server.publish('', address, request.content, { correlationId, contentType: 'application/json' });
      }
      server.ack(request);
    },
    { noAck: false },
  );
  const clientConnection = await amqp.connect(url, { noDelay: true });
  const client = await clientConnection.createConfirmChannel();
  const pending = new Pending();
  await client.consume(replyTo, (reply) => pending.settle(reply?.properties.correlationId), { noAck: true });
  return {
    call: () =>
      pending.start((id) => {
        client.publish(
          '',
          queue,
          body,
          { correlationId: id, replyTo, contentType: 'application/json', expiration: '30000', mandatory: true },
          (error: unknown) => {
            if (error !== null && error !== undefined) pending.settle(id, error);
          },
        );
      }),
    async close() {
      await clientConnection.close();
      await server.deleteQueue(queue);
      await serverConnection.close();
    },
  };
}

/** Runs `calls` calls, `inFlight` at a time; returns calls per second. */
async function run(rpc: Rpc, calls: number): Promise<number> {
  let issued = 0;
  const started = performance.now();
  const lane = async (): Promise<void> => {
    while (issued < calls) {
      issued++;
      await rpc.call();
    }
  };
  await Promise.all(Array.from({ length: inFlight }, lane));
  return calls / ((performance.now() - started) / 1000);
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

function heapMiB(): number {
  const collect = (globalThis as { gc?: () => void }).gc;
  collect?.();
  collect?.();
  return process.memoryUsage().heapUsed / 2 ** 20;
}

async function measure(name: string, open: () => Promise<Rpc>, calls: number, rounds: number): Promise<number> {
  const rpc = await open();
  await run(rpc, Math.min(calls, 5000));
  const rates: number[] = [];
  for (let round = 0; round < rounds; round++) rates.push(await run(rpc, calls));
  await rpc.close();
  const rate = median(rates);
  console.log(`${name.padEnd(32)} ${rates.map((value) => value.toFixed(0).padStart(8)).join(' ')}   median ${rate.toFixed(0)} calls/s`);
  return rate;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { rabbit: { type: 'boolean', default: false }, calls: { type: 'string' }, rounds: { type: 'string' } },
  });
  const calls = Number(values.calls ?? 50_000);
  const rounds = Number(values.rounds ?? 5);
  console.log(`request/reply, ${inFlight} in flight, ${body.length} B bodies, ${calls} calls per round, ${rounds} rounds`);
  const memory = await measure('embedded broker (port)', memoryRpc, calls, rounds);
  if (values.rabbit === true) {
    const rabbit = await measure('RabbitMQ loopback (raw amqplib)', rabbitRpc, Math.min(calls, 20_000), rounds);
    console.log(`ratio: ${(memory / rabbit).toFixed(1)}×`);
  }

  const rpc = await memoryRpc();
  await run(rpc, 10_000);
  const before = heapMiB();
  await run(rpc, 100_000);
  const after = heapMiB();
  await rpc.close();
  const collected = typeof (globalThis as { gc?: unknown }).gc === 'function' ? 'after gc' : 'no --expose-gc: not collected';
  console.log(
    `heap over 100,000 calls (${collected}): ${before.toFixed(1)} MiB → ${after.toFixed(1)} MiB (${(after - before >= 0 ? '+' : '') + (after - before).toFixed(1)} MiB)`,
  );
}

await main();
