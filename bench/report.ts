/** Turns per-round metrics into the Markdown report (bench/results.md). */

import type { Environment } from './environment.js';
import type { Cap } from './measure.js';
import type { Plan, Scope, Section } from './plan.js';
import { pairedRatios, spread } from './stats.js';
import type { Spread } from './stats.js';

export interface VariantResult {
  name: string;
  title: string;
  scope: Scope;
  /** Metrics of each round, in round order; undefined for a round it did not complete. */
  rounds: Array<Record<string, number> | undefined>;
  /** Measurements that hit their time cap, with the round (0-based) they happened in. */
  caps: Array<Cap & { round: number }>;
  error?: string;
}

export interface ReportInput {
  plan: Plan;
  environment: Environment;
  sections: Section[];
  results: VariantResult[];
  referenceName: string;
  cleanup: string;
  command: string;
}

const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

function formatValue(value: number, unit: string): string {
  if (unit === 'ms') return value < 10 ? value.toFixed(3) : value.toFixed(1);
  return integer.format(value);
}

function formatSpread(s: Spread | undefined, format: (value: number) => string, suffix = ''): string {
  if (s === undefined) return '—';
  if (s.n === 1) return `${format(s.median)}${suffix}`;
  return `${format(s.median)}${suffix} (${format(s.min)}–${format(s.max)})`;
}

const ratio = (value: number): string => value.toFixed(2);

function valuesOf(result: VariantResult, key: string): Array<number | undefined> {
  return result.rounds.map((round) => round?.[key]);
}

function defined(values: Array<number | undefined>): number[] {
  return values.filter((value): value is number => value !== undefined);
}

function table(header: string[], rows: string[][]): string {
  const line = (cells: string[]): string => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

function renderSection(section: Section, input: ReportInput): string {
  const reference = input.results.find((result) => result.name === input.referenceName);
  const rows: string[][] = [];
  for (const result of input.results) {
    if (section.needs !== undefined && !result.scope[section.needs]) continue;
    const cells = [result.name === input.referenceName ? `**${result.title}**` : result.title];
    for (const column of section.columns) {
      const values = valuesOf(result, column.key);
      const capMark = result.caps.some((cap) => cap.metrics.includes(column.key)) ? ' †' : '';
      cells.push(formatSpread(spread(defined(values)), (v) => formatValue(v, section.unit)) + capMark);
      if (reference === undefined) cells.push('—');
      else if (result === reference) cells.push('1 (ref)');
      else cells.push(formatSpread(spread(pairedRatios(values, valuesOf(reference, column.key))), ratio, '×'));
    }
    rows.push(cells);
  }
  const header = ['variant', ...section.columns.flatMap((column) => [`${column.label} (${section.unit})`, '× amqplib'])];
  const direction = section.better === 'lower' ? 'lower is better; ratio < 1 beats amqplib' : 'higher is better; ratio > 1 beats amqplib';
  return [`## ${section.title}`, '', `${section.description} ${capitalize(direction)}.`, '', table(header, rows)].join('\n');
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function renderEnvironment({ environment: env, plan, command }: ReportInput): string {
  const load = (values: number[]): string => values.map((value) => value.toFixed(2)).join(' / ');
  const versions = Object.entries(env.versions)
    .map(([name, version]) => `${name} ${version}`)
    .join(', ');
  return [
    `- Date: ${env.date}; command: \`${command}\` (${plan.mode} mode, ${plan.rounds} rounds)`,
    `- Node ${env.node} on ${env.os}; ${env.cpus}; ${env.memory} RAM`,
    `- Broker: ${env.broker}`,
    `- Libraries: ${versions}`,
    `- Load average (1 / 5 / 15 min): ${load(env.loadBefore)} before, ${load(env.loadAfter)} after`,
  ].join('\n');
}

/** One line per capped measurement of a variant: in how many rounds, and how many calls it got. */
function capNotes(result: VariantResult, rounds: number): string[] {
  const byMetrics = new Map<string, Array<Cap & { round: number }>>();
  for (const cap of result.caps) {
    const key = cap.metrics.join(', ');
    byMetrics.set(key, [...(byMetrics.get(key) ?? []), cap]);
  }
  return [...byMetrics].map(([metrics, caps]) => {
    const done = caps.map((cap) => cap.done);
    const first = caps[0];
    const range = Math.min(...done) === Math.max(...done) ? `${Math.min(...done)}` : `${Math.min(...done)}–${Math.max(...done)}`;
    return `- † ${result.title}, ${metrics}: hit the ${first?.seconds ?? '?'} s cap in ${caps.length} of ${rounds} rounds (${range} of ${first?.planned ?? '?'} calls measured).`;
  });
}

function renderNotes(input: ReportInput): string {
  const lines: string[] = [];
  for (const result of input.results) {
    const completed = result.rounds.filter((round) => round !== undefined).length;
    if (result.error !== undefined) lines.push(`- **${result.title}**: failed after ${completed} round(s): ${result.error}`);
  }
  lines.push(`- Broker cleanup: ${input.cleanup}`);
  for (const result of input.results) lines.push(...capNotes(result, input.plan.rounds));
  return ['## Notes', '', ...lines].join('\n');
}

export function renderReport(input: ReportInput): string {
  return [
    '# qam benchmark results',
    '',
    renderEnvironment(input),
    '',
    'Each cell is the median over rounds, with the min–max over rounds in parentheses. Each `× amqplib` cell is a',
    'per-round paired ratio (the variant’s value in a round divided by raw amqplib’s value in the same round),',
    'summarized as median (min–max). † marks a cell where a measurement hit its time cap (fewer calls than',
    'planned; see Notes). See bench/README.md for how to read the spread.',
    ...(input.plan.mode === 'quick'
      ? [
          '',
          '**Quick mode**: small call counts and sub-second time caps, for checking the harness and rough ratios only; quote the full run.',
        ]
      : []),
    '',
    ...input.sections.flatMap((section) => [renderSection(section, input), '']),
    renderNotes(input),
    '',
  ].join('\n');
}
