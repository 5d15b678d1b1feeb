/**
 * What the fuzzers found, each reproduced exactly: the message a peer publishes with raw amqplib.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import * as amqp from 'amqplib';
import type { ChannelModel } from 'amqplib';
import { QAMProxy, QAMServer } from '../../lib/index.js';
import { parseQamRequest } from '../../lib/protocols/qam/format.js';
import { brokerUrl, uniqueName, waitUntil } from '../support/broker.js';
import { countingLogger } from '../support/fuzz-broker.js';

const url = brokerUrl();

describe('a QAM request whose routing_key no AMQP routing key can hold (over 255 bytes)', () => {
  const routingKey = 'k'.repeat(256);
  const logger = countingLogger();
  let runs = 0;
  let server: QAMServer;
  let connection: ChannelModel;

  beforeAll(async () => {
    server = new QAMServer({ serverId: uniqueName('fuzzfind'), url, protocol: 'qam', logger }).registerFunction((value: unknown) => {
      runs++;
      return value;
    }, 'echo');
    await server.serve();
    connection = await amqp.connect(url);
  });

  afterEach(() => {
    runs = 0;
  });

  afterAll(async () => {
    await connection.close();
    await server.close({ deleteQueue: true });
  });

  it('has no reply address', () => {
    expect(parseQamRequest({ id: 1, method_name: 'echo', routing_key: routingKey, params: [] })).toEqual({
      problem: expect.any(String),
      address: undefined,
    });
    expect(parseQamRequest({ id: 1, method_name: 'echo', routing_key: 'é'.repeat(128), params: [] })).toEqual({
      problem: expect.any(String),
      address: undefined,
    });
    expect(parseQamRequest({ id: 1, method_name: 'echo', routing_key: 'k'.repeat(255), params: [] })).toHaveProperty('request');
  });

  it('is refused before it runs, with a warning rather than a failed reply, and the server serves on', async () => {
    const channel = await connection.createConfirmChannel();
    const body = JSON.stringify({ id: 7, method_name: 'echo', routing_key: routingKey, params: ['unanswerable'] });
    channel.publish(`${server.serverId}_server_exchange`, `${server.serverId}_server_routing_key`, Buffer.from(body), {
      contentType: 'application/json',
    });
    await channel.waitForConfirms();
    await waitUntil(() => server.stats().served + server.stats().failed === 1, { message: 'the request is handled' });
    expect({ runs, failed: server.stats().failed, errorsLogged: logger.counts.error }).toEqual({ runs: 0, failed: 1, errorsLogged: 0 });
    const proxy = new QAMProxy({ serverId: server.serverId, url, protocol: 'qam', timeout: 30, logger });
    try {
      await expect(proxy.echo('served')).resolves.toBe('served');
    } finally {
      await proxy.close();
    }
  });
});
