import { AsyncResource } from 'node:async_hooks';
import { Blob } from 'node:buffer';
import { EventEmitter, EventEmitterAsyncResource } from 'node:events';
import { Duplex, PassThrough, Readable, Stream, Transform, Writable } from 'node:stream';
import { ReadableStream, TransformStream, WritableStream } from 'node:stream/web';
import { URL, URLSearchParams } from 'node:url';
import { TextDecoder, TextEncoder } from 'node:util';
import type { ParamsValidator } from './validation.js';

/** A function the server can run. */
export type RemoteFunction = (...params: any[]) => unknown;

/** What a method path resolves to. */
export interface Target {
  readonly fn: RemoteFunction;
  readonly thisArg: object | undefined;
  /** Checks the params before the function runs, when a schema was registered for it. */
  readonly validate: ParamsValidator | undefined;
  /** What introspection says of it: its parameter count (undefined when unknown) and description. */
  readonly info: MethodInfo;
}

/** What a server's introspection tells of one registered method. */
export interface MethodInfo {
  /** The parameters the function declares (its `length`: those before the first default or rest parameter); absent when unknown. */
  readonly params?: number;
  /** The description given at registration. */
  readonly description?: string;
}

/** The introspection entry of one method. */
export interface RemoteMethod extends MethodInfo {
  /** The path a proxy calls: `function` or `instance.method`. */
  readonly name: string;
}

/**
 * A server's answer to introspection (`proxy.getRemoteMethods()`, `qam methods`): its id, the
 * instance that answered, and every method it serves.
 */
export interface ServerDescription {
  readonly serverId: string;
  /** The server object that answered (`server.instanceId`); several may serve one id. */
  readonly instanceId: string;
  /** Sorted by name. */
  readonly methods: readonly RemoteMethod[];
}

