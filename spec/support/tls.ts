/**
 * A real TLS endpoint on loopback for amqps:// tests: certificates made with the `openssl` CLI in a
 * temp dir, and a TLS-terminating proxy (mutual TLS) in front of the plain broker port.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tls from 'node:tls';

export interface TlsFixtureFiles {
  dir: string;
  /** the trusted CA's certificate */
  ca: string;
  caKey: string;
  /** server certificate for CN=localhost, SAN DNS:localhost, IP:127.0.0.1, signed by the CA */
  serverCert: string;
  serverKey: string;
  /** client certificate (CN=qam-test-client) signed by the CA */
  cert: string;
  key: string;
  /** a second CA the fixture does not trust, and a client certificate signed by it */
  untrustedCa: string;
  untrustedCaKey: string;
  untrustedCert: string;
  untrustedKey: string;
}

export interface TlsFixture {
  /** TLS port on 127.0.0.1 */
  readonly port: number;
  /** `amqps://guest:guest@localhost:<port>/` */
  readonly url: string;
  /** PEM of the trusted CA certificate */
  readonly ca: string;
  /** PEM of the client certificate and key signed by the trusted CA */
  readonly cert: string;
  readonly key: string;
  /** PEM of the server certificate and key */
  readonly serverCert: string;
  readonly serverKey: string;
  /** PEM of a CA the server does not trust, and of a client certificate/key signed by it */
  readonly untrustedCa: string;
  readonly untrustedCert: string;
  readonly untrustedKey: string;
  readonly files: TlsFixtureFiles;
  /**
   * `tlsClientError`s seen by the server. A client certificate that fails verification does not
   * show up as a certificate error here: node verifies it after the handshake and just destroys
   * the socket (no TLS alert), which surfaces as e.g. `socket hang up`.
   */
  readonly clientErrors: Error[];
  /** number of TLS connections currently being proxied */
  readonly connectionCount: number;
  /** `amqps://<user>:<password>@localhost:<port>/<vhost>` */
  urlFor(vhost?: string, user?: string, password?: string): string;
  /** Socket options for amqplib `connect(url, opts)` that pass mutual TLS. */
  socketOptions(): { ca: string[]; cert: string; key: string; servername: string };
  /** Stops the server, destroys every socket and removes the temp dir. Idempotent. */
  close(): Promise<void>;
}

function openssl(cwd: string, ...args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('openssl', args, { cwd, timeout: 30_000 }, (error, _stdout, stderr) => {
      if (error) reject(new Error(`openssl ${args.join(' ')} failed: ${String(stderr).trim() || error.message}`));
      else resolve();
    });
  });
}

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** Self-signed CA certificate `<name>.pem` with key `<name>.key`. */
async function makeCa(dir: string, name: string, cn: string): Promise<void> {
  await openssl(
    dir,
    'req', '-x509', ...EC_KEY,
    '-keyout', `${name}.key`, '-out', `${name}.pem`,
    '-days', '2', '-subj', `/CN=${cn}`,
    '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    '-addext', 'subjectKeyIdentifier=hash',
  ); // prettier-ignore
}

