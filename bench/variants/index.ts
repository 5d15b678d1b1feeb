/**
 * Every benchmarked variant, in report order. Modules load lazily, so one whose library cannot be
 * loaded (qam while lib/ is being written) fails alone instead of taking the harness down.
 */

import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Scope } from '../plan.js';
import type { Variant } from './types.js';

export interface VariantEntry {
  /** Id on the command line and in broker names (letters, digits, '-'). */
  name: string;
  /** Row label in the report. */
  title: string;
  load(): Promise<Variant>;
  /** Scenarios it runs; by default echo (latency, throughput) and memory, not CPU. */
  scope?: Partial<Scope>;
  /** False when it cannot run in this environment: a run without --only then leaves it out. */
  available?: () => boolean;
  /** Run only when named (--only, or the plan's own list of variants). */
  onRequest?: boolean;
}

export function scopeOf(entry: VariantEntry): Scope {
  return { echo: true, memory: true, cpu: false, ...entry.scope };
}

/** The variant every ratio is taken against. */
export const referenceName = 'amqplib';

const amqplib = async (noDelay: boolean, confirms = false): Promise<Variant> =>
  (await import('./amqplib.js')).amqplibVariant({ noDelay, confirms });
const rabbitmqClient = async (noDelay: boolean): Promise<Variant> =>
  (await import('./rabbitmq-client.js')).rabbitmqClientVariant({ noDelay });
const cloudamqp = async (noDelay: boolean): Promise<Variant> => (await import('./cloudamqp.js')).cloudamqpVariant({ noDelay });
const qam = async (settings: import('./qam.js').QamSettings): Promise<Variant> =>
  (await import('./qam.js')).qamVariant(settings, await import('../../lib/index.js'));

/**
 * Another build of qam, to compare with this tree in one run: BENCH_QAM_BASE names its project
 * directory (built, with its own node_modules), e.g. a worktree of an older commit.
 */
async function qamBase(): Promise<Variant> {
  const directory = process.env['BENCH_QAM_BASE'];
  if (directory === undefined || directory === '') throw new Error('the qam-base variant needs BENCH_QAM_BASE=<directory of a built qam>');
  const library = (await import(pathToFileURL(join(resolve(directory), 'dist/lib/index.js')).href)) as import('./qam.js').QamLibrary;
  return (await import('./qam.js')).qamVariant({ mode: 'await', serializer: 'json' }, library);
}

export const variants: readonly VariantEntry[] = [
  { name: 'amqplib', title: 'raw amqplib, direct reply-to (reference)', load: () => amqplib(true), scope: { cpu: true } },
  {
    name: 'amqplib-confirms',
    title: 'raw amqplib with confirms, mandatory, expiration (what qam promises)',
    load: () => amqplib(true, true),
    scope: { memory: false },
    onRequest: true,
  },
  { name: 'qam', title: 'qam, awaited', load: () => qam({ mode: 'await', serializer: 'json' }), scope: { cpu: true } },
  {
    name: 'qam-base',
    title: 'qam, awaited, BENCH_QAM_BASE build',
    load: qamBase,
    scope: { cpu: true },
    available: () => (process.env['BENCH_QAM_BASE'] ?? '') !== '',
  },
  { name: 'qam-callback', title: 'qam, callback mode', load: () => qam({ mode: 'callback', serializer: 'json' }) },
  { name: 'qam-wire', title: 'qam, QAM wire protocol', load: () => qam({ mode: 'await', serializer: 'json', protocol: 'qam' }) },
  { name: 'qam-superjson', title: 'qam, superjson', load: () => qam({ mode: 'await', serializer: 'superjson' }) },
  {
    name: 'qam-threads',
    title: 'qam, worker-thread pool',
    load: () => qam({ mode: 'await', serializer: 'json', threads: true }),
    scope: { echo: false, memory: false, cpu: true },
  },
  { name: 'rabbitmq-client', title: 'rabbitmq-client RPCClient', load: () => rabbitmqClient(true) },
  { name: 'cloudamqp', title: '@cloudamqp/amqp-client, direct reply-to', load: () => cloudamqp(true) },
  { name: 'amqplib-defaults', title: 'amqplib, library defaults (Nagle on)', load: () => amqplib(false), scope: { memory: false } },
  {
    name: 'rabbitmq-client-defaults',
    title: 'rabbitmq-client, library defaults (Nagle on)',
    load: () => rabbitmqClient(false),
    scope: { memory: false },
  },
  {
    name: 'cloudamqp-defaults',
    title: '@cloudamqp/amqp-client, library defaults (Nagle on)',
    load: () => cloudamqp(false),
    scope: { memory: false },
  },
];

export function variantNamed(name: string): VariantEntry {
  const entry = variants.find((candidate) => candidate.name === name);
  if (entry === undefined) throw new Error(`Unknown variant '${name}'; known: ${variants.map((v) => v.name).join(', ')}`);
  return entry;
}
