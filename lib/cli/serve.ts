/**
 * `qam serve`: a module's exports become a server's functions and instances.
 * @internal
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { QAMServer } from '../server/server.js';

/** What `qam serve` made of one export. */
export interface Served {
  readonly registered: string[];
  /** Exports left out, with why. */
  readonly skipped: string[];
}

/** True for a class (its source starts with `class`): called without `new`, it would throw. */
function isClass(value: unknown): boolean {
  return typeof value === 'function' && /^class[\s{]/.test(Function.prototype.toString.call(value));
}

/** True for an object made by a class (its prototype is neither Object's nor null). */
function isClassInstance(value: unknown): value is object {
  if (typeof value !== 'object' || value === null) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto !== null && proto !== Object.prototype;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === null || proto === Object.prototype;
}

/** A function's own string `description` property: what `qam serve` registers as its description. */
function descriptionOf(fn: object): string | undefined {
  const description = Object.getOwnPropertyDescriptor(fn, 'description')?.value as unknown;
  return typeof description === 'string' ? description : undefined;
}

/** Imports the module at `path` (relative to the working directory, or a `file:` URL). */
export async function importModule(path: string): Promise<Record<string, unknown>> {
  const href = path.startsWith('file:') ? path : pathToFileURL(resolve(path)).href;
  return (await import(href)) as Record<string, unknown>;
}

/**
 * Registers a module's exports on `server`: each exported function under its export name (with
 * the function's own `description` property, when a string, as its description), each class
 * instance as an instance of that name; a default export that is a plain object contributes its
 * entries the same way. Names starting with `_`, classes themselves and other values are skipped.
 */
export function registerExports(server: QAMServer, exports: Readonly<Record<string, unknown>>): Served {
  const registered: string[] = [];
  const skipped: string[] = [];
  const entries = Object.entries(exports).flatMap(([name, value]) =>
    name === 'default' && isPlainObject(value) ? Object.entries(value) : [[name, value] as const],
  );
  for (const [name, value] of entries) {
    if (name.startsWith('_')) continue;
    if (isClass(value)) {
      skipped.push(`${name} (a class: export an instance of it)`);
    } else if (typeof value === 'function') {
      const description = descriptionOf(value);
      server.registerFunction(value as (...params: unknown[]) => unknown, name, description === undefined ? {} : { description });
      registered.push(name);
    } else if (isClassInstance(value)) {
      server.registerClass(value, name);
      registered.push(name);
    } else {
      skipped.push(`${name} (neither a function nor a class instance)`);
    }
  }
  return { registered, skipped };
}
