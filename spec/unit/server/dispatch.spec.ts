import { AsyncResource } from 'node:async_hooks';
import { Blob } from 'node:buffer';
import { EventEmitter, EventEmitterAsyncResource } from 'node:events';
import { Duplex, PassThrough, Readable, Stream, Transform, Writable } from 'node:stream';
import { ReadableStream, TransformStream, WritableStream } from 'node:stream/web';
import { DispatchTable } from '../../../lib/server/dispatch.js';

class Base {
  inherited(): string {
    return 'base';
  }
}

class Service extends Base {
  field = 1;
  arrow = (): number => 2;
  native = Math.max;
  constructor() {
    super();
    this.bound = this.bound.bind(this);
  }
  adder_function(a: number, b: number): number {
    return a + b;
  }
  get computed(): number {
    return 3;
  }
  get handler(): (x: number) => number {
    return (x) => x * 2;
  }
  get throwing(): () => number {
    throw new Error('read');
  }
  bound(): string {
    return 'bound';
  }
  _private(): string {
    return 'secret';
  }
}

describe('DispatchTable', () => {
  const table = new DispatchTable();
  table.registerInstance(new Service(), 'my_instance');
  table.registerFunction(function add(a: number, b: number) {
    return a + b;
  });

  it('finds functions by name and instance methods along the class chain', () => {
    expect(table.resolve('add')).toBeDefined();
    expect(table.resolve('my_instance.adder_function')).toBeDefined();
    expect(table.resolve('my_instance.inherited')).toBeDefined();
  });

  it('exposes what the types promise: arrow-function fields, accessors returning a function, a method bound in the constructor', () => {
    const call = (path: string): unknown => {
      const target = table.resolve(path);
      return target?.fn.apply(target.thisArg, [21]);
    };
    expect(call('my_instance.arrow')).toBe(2);
    expect(call('my_instance.handler')).toBe(42);
    expect(table.resolve('my_instance.bound')?.fn).toBe(Service.prototype.bound);
    expect(call('my_instance.bound')).toBe('bound');
  });

  it("exposes an object literal's own functions", () => {
    const literal = new DispatchTable();
    literal.registerInstance({ double: (x: number) => x * 2, value: 1 }, 'lit');
    expect(literal.resolve('lit.double')?.fn(4)).toBe(8);
    expect(literal.resolve('lit.value')).toBeUndefined();
  });

  it.each([
    'constructor',
    '__proto__',
    '_private',
    'toString',
    'hasOwnProperty',
    'valueOf',
    'field',
    'native',
    'computed',
    'throwing',
    '__defineGetter__',
  ])('never exposes my_instance.%s', (name) => {
    expect(table.resolve(`my_instance.${name}`)).toBeUndefined();
  });

  it.each(['constructor', '__proto__', 'toString', 'my_instance', 'add.call'])('never resolves %s at the top level', (name) => {
    expect(table.resolve(name)).toBeUndefined();
  });

  it('refuses bad and duplicate names at registration', () => {
    expect(() => table.registerFunction(() => 1, 'a.b')).toThrow(TypeError);
    expect(() => table.registerFunction(() => 1, '_hidden')).toThrow(TypeError);
    expect(() => table.registerFunction(() => 1, 'add')).toThrow(/already registered/);
    expect(() => table.registerInstance(new Service(), 'add')).toThrow(/already registered/);
    expect(() => table.registerFunction(() => 1, '')).toThrow(TypeError);
  });
});

/** `registerClass` of an instance of `Base` subclassed twice: both subclasses' methods, nothing of Base. */
function exposedOfSubclass(Base: new (...args: any[]) => object, args: unknown[] = []): { table: DispatchTable; builtIns: string[] } {
  class Mine extends Base {
    own(): string {
      return 'own';
    }
  }
  class Leaf extends Mine {
    leaf(): string {
      return 'leaf';
    }
  }
  const table = new DispatchTable();
  table.registerInstance(new Leaf(...args), 'store');
  const builtIns = new Set<string>();
  for (let proto: object | null = Base.prototype; proto !== null; proto = Object.getPrototypeOf(proto) as object | null) {
    for (const name of Object.getOwnPropertyNames(proto)) builtIns.add(name);
  }
  return { table, builtIns: [...builtIns] };
}

describe('DispatchTable with a class extending a built-in', () => {
  it.each<[string, new (...args: any[]) => object, unknown[]]>([
    ['Map', Map, []],
    ['Set', Set, []],
    ['WeakMap', WeakMap, []],
    ['Array', Array, []],
    ['Promise', Promise, [() => undefined]],
    ['Error', Error, []],
    ['TypeError', TypeError, []],
    ['Date', Date, []],
    ['RegExp', RegExp, ['x']],
    ['Uint8Array', Uint8Array, [4]],
    ['ArrayBuffer', ArrayBuffer, [4]],
    ['EventEmitter', EventEmitter, []],
    ['EventTarget', EventTarget, []],
    ['AbortController', AbortController, []],
    ['URL', URL, ['http://x']],
    ['URLSearchParams', URLSearchParams, []],
    ['Event', Event, ['x']],
    ['Blob', Blob, [[]]],
    ['TextEncoder', TextEncoder, []],
    ['TextDecoder', TextDecoder, []],
    ['ReadableStream', ReadableStream, []],
    ['WritableStream', WritableStream, []],
    ['TransformStream', TransformStream, []],
    ['Stream', Stream, []],
    ['Writable', Writable, []],
    ['Duplex', Duplex, []],
    ['PassThrough', PassThrough, []],
    ['EventEmitterAsyncResource', EventEmitterAsyncResource, [{ name: 'spec' }]],
    ['Readable', Readable, []],
    ['Transform', Transform, []],
    ['AsyncResource', AsyncResource, ['spec']],
  ])('exposes the methods of a %s subclass chain and none of the built-in ones', (_name, Base, args) => {
    const { table, builtIns } = exposedOfSubclass(Base, args);
    expect(table.resolve('store.own')).toBeDefined();
    expect(table.resolve('store.leaf')).toBeDefined();
    expect(builtIns.length).toBeGreaterThan(1);
    expect(builtIns.filter((name) => table.resolve(`store.${name}`) !== undefined)).toEqual([]);
  });

  it('never exposes clear, set or delete of a Map subclass, nor a native method copied onto a class', () => {
    class Store extends Map<string, number> {
      total(): number {
        return [...this.values()].reduce((sum, value) => sum + value, 0);
      }
    }
    Object.defineProperty(Store.prototype, 'wipe', { value: Map.prototype.clear, writable: true, configurable: true });
    const table = new DispatchTable();
    table.registerInstance(new Store(), 'store');
    for (const name of ['clear', 'set', 'delete', 'get', 'has', 'forEach', 'entries', 'wipe'])
      expect(table.resolve(`store.${name}`)).toBeUndefined();
    expect(table.resolve('store.total')).toBeDefined();
  });

  it('exposes methods of a plain prototype object, and not those of a generator object', () => {
    const table = new DispatchTable();
    table.registerInstance(Object.create({ hello: () => 'hi' }) as object, 'plain');
    table.registerInstance(
      (function* numbers() {
        yield 1;
      })(),
      'numbers',
    );
    expect(table.resolve('plain.hello')).toBeDefined();
    for (const name of ['next', 'return', 'throw']) expect(table.resolve(`numbers.${name}`)).toBeUndefined();
  });
});
