/**
 * A loopback TCP proxy placed between a client and the broker for fault injection: cut every
 * connection, refuse new ones (broker down) or freeze traffic (hung network).
 */
import * as net from 'node:net';

export interface ProxyTarget {
  host: string;
  port: number;
}

/** One proxied client connection: the accepted client socket and its upstream socket. */
class Link {
  /** a side has closed while frozen; the other side is closed on unfreeze */
  private pendingClose = false;
  private closed = false;

  constructor(
    readonly client: net.Socket,
    readonly upstream: net.Socket,
    private frozen: boolean,
    private readonly onClosed: (link: Link) => void,
  ) {
    this.forward(client, upstream);
    this.forward(upstream, client);
    for (const s of [client, upstream]) {
      s.on('error', () => {});
      s.on('close', () => this.sideClosed());
    }
    // The client socket was accepted paused; bytes written to the upstream before it has
    // connected are buffered by node.
    if (frozen) {
      client.pause();
      upstream.pause();
    } else {
      client.resume();
      upstream.resume();
    }
  }

  /** Copies src to dst by hand so that freezing and backpressure are both honoured. */
  private forward(src: net.Socket, dst: net.Socket): void {
    src.on('data', (chunk: Buffer) => {
      if (dst.destroyed) return;
      if (!dst.write(chunk)) src.pause();
    });
    dst.on('drain', () => {
      if (!this.frozen) src.resume();
    });
    // Half-close: pass the FIN along (only reached while not frozen, as paused sockets emit no 'end').
    src.on('end', () => {
      if (!dst.destroyed) dst.end();
    });
  }

  private sideClosed(): void {
    if (this.frozen) {
      this.pendingClose = true;
      return;
    }
    this.destroy();
  }

  setFrozen(on: boolean): void {
    if (this.closed) return;
    this.frozen = on;
    if (on) {
      this.client.pause();
      this.upstream.pause();
      return;
    }
    if (this.pendingClose) {
      this.destroy();
      return;
    }
    if (!this.upstream.writableNeedDrain) this.client.resume();
    if (!this.client.writableNeedDrain) this.upstream.resume();
  }

  /** Abrupt close of both sides (TCP RST where possible). */
  destroy(reset = false): void {
    if (this.closed) return;
    this.closed = true;
    for (const s of [this.client, this.upstream]) {
      if (s.destroyed) continue;
      if (reset && typeof s.resetAndDestroy === 'function' && !s.connecting) s.resetAndDestroy();
      else s.destroy();
    }
    this.onClosed(this);
  }
}

export class TcpProxy {
  private readonly links = new Set<Link>();
  /** client sockets accepted while refusing, not yet closed */
  private readonly refused = new Set<net.Socket>();
  private refusing = false;
  private frozen = false;
  private closing: Promise<void> | undefined;
  /** total number of client connections accepted and forwarded so far */
  acceptedCount = 0;

  private constructor(
    private readonly server: net.Server,
    readonly port: number,
    readonly target: ProxyTarget,
  ) {
    server.on('connection', (socket) => this.onConnection(socket));
  }

  /** Starts a proxy on 127.0.0.1 (ephemeral port) forwarding to `target`. */
  static async start(target: ProxyTarget = { host: '127.0.0.1', port: 5672 }): Promise<TcpProxy> {
    const server = net.createServer({ pauseOnConnect: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('unexpected server address');
    return new TcpProxy(server, address.port, { ...target });
  }

  /** `amqp://guest:guest@127.0.0.1:<port>`, plus `/<vhost>` URL-encoded when a vhost is given. */
  url(vhost?: string, credentials: { user: string; password: string } = { user: 'guest', password: 'guest' }): string {
    const base = `amqp://${encodeURIComponent(credentials.user)}:${encodeURIComponent(credentials.password)}` + `@127.0.0.1:${this.port}`;
    return vhost === undefined ? base : `${base}/${encodeURIComponent(vhost)}`;
  }

  /** Number of client connections currently being proxied. */
  get connectionCount(): number {
    return this.links.size;
  }

  get isRefusing(): boolean {
    return this.refusing;
  }

  get isFrozen(): boolean {
    return this.frozen;
  }

  private onConnection(client: net.Socket): void {
    if (this.closing) {
      client.destroy();
      return;
    }
    if (this.refusing) {
      this.refuseSocket(client);
      return;
    }
    this.acceptedCount++;
    const upstream = net.connect({ host: this.target.host, port: this.target.port });
    // Hold client bytes until the upstream is connected (the socket was accepted paused).
    const link = new Link(client, upstream, this.frozen, (l) => this.links.delete(l));
    this.links.add(link);
  }

  private refuseSocket(socket: net.Socket): void {
    socket.on('error', () => {});
    this.refused.add(socket);
    socket.once('close', () => this.refused.delete(socket));
    socket.resetAndDestroy();
  }

  /** Destroys every current client and upstream socket abruptly (RST). The proxy keeps listening. */
  cutAll(): void {
    for (const link of [...this.links]) link.destroy(true);
  }

  /** While on, new connections are accepted and immediately reset, as if the broker were down. */
  refuse(on: boolean): void {
    this.refusing = on;
  }

  /**
   * While on, no bytes are forwarded in either direction, for current and new connections, as on a
   * hung network; closes seen meanwhile are passed on only after unfreezing. Turning it off
   * delivers whatever was held back.
   */
  freeze(on: boolean): void {
    this.frozen = on;
    for (const link of [...this.links]) link.setFrozen(on);
  }

  /** Stops listening and destroys every socket. Idempotent. */
  close(): Promise<void> {
    if (!this.closing) {
      this.closing = new Promise<void>((resolve) => {
        this.server.close(() => resolve());
        for (const link of [...this.links]) link.destroy();
        for (const socket of [...this.refused]) socket.destroy();
      });
    }
    return this.closing;
  }
}
