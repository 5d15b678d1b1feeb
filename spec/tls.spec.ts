/**
 * TLS against a real TLS endpoint on loopback: spec/support/tls.ts terminates mutual TLS in front of
 * the broker with certificates it generates (a trusted CA, and an untrusted one).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { QAMProxy, QAMServer, QAMTlsException, silentLogger } from '../lib/index.js';
import { uniqueName } from './support/broker.js';
import { createTlsFixture, type TlsFixture } from './support/tls.js';

describe('TLS', () => {
  let tls: TlsFixture;
  const started: Array<{ close(): Promise<unknown> }> = [];

  beforeAll(async () => {
    tls = await createTlsFixture();
  });

  afterAll(async () => {
    for (const closable of started.splice(0).reverse()) await closable.close();
    await tls.close();
  });

  /** A server reached over TLS with the trusted client certificate. */
  async function serveOverTls(protocol: 'native' | 'qam'): Promise<string> {
    const serverId = uniqueName('tls');
    const server = new QAMServer({
      serverId,
      url: tls.url,
      ssl: { ca: tls.ca, cert: tls.cert, key: tls.key },
      protocol,
      logger: silentLogger,
    });
    started.push({ close: () => server.close({ deleteQueue: true }) });
    await server.registerFunction((a: number, b: number) => a + b, 'add').serve();
    return serverId;
  }

  /** The error a call through a proxy with these TLS settings fails with. */
  async function refusal(options: Partial<ConstructorParameters<typeof QAMProxy>[0]>): Promise<unknown> {
    const proxy = new QAMProxy({ serverId: 'unreached', timeout: 10, logger: silentLogger, url: tls.url, ...options });
    try {
      await proxy.add(1, 1);
    } catch (error) {
      return error;
    } finally {
      await proxy.close();
    }
    throw new Error('expected the connection to be refused');
  }

  it('connects to an amqps:// URL with a trusted CA and client certificate', async () => {
    const serverId = await serveOverTls('native');
    const proxy = new QAMProxy({
      serverId,
      url: tls.url,
      ssl: { ca: [tls.ca], cert: tls.cert, key: tls.key },
      timeout: 5,
      logger: silentLogger,
    });
    started.push(proxy);
    await expect(proxy.add(2, 3)).resolves.toBe(5);
    expect(tls.connectionCount).toBeGreaterThanOrEqual(2);
  });

  it("connects with QAM's discrete options: hostname, port and ssl, verifying the certificate against servername", async () => {
    const serverId = await serveOverTls('qam');
    const proxy = new QAMProxy({
      serverId,
      protocol: 'qam',
      hostname: '127.0.0.1',
      port: tls.port,
      ssl: { ca: tls.ca, cert: tls.cert, key: tls.key, servername: 'localhost' },
      timeout: 5,
      logger: silentLogger,
    });
    started.push(proxy);
    await expect(proxy.add(4, 5)).resolves.toBe(9);
  });

  it('refuses a broker whose certificate does not name the servername', async () => {
    const error = await refusal({ ssl: { ca: tls.ca, cert: tls.cert, key: tls.key, servername: 'elsewhere.invalid' } });
    expect(error).toBeInstanceOf(QAMTlsException);
    expect(error).toMatchObject({ code: 'TLS_FAILED', cause: { code: 'ERR_TLS_CERT_ALTNAME_INVALID' } });
  });

  it('refuses a broker whose certificate no trusted CA signed', async () => {
    const started = Date.now();
    const error = await refusal({ ssl: { ca: tls.untrustedCa, cert: tls.cert, key: tls.key } });
    expect(error).toBeInstanceOf(QAMTlsException);
    expect(error).toMatchObject({ code: 'TLS_FAILED' });
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('reports a client certificate the endpoint does not trust as a TLS failure', async () => {
    const error = await refusal({ ssl: { ca: tls.ca, cert: tls.untrustedCert, key: tls.untrustedKey } });
    expect(error).toMatchObject({ name: 'QAMTlsException', code: 'TLS_FAILED' });
  });

  it('reports a missing client certificate as a TLS failure', async () => {
    const error = await refusal({ ssl: { ca: tls.ca } });
    expect(error).toMatchObject({ name: 'QAMTlsException', code: 'TLS_FAILED' });
  });

  it('reports a vhost the broker does not have as CONNECT_FAILED, not as a lost connection', async () => {
    const error = await refusal({ url: tls.urlFor(uniqueName('qam_absent')), ssl: { ca: tls.ca, cert: tls.cert, key: tls.key } });
    expect(error).toMatchObject({ name: 'QAMConnectFailedException', code: 'CONNECT_FAILED' });
  });

  it('refuses ssl with an amqp:// URL instead of connecting in plain text', () => {
    expect(() => new QAMProxy({ serverId: 'x', url: tls.url.replace('amqps:', 'amqp:'), ssl: { ca: tls.ca } })).toThrow(TypeError);
  });
});