/** The introspection entry of a method: `params` undefined when the count is unknown. */
export function methodInfo(params: number | undefined, description: string | undefined): MethodInfo {
  if (params === undefined) return description === undefined ? {} : { description };
  return description === undefined ? { params } : { params, description };
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

/** True for a function whose body is not JavaScript source: the engine's or Node's C++, or a bound function. */
function isNativeFunction(value: unknown): boolean {
  return typeof value === 'function' && /\{\s*\[native code\]\s*\}\s*$/.test(Function.prototype.toString.call(value));
}

/**
 * Prototypes of the classes Node writes in JavaScript (so their constructors are not native code)
 * that a service class may extend. Other classes of Node's modules (a net.Socket) are not listed:
 * a class extending one exposes that class's methods too.
 */
const nodeClasses: ReadonlySet<object> = new Set<object>(
  [
    EventEmitter,
    EventEmitterAsyncResource,
    AsyncResource,
    Stream,
    Readable,
    Writable,
    Duplex,
    Transform,
    PassThrough,
    ReadableStream,
    WritableStream,
    TransformStream,
    EventTarget,
    Event,
    AbortController,
    AbortSignal,
    URL,
    URLSearchParams,
    Blob,
    TextEncoder,
    TextDecoder,
  ].map((constructor) => constructor.prototype as object),
);

/**
 * A prototype the language or Node defines, where an instance's own class chain ends: one whose
 * `constructor` is native code (Object, Map, Set, Array, Promise, Error, Date, typed arrays, …)
 * or one of {@link nodeClasses}. Its methods (a Map's `clear`, an EventEmitter's `emit`) work on
 * the instance's internals and are never remote.
 */
function isBuiltIn(proto: object): boolean {
  if (nodeClasses.has(proto)) return true;
  return isNativeFunction(Object.getOwnPropertyDescriptor(proto, 'constructor')?.value);
}

/** The function a member holds, when it is one a client may call: JavaScript source, not native code. */
function callable(value: unknown): RemoteFunction | undefined {
  return typeof value === 'function' && !isNativeFunction(value) ? (value as RemoteFunction) : undefined;
}

/**
 * The methods an instance exposes, collected once at registration so a request can only ever
 * reach what is in this map. TypeScript gives a method, an arrow-function field and an accessor
 * returning a function the same type, so all three are exposed, as the proxy's types promise:
 * - the instance's own function-valued properties (arrow-function class fields, an object
 *   literal's functions);
 * - functions its own class chain defines, up to the first built-in prototype (see
 *   {@link isBuiltIn});
 * - accessors of that chain whose getter, read once here, returns a function.
 * Never native code (a built-in's method copied onto a class, a bound function: a method bound in
 * the constructor exposes the method it binds), `constructor` or names starting with `_`.
 */
function exposedMethods(instance: object): Map<string, RemoteFunction> {
  const methods = new Map<string, RemoteFunction>();
  const shadowed = new Set<string>();
  for (const name of Object.getOwnPropertyNames(instance)) {
    if (isHiddenName(name)) continue;
    const descriptor = Object.getOwnPropertyDescriptor(instance, name);
    // A bound or native own function leaves the name to the class chain: `this.m = this.m.bind(this)`.
    if (descriptor !== undefined && 'value' in descriptor && isNativeFunction(descriptor.value)) continue;
    shadowed.add(name);
    const fn = descriptor !== undefined && 'value' in descriptor ? callable(descriptor.value) : undefined;
    if (fn !== undefined) methods.set(name, fn);
  }
  for (
    let proto = Object.getPrototypeOf(instance) as object | null;
    proto !== null && !isBuiltIn(proto);
    proto = Object.getPrototypeOf(proto) as object | null
  ) {
    for (const name of Object.getOwnPropertyNames(proto)) {
      if (isHiddenName(name) || shadowed.has(name)) continue;
      shadowed.add(name);
      const descriptor = Object.getOwnPropertyDescriptor(proto, name);
      const fn = descriptor?.get !== undefined ? readAccessor(instance, descriptor.get) : callable(descriptor?.value);
      if (fn !== undefined) methods.set(name, fn);
    }
  }
  return methods;
}

/** What an accessor's getter returns on the instance, when it is a function a client may call. */
function readAccessor(instance: object, get: () => unknown): RemoteFunction | undefined {
  let value: unknown;
  try {
    value = get.call(instance);
  } catch {
    return undefined;
  }
  return callable(value);
}

/** The registered functions and instances of a server, and the lookup of a request's method path. */
export class DispatchTable {
  readonly #targets = new Map<string, Target>();
  readonly #instances = new Set<string>();

  /** @param info what introspection says of it: by default the function's `length` as its parameter count */
  registerFunction(fn: RemoteFunction, name: string = fn.name, validate?: ParamsValidator, info?: MethodInfo): void {
    if (typeof fn !== 'function') throw new TypeError('registerFunction expects a function');
    this.#claim('Function', checkName('Function', name));
    this.#targets.set(name, { fn, thisArg: undefined, validate, info: info ?? { params: fn.length } });
  }

  /**
   * @param validators by method name; a name the instance does not expose is a TypeError
   * @param descriptions by method name, likewise
   */
  registerInstance(
    instance: object,
    name: string,
    validators: ReadonlyMap<string, ParamsValidator> = new Map(),
    descriptions: ReadonlyMap<string, string> = new Map(),
  ): void {
    if (typeof instance !== 'object' || instance === null) throw new TypeError('registerClass expects an object instance');
    this.#claim('Instance', checkName('Instance', name));
    const methods = exposedMethods(instance);
    for (const [what, names] of [
      ['validate the params of', validators.keys()],
      ['describe', descriptions.keys()],
    ] as const) {
      for (const method of names) {
        if (!methods.has(method)) throw new TypeError(`registerClass: '${name}' exposes no method '${method}' to ${what}`);
      }
    }
    this.#instances.add(name);
    for (const [method, fn] of methods) {
      const info = methodInfo(fn.length, descriptions.get(method));
      this.#targets.set(`${name}.${method}`, { fn, thisArg: instance, validate: validators.get(method), info });
    }
  }

  /** Every callable path with what introspection tells of it, sorted by path. */
  list(): RemoteMethod[] {
    return [...this.#targets.entries()]
      .map(([name, target]) => ({ name, ...target.info }))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
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
