/**
 * What a run measures: the sizes of the quick and full runs, the tasks a client performs, and the
 * report sections those tasks fill. Tasks and sections share the metric keys defined here.
 */

import type { Behavior } from './behaviors.js';
import { cpuIterations } from './cpu-work.js';
import { describeBytes } from './payloads.js';

export type Mode = 'quick' | 'full' | 'low';

/** The servers a bench server process runs, one per behaviour, each on its own queue. */
export type Target = 'echo' | 'slow' | 'cpu';

export interface Plan {
  mode: Mode;
  rounds: number;
  /** Requests a server handles at once (broker prefetch / qam workers), for echo and CPU servers. */
  serverConcurrency: number;
  callTimeoutMs: number;
  latency: { payloadBytes: number; calls: number; warmup: number; maxSeconds: number };
  throughput: {
    inFlight: number[];
    sizes: Array<{ label: 'small' | 'large'; bytes: number; calls: number; warmup: number }>;
    maxSeconds: number;
  };
  /** The memory server holds requests until released, at most `holdMs`. */
  memory: { payloadBytes: number; calls: number; holdMs: number };
  /** `warmup` calls first: qam's worker threads start at the first call. */
  cpu: { calls: number; warmup: number; inFlight: number; maxSeconds: number };
  /** Scenarios this plan leaves out, whatever the variants' scopes say. */
  skip?: Array<keyof Scope>;
  /** The variants run without --only (those available); all of them when absent. */
  variants?: string[];
}

const small = 100;
const large = 64 * 1024;

export const plans: Record<Mode, Plan> = {
  full: {
    mode: 'full',
    rounds: 3,
    serverConcurrency: 100,
    callTimeoutMs: 60_000,
    latency: { payloadBytes: small, calls: 3000, warmup: 500, maxSeconds: 30 },
    throughput: {
      inFlight: [1, 10, 100, 1000],
      sizes: [
        { label: 'small', bytes: small, calls: 20_000, warmup: 2000 },
        { label: 'large', bytes: large, calls: 2000, warmup: 200 },
      ],
      maxSeconds: 30,
    },
    memory: { payloadBytes: small, calls: 10_000, holdMs: 20_000 },
    cpu: { calls: 400, warmup: 64, inFlight: 16, maxSeconds: 30 },
  },
  // Sized for 10 variants × 3 rounds in under 2 minutes: small counts, short time caps.
  quick: {
    mode: 'quick',
    rounds: 3,
    serverConcurrency: 100,
    callTimeoutMs: 60_000,
    latency: { payloadBytes: small, calls: 150, warmup: 50, maxSeconds: 0.5 },
    throughput: {
      inFlight: [1, 10, 100, 1000],
      sizes: [
        { label: 'small', bytes: small, calls: 1000, warmup: 100 },
        { label: 'large', bytes: large, calls: 80, warmup: 10 },
      ],
      maxSeconds: 0.25,
    },
    memory: { payloadBytes: small, calls: 2000, holdMs: 20_000 },
    cpu: { calls: 40, warmup: 16, inFlight: 16, maxSeconds: 2 },
  },
  // Cost per call at low concurrency (`npm run bench:low-concurrency`): latency and 1 or 10 calls in
  // flight, with the client's CPU time per call; more rounds, as the differences sought are small.
  low: {
    mode: 'low',
    rounds: 5,
    serverConcurrency: 100,
    callTimeoutMs: 60_000,
    latency: { payloadBytes: small, calls: 3000, warmup: 1000, maxSeconds: 15 },
    throughput: {
      inFlight: [1, 10],
      sizes: [{ label: 'small', bytes: small, calls: 3000, warmup: 300 }],
      maxSeconds: 15,
    },
    memory: { payloadBytes: small, calls: 0, holdMs: 0 },
    cpu: { calls: 0, warmup: 0, inFlight: 1, maxSeconds: 0 },
    skip: ['memory', 'cpu'],
    variants: ['amqplib', 'amqplib-confirms', 'qam', 'qam-base', 'cloudamqp'],
  },
};

/** The scenarios a variant runs in a plan: its own scope, less what the plan skips. */
export function planScope(plan: Plan, scope: Scope): Scope {
  const planned = { ...scope };
  for (const scenario of plan.skip ?? []) planned[scenario] = false;
  return planned;
}

/** Which scenarios a variant takes part in. */
export interface Scope {
  /** Latency and throughput against the echo server. */
  echo: boolean;
  /** The CPU-bound function (worker pool vs one thread). */
  cpu: boolean;
  /** Client memory per pending call (not for rows that differ only in socket options). */
  memory: boolean;
}

/** One measurement a client process performs; results are stored under `key` (+ suffixes). */
export type Task =
  | { kind: 'latency'; key: string; target: 'echo'; payloadBytes: number; calls: number; warmup: number; maxSeconds: number }
  | {
      kind: 'throughput';
      key: string;
      target: 'echo' | 'cpu';
      payloadBytes: number;
      calls: number;
      inFlight: number;
      warmup: number;
      maxSeconds: number;
    }
  | { kind: 'memory'; key: string; target: 'slow'; payloadBytes: number; calls: number; holdMs: number };

