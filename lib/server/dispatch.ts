import { EventEmitter } from 'node:events';

/** A function the server can run. */
export type RemoteFunction = (...params: any[]) => unknown;

/** What a method path resolves to. */
export interface Target {
  readonly fn: RemoteFunction;
  readonly thisArg: object | undefined;
}

function isHiddenName(name: string): boolean {
  return name.startsWith('_') || name === 'constructor';
}

function checkName(kind: string, name: unknown): string {
  if (typeof name !== 'string' || name.length === 0 || name.includes('.') || name.startsWith('_')) {
    throw new TypeError(`${kind} name must be a non-empty string without '.' that does not start with '_'; got ${JSON.stringify(name)}`);
  }
  return name;
}

/**
 * Prototypes whose methods are never remote: Object's, and EventEmitter's, which a service class
 * often extends (its `emit` or `removeAllListeners` must not be callable by any client).
 */
const stopAt: ReadonlySet<object> = new Set([Object.prototype, EventEmitter.prototype]);

/**
 * The methods an instance exposes: functions defined by its class chain (not by Object.prototype),
 * never `constructor`, accessors, data properties or names starting with `_`. Collected once, at
 * registration, so a request can only ever reach what is in this map.
 */
function exposedMethods(instance: object): Map<string, RemoteFunction> {
  const methods = new Map<string, RemoteFunction>();
  const shadowed = new Set(Object.getOwnPropertyNames(instance));
  for (let proto = Object.getPrototypeOf(instance) as object | null; proto !== null && !stopAt.has(proto); proto = Object.getPrototypeOf(proto) as object | null) {
    for (const name of Object.getOwnPropertyNames(proto)) {
      if (isHiddenName(name) || shadowed.has(name)) continue;
      shadowed.add(name);
      const descriptor = Object.getOwnPropertyDescriptor(proto, name);
      if (descriptor !== undefined && typeof descriptor.value === 'function') {
        methods.set(name, descriptor.value as RemoteFunction);
      }
    }
  }
  return methods;
}

/** The registered functions and instances of a server, and the lookup of a request's method path. */
export class DispatchTable {
  readonly #targets = new Map<string, Target>();
  readonly #instances = new Set<string>();

  registerFunction(fn: RemoteFunction, name: string = fn.name): void {
    if (typeof fn !== 'function') throw new TypeError('registerFunction expects a function');
    this.#claim('Function', checkName('Function', name));
    this.#targets.set(name, { fn, thisArg: undefined });
  }

  registerInstance(instance: object, name: string): void {
    if (typeof instance !== 'object' || instance === null) throw new TypeError('registerClass expects an object instance');
    this.#claim('Instance', checkName('Instance', name));
    this.#instances.add(name);
    for (const [method, fn] of exposedMethods(instance)) this.#targets.set(`${name}.${method}`, { fn, thisArg: instance });
  }

  /** The target of `function` or `instance.method`, or undefined when nothing registered has that path. */
  resolve(method: string): Target | undefined {
    return this.#targets.get(method);
  }

  #claim(kind: string, name: string): void {
    if (this.#instances.has(name) || this.#targets.has(name)) {
      throw new TypeError(`${kind} name '${name}' is already registered on this server`);
    }
  }
}
