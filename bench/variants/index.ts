/**
 * Every benchmarked variant, in report order. Modules load lazily, so one whose library cannot be
 * loaded (qam while lib/ is being written) fails alone instead of taking the harness down.
 */

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
}

export function scopeOf(entry: VariantEntry): Scope {
  return { echo: true, memory: true, cpu: false, ...entry.scope };
}

/** The variant every ratio is taken against. */
export const referenceName = 'amqplib';

const amqplib = async (noDelay: boolean): Promise<Variant> => (await import('./amqplib.js')).amqplibVariant({ noDelay });
const rabbitmqClient = async (noDelay: boolean): Promise<Variant> =>
  (await import('./rabbitmq-client.js')).rabbitmqClientVariant({ noDelay });
const cloudamqp = async (noDelay: boolean): Promise<Variant> => (await import('./cloudamqp.js')).cloudamqpVariant({ noDelay });
const qam = async (settings: import('./qam.js').QamSettings): Promise<Variant> => (await import('./qam.js')).qamVariant(settings);

export const variants: readonly VariantEntry[] = [
  { name: 'amqplib', title: 'raw amqplib, direct reply-to (reference)', load: () => amqplib(true), scope: { cpu: true } },
  { name: 'qam', title: 'qam, awaited', load: () => qam({ mode: 'await', serializer: 'json' }), scope: { cpu: true } },
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