export function tasksFor(plan: Plan, scope: Scope): Task[] {
  const { latency, throughput, memory, cpu } = plan;
  const tasks: Task[] = [];
  if (scope.echo) tasks.push({ kind: 'latency', key: 'lat', target: 'echo', ...latency });
  for (const size of scope.echo ? throughput.sizes : []) {
    throughput.inFlight.forEach((inFlight, index) => {
      tasks.push({
        kind: 'throughput',
        key: `thr.${size.label}.${inFlight}`,
        target: 'echo',
        payloadBytes: size.bytes,
        calls: size.calls,
        inFlight,
        // Warm up once per payload size, before its first level.
        warmup: index === 0 ? size.warmup : 0,
        maxSeconds: throughput.maxSeconds,
      });
    });
  }
  if (scope.cpu) {
    tasks.push({ kind: 'throughput', key: 'cpu', target: 'cpu', payloadBytes: small, ...cpu });
  }
  // Last: its thousands of late replies would disturb anything measured after it.
  if (scope.memory)
    tasks.push({
      kind: 'memory',
      key: 'mem',
      target: 'slow',
      payloadBytes: memory.payloadBytes,
      calls: memory.calls,
      holdMs: memory.holdMs,
    });
  return tasks;
}

/** The servers each bench server process starts. */
export function serversFor(plan: Plan, scope: Scope): Array<{ target: Target; behavior: Behavior; concurrency: number }> {
  const servers: Array<{ target: Target; behavior: Behavior; concurrency: number }> = [];
  if (scope.echo) servers.push({ target: 'echo', behavior: { kind: 'echo' }, concurrency: plan.serverConcurrency });
  // Every pending call, the primer and the release must all be in the server at once.
  if (scope.memory)
    servers.push({ target: 'slow', behavior: { kind: 'hold', maxMs: plan.memory.holdMs }, concurrency: plan.memory.calls + 2 });
  if (scope.cpu) servers.push({ target: 'cpu', behavior: { kind: 'cpu' }, concurrency: plan.serverConcurrency });
  return servers;
}

/** Upper bound of a client process's work, for the parent's watchdog. */
export function clientBudgetMs(tasks: readonly Task[]): number {
  let total = 30_000;
  for (const task of tasks) total += task.kind === 'memory' ? task.holdMs + 30_000 : task.maxSeconds * 2000 + 5000;
  return total;
}

export interface Column {
  key: string;
  label: string;
}

export interface Section {
  title: string;
  description: string;
  unit: string;
  better: 'lower' | 'higher';
  columns: Column[];
  /** Only for variants whose scope includes this scenario. */
  needs?: keyof Scope;
}

export function sectionsFor(plan: Plan): Section[] {
  const { latency, throughput, memory, cpu } = plan;
  const sections: Section[] = [
    {
      title: 'Sequential latency',
      description: `One call at a time, ${describeBytes(latency.payloadBytes)} payload, ${latency.calls} calls after ${latency.warmup} warm-up.`,
      unit: 'ms',
      better: 'lower',
      needs: 'echo',
      columns: [
        { key: 'lat.p50', label: 'p50' },
        { key: 'lat.p99', label: 'p99' },
      ],
    },
  ];
  for (const size of throughput.sizes) {
    sections.push({
      title: `Throughput, ${describeBytes(size.bytes)} payload`,
      description: `${size.calls} calls with N in flight (${size.warmup} warm-up calls first).`,
      unit: 'calls/s',
      better: 'higher',
      needs: 'echo',
      columns: throughput.inFlight.map((n) => ({ key: `thr.${size.label}.${n}`, label: `${n} in flight` })),
    });
  }
  if (plan.mode === 'low') {
    sections.push({
      title: 'Client CPU time per call',
      description:
        "The client process's CPU time (user + system, process.cpuUsage) over each measurement above, divided by its calls: what one call costs the caller, little moved by other processes' load.",
      unit: 'µs',
      better: 'lower',
      needs: 'echo',
      columns: [
        { key: 'lat.cpu', label: 'sequential' },
        ...throughput.inFlight.map((n) => ({ key: `thr.small.${n}.cpu`, label: `${n} in flight` })),
      ],
    });
    return sections;
  }
  sections.push({
    title: 'Client memory per pending call',
    description: `${memory.calls} calls in flight to a server that holds them until released: heapUsed delta after gc (once every request is out and 1 s more has passed), divided by the calls.`,
    unit: 'bytes',
    better: 'lower',
    columns: [{ key: 'mem.perCall', label: 'heap / pending call' }],
    needs: 'memory',
  });
  sections.push({
    title: 'CPU-bound function',
    description: `${cpu.calls} calls after ${cpu.warmup} warm-up, ${cpu.inFlight} in flight, each running ~4-5 ms of pure JavaScript (${cpuIterations} xorshift rounds) on the server: on its one thread, or on qam's worker threads (qam's default: one per core).`,
    unit: 'calls/s',
    better: 'higher',
    columns: [{ key: 'cpu', label: 'throughput' }],
    needs: 'cpu',
  });
  return sections;
}