/** Leaf certificate `<name>.pem` / `<name>.key` signed by CA `<ca>.pem` with extensions `ext`. */
async function makeLeaf(dir: string, name: string, cn: string, ca: string, ext: string[]): Promise<void> {
  await openssl(dir, 'req', '-new', ...EC_KEY, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`);
  await writeFile(join(dir, `${name}.ext`), `${ext.join('\n')}\n`);
  await openssl(
    dir,
    'x509', '-req', '-in', `${name}.csr`,
    '-CA', `${ca}.pem`, '-CAkey', `${ca}.key`, '-CAcreateserial',
    '-out', `${name}.pem`, '-days', '2', '-extfile', `${name}.ext`,
  ); // prettier-ignore
}

export interface TlsFixtureOptions {
  /** where decrypted traffic goes; default the broker at 127.0.0.1:5672 */
  target?: { host: string; port: number };
}

export async function createTlsFixture(options: TlsFixtureOptions = {}): Promise<TlsFixture> {
  const target = options.target ?? { host: '127.0.0.1', port: 5672 };
  const dir = await mkdtemp(join(tmpdir(), 'qam-tls-'));
  let server: tls.Server | undefined;
  try {
    await Promise.all([makeCa(dir, 'ca', 'qam test CA'), makeCa(dir, 'untrusted-ca', 'qam untrusted CA')]);
    const leafExt = ['basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature,keyEncipherment'];
    await Promise.all([
      makeLeaf(dir, 'server', 'localhost', 'ca', [...leafExt, 'extendedKeyUsage=serverAuth', 'subjectAltName=DNS:localhost,IP:127.0.0.1']),
      makeLeaf(dir, 'client', 'qam-test-client', 'ca', [...leafExt, 'extendedKeyUsage=clientAuth']),
      makeLeaf(dir, 'untrusted-client', 'qam-untrusted-client', 'untrusted-ca', [...leafExt, 'extendedKeyUsage=clientAuth']),
    ]);

    const files: TlsFixtureFiles = {
      dir,
      ca: join(dir, 'ca.pem'),
      caKey: join(dir, 'ca.key'),
      serverCert: join(dir, 'server.pem'),
      serverKey: join(dir, 'server.key'),
      cert: join(dir, 'client.pem'),
      key: join(dir, 'client.key'),
      untrustedCa: join(dir, 'untrusted-ca.pem'),
      untrustedCaKey: join(dir, 'untrusted-ca.key'),
      untrustedCert: join(dir, 'untrusted-client.pem'),
      untrustedKey: join(dir, 'untrusted-client.key'),
    };
    const read = (p: string): Promise<string> => readFile(p, 'utf8');
    const [ca, serverCert, serverKey, cert, key, untrustedCa, untrustedCert, untrustedKey] = await Promise.all([
      read(files.ca),
      read(files.serverCert),
      read(files.serverKey),
      read(files.cert),
      read(files.key),
      read(files.untrustedCa),
      read(files.untrustedCert),
      read(files.untrustedKey),
    ]);

    const sockets = new Set<net.Socket>();
    const clientErrors: Error[] = [];
    const track = (s: net.Socket): void => {
      sockets.add(s);
      s.on('error', () => {});
      s.once('close', () => sockets.delete(s));
    };
    let active = 0;

    const srv = tls.createServer(
      { key: serverKey, cert: serverCert, ca: [ca], requestCert: true, rejectUnauthorized: true },
      (clientSocket) => {
        active++;
        const upstream = net.connect(target);
        track(upstream);
        clientSocket.pipe(upstream);
        upstream.pipe(clientSocket);
        let done = false;
        const finish = (): void => {
          if (done) return;
          done = true;
          active--;
          clientSocket.destroy();
          upstream.destroy();
        };
        clientSocket.once('close', finish);
        upstream.once('close', finish);
      },
    );
    server = srv;
    // Track raw TCP sockets so close() can destroy connections still in their handshake too.
    srv.on('connection', (socket: net.Socket) => track(socket));
    srv.on('secureConnection', (socket: tls.TLSSocket) => track(socket));
    srv.on('tlsClientError', (err: Error) => clientErrors.push(err));
    await new Promise<void>((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(0, '127.0.0.1', () => {
        srv.off('error', reject);
        resolve();
      });
    });
    const address = srv.address();
    if (address === null || typeof address === 'string') throw new Error('unexpected server address');
    const port = address.port;

    let closing: Promise<void> | undefined;
    const urlFor = (vhost = '/', user = 'guest', password = 'guest'): string =>
      `amqps://${encodeURIComponent(user)}:${encodeURIComponent(password)}@localhost:${port}/` +
      (vhost === '/' ? '' : encodeURIComponent(vhost));

    return {
      port,
      url: `amqps://guest:guest@localhost:${port}/`,
      ca,
      cert,
      key,
      serverCert,
      serverKey,
      untrustedCa,
      untrustedCert,
      untrustedKey,
      files,
      clientErrors,
      get connectionCount() {
        return active;
      },
      urlFor,
      socketOptions: () => ({ ca: [ca], cert, key, servername: 'localhost' }),
      close(): Promise<void> {
        closing ??= (async () => {
          const stopped = new Promise<void>((resolve) => srv.close(() => resolve()));
          for (const s of [...sockets]) s.destroy();
          await stopped;
          await rm(dir, { recursive: true, force: true });
        })();
        return closing;
      },
    };
  } catch (err) {
    if (server?.listening) await new Promise<void>((resolve) => server?.close(() => resolve()));
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}
