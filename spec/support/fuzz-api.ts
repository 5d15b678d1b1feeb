/**
 * The API a fuzzed server serves, and the oracle of what may run. Every registered function
 * returns its result tagged with its path (`{ ran: 'calc.mul', value }`), so a result reply that
 * lacks a registered tag came from something that was not registered (an inherited member, say).
 * Canaries — the instance's hidden names (a method and an accessor), its static method, a
 * function's own property — count every run; none may ever run. Its arrow-function field and
 * its accessor returning a function are registered: the proxy's types promise them.
 */
import { currentCall, type QAMServer } from '../../lib/index.js';
import { registeredPaths } from './fuzz-messages.js';

/** What ran on a fuzzed server. */
export interface Tally {
  /** Runs of registered functions, by path. */
  calls: Map<string, number>;
  /** Runs of what is not registered but reachable by name from what is. */
  canary: number;
}

export function newTally(): Tally {
  return { calls: new Map(), canary: 0 };
}

/** Runs of registered functions, all paths together. */
export function registeredCalls(tally: Tally): number {
  let total = 0;
  for (const count of tally.calls.values()) total += count;
  return total;
}

/** A result a registered function returned. */
export interface Tagged {
  ran: string;
  value: unknown;
}

/** True when `result` is what a registered function returns. */
export function isTagged(result: unknown): result is Tagged {
  return (
    typeof result === 'object' &&
    result !== null &&
    Object.prototype.hasOwnProperty.call(result, 'ran') &&
    (registeredPaths as readonly string[]).includes((result as { ran: unknown }).ran as string)
  );
}

/** The error the registered `throws` and `calc.fail` raise; proxies may register it to rebuild. */
export class FuzzError extends Error {
  override name = 'FuzzError';
  readonly code = 'FUZZ';
}

/** Registers the fuzz API on `server`: functions echo, add, throws, later, whoami and instance calc. */
export function registerFuzzApi<S extends QAMServer<object>>(server: S, tally: Tally): S {
  const ran = (path: string, value: unknown): Tagged => {
    tally.calls.set(path, (tally.calls.get(path) ?? 0) + 1);
    return { ran: path, value };
  };
  const canary = (): string => {
    tally.canary++;
    return 'canary';
  };

  class Base {
    base_method(value: unknown): Tagged {
      return ran('calc.base_method', value);
    }
  }
  class Calc extends Base {
    arrow = (value: unknown): Tagged => ran('calc.arrow', value);

    static create(): string {
      return canary();
    }

    get prop(): string {
      return 'data';
    }

    get accessor(): (value: unknown) => Tagged {
      return (value) => ran('calc.accessor', value);
    }

    get _hidden(): () => string {
      canary();
      return canary;
    }

    mul(a: unknown, b: unknown): Tagged {
      return ran('calc.mul', Number(a) * Number(b));
    }

    echo(value: unknown): Tagged {
      return ran('calc.echo', value);
    }

    async fail(message: unknown): Promise<never> {
      ran('calc.fail', undefined);
      throw new FuzzError(String(message));
    }

    _secret(): string {
      return canary();
    }
  }
  // `constructor` must not be callable either: make it a function that counts, not a class.
  Object.defineProperty(Calc.prototype, 'constructor', { value: canary, writable: true, configurable: true });

  const echo = (value: unknown): Tagged => ran('echo', value);
  Object.assign(echo, { secret: canary });
  server
    .registerFunction(echo, 'echo')
    .registerFunction((a: unknown, b: unknown): Tagged => ran('add', typeof a === 'number' && typeof b === 'number' ? a + b : null), 'add')
    .registerFunction((message: unknown): never => {
      ran('throws', undefined);
      throw Object.assign(new Error(typeof message === 'string' ? message : 'thrown'), { args: [message] });
    }, 'throws')
    .registerFunction(async (value: unknown): Promise<Tagged> => {
      await new Promise((resolve) => setImmediate(resolve));
      return ran('later', value);
    }, 'later')
    .registerFunction((): Tagged => {
      const call = currentCall();
      return ran('whoami', { method: call?.method, redelivered: call?.redelivered, deadline: call?.deadline ?? null });
    }, 'whoami')
    .registerClass(new Calc(), 'calc');
  return server;
}

const guarded = [
  Object.prototype,
  Array.prototype,
  Function.prototype,
  String.prototype,
  Number.prototype,
  Boolean.prototype,
  Promise.prototype,
  Error.prototype,
  Map.prototype,
  Set.prototype,
];

/** The own keys of the built-in prototypes, to compare before and after a run. */
export function prototypeKeys(): string[] {
  return guarded.flatMap((proto, index) => Reflect.ownKeys(proto).map((key) => `${index}:${String(key)}`));
}

/** Keys added to a built-in prototype since `before`, and properties every object now inherits. */
export function pollution(before: readonly string[]): string[] {
  const known = new Set(before);
  const added = prototypeKeys().filter((key) => !known.has(key));
  const probe = {} as Record<string, unknown>;
  for (const name of ['polluted', 'method', 'params', 'result', 'error', 'id', 'x']) {
    if (probe[name] !== undefined) added.push(`inherited:${name}`);
  }
  return added;
}
