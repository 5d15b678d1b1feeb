/**
 * The contract every benchmarked variant fulfils. A variant is one way of doing echo RPC over
 * RabbitMQ: a client driver and the server it talks to, both written with the same library.
 * Adding a variant = one module exporting a {@link Variant} + one line in ./index.ts.
 */

/** What a server does with each decoded request value; the harness supplies it (echo, hold, CPU). */
export type Handler = (value: unknown) => unknown;

/** A handler that also exists as a module export, which a worker thread can import. */
export interface Threadable {
  /** `file:` URL of the module. */
  module: string;
  exportName: string;
}

export interface ServerOptions {
  url: string;
  /** Queue name / server id, unique per run. */
  name: string;
  handler: Handler;
  /** The same handler as a module export, when it has one (the CPU-bound handler). */
  threadable?: Threadable;
  /** Requests handled at once (broker prefetch, worker count). */
  concurrency: number;
}

export interface ClientOptions {
  url: string;
  /** Name of the server to call (the `name` its server was started with). */
  name: string;
  /** Per-call timeout where the library has one. */
  timeoutMs: number;
}

export interface ServerHandle {
  /** Stops consuming, deletes what the server declared, closes the connection. */
  close(): Promise<void>;
}

export interface ClientDriver {
  /** One echo RPC: resolves with the decoded reply value. */
  call(payload: unknown): Promise<unknown>;
  close(): Promise<void>;
}

/** Broker objects that may outlive a crashed peer; the harness deletes them at the end of a run. */
export interface BrokerNames {
  queues: string[];
  exchanges: string[];
}

export interface Variant {
  startServer(options: ServerOptions): Promise<ServerHandle>;
  openClient(options: ClientOptions): Promise<ClientDriver>;
  brokerNames(serverName: string): BrokerNames;
}
