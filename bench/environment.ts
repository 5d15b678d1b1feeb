/** What the report says about the machine and software a run measured. */

import { readFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';

/** The project root (this module runs as dist/bench/environment.js). */
export const projectRoot = fileURLToPath(new URL('../../', import.meta.url));

export const libraries = ['amqplib', 'rabbitmq-client', '@cloudamqp/amqp-client', 'superjson'] as const;

export interface Environment {
  date: string;
  node: string;
  os: string;
  cpus: string;
  memory: string;
  versions: Record<string, string>;
  broker: string;
  loadBefore: number[];
  loadAfter: number[];
}

function versionOf(packageJson: string): string {
  try {
    return (JSON.parse(readFileSync(packageJson, 'utf8')) as { version?: string }).version ?? '?';
  } catch {
    return 'not installed';
  }
}

export function describeEnvironment(broker: string): Environment {
  const cpus = os.cpus();
  const versions: Record<string, string> = { qam: versionOf(`${projectRoot}package.json`) };
  for (const name of libraries) versions[name] = versionOf(`${projectRoot}node_modules/${name}/package.json`);
  return {
    date: new Date().toISOString(),
    node: process.version,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    cpus: `${cpus.length} × ${cpus[0]?.model.trim() ?? 'unknown CPU'}`,
    memory: `${Math.round(os.totalmem() / 2 ** 30)} GiB`,
    versions,
    broker,
    loadBefore: os.loadavg(),
    loadAfter: [],
  };
}
