/**
 * The shape of lib/: imports go one way (no cycles between modules), and only the amqplib adapter
 * imports amqplib.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const lib = join(root, 'lib');

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return /\.(ts|js)$/.test(name) ? [path] : [];
  });
}

/** Module → the modules and packages it imports (value or type imports alike). */
function importGraph(): Map<string, { modules: string[]; packages: string[] }> {
  const graph = new Map<string, { modules: string[]; packages: string[] }>();
  for (const file of sources(lib)) {
    const text = readFileSync(file, 'utf8');
    const specifiers = [...text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^;]*?from\s+['"]([^'"]+)['"]/g)].map((match) => match[1] ?? '');
    const modules = specifiers
      .filter((spec) => spec.startsWith('.'))
      .map((spec) => relative(lib, resolve(dirname(file), spec)).replace(/\.js$/, '.ts'));
    const packages = specifiers.filter((spec) => !spec.startsWith('.') && !spec.startsWith('node:'));
    graph.set(relative(lib, file).replace(/\.js$/, '.ts'), { modules, packages });
  }
  return graph;
}

function cycles(graph: Map<string, { modules: string[] }>): string[][] {
  const found: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const visit = (node: string, path: string[]): void => {
    if (state.get(node) === 'done') return;
    if (state.get(node) === 'open') {
      found.push([...path.slice(path.indexOf(node)), node]);
      return;
    }
    state.set(node, 'open');
    for (const next of graph.get(node)?.modules ?? []) visit(next, [...path, node]);
    state.set(node, 'done');
  };
  for (const node of graph.keys()) visit(node, []);
  return found;
}

describe('lib/', () => {
  const graph = importGraph();

  it('has no import cycles', () => {
    expect(cycles(graph)).toEqual([]);
  });

  it('imports amqplib only in the amqplib adapter', () => {
    const importers = [...graph].filter(([, { packages }]) => packages.some((name) => name === 'amqplib')).map(([module]) => module);
    expect(importers.length).toBeGreaterThan(0);
    expect(importers.filter((module) => !module.startsWith('amqp/amqplib'))).toEqual([]);
  });

  it('keeps the wire formats and the port free of the proxy and the server', () => {
    const upward = [...graph].flatMap(([module, { modules }]) =>
      module.startsWith('protocols/') || module.startsWith('amqp/')
        ? modules.filter((target) => target.startsWith('proxy/') || target.startsWith('server/')).map((target) => `${module} -> ${target}`)
        : [],
    );
    expect(upward).toEqual([]);
  });
});
