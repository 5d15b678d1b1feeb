import * as amqp from 'amqplib';
import { QAMConnection, QAMServer, silentLogger, type Logger, type QAMServerOptions } from '../../lib/index.js';
import { brokerUrl, uniqueName } from '../support/broker.js';

export const url = brokerUrl();

/** A logger that keeps what it is told, for tests that check what was logged. */
export function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const keep = (message: string): void => {
    lines.push(message);
  };
  return { lines, debug: keep, info: keep, warn: keep, error: keep };
}

/** Servers started by a test file, closed (queues deleted) after it. */
export class Servers {
  readonly #started: QAMServer<object>[] = [];

  /** A server with a unique id on the test broker, not yet serving. */
  create(options: Partial<QAMServerOptions> = {}): QAMServer {
    const where = options.connection === undefined ? { url } : {};
    const server = new QAMServer({ serverId: uniqueName('spec'), ...where, logger: silentLogger, ...options });
    this.#started.push(server);
    return server;
  }

  async closeAll(): Promise<void> {
    await Promise.all(this.#started.splice(0).map((server) => server.close({ deleteQueue: true })));
  }
}

/** A connection to the test broker that logs nothing. */
export function quietConnection(): QAMConnection {
  return new QAMConnection({ url, logger: silentLogger });
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

const rawConnections = new Set<amqp.ChannelModel>();

/**
 * A plain amqplib channel on a connection of its own, for tests that publish what no qam proxy
 * would (hostile or hand-made messages) or declare what qam would not. Closed after the test file.
 */
export async function rawChannel(): Promise<amqp.Channel> {
  const model = await amqp.connect(url);
  rawConnections.add(model);
  model.on('error', () => undefined);
  const channel = await model.createChannel();
  channel.on('error', () => undefined);
  return channel;
}

afterAll(async () => {
  await Promise.all([...rawConnections].map((model) => model.close().catch(() => undefined)));
  rawConnections.clear();
});
