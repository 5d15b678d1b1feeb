import { DispatchTable } from '../../../lib/server/dispatch.js';

class Base {
  inherited(): string {
    return 'base';
  }
}

class Service extends Base {
  field = 1;
  arrow = (): number => 2;
  adder_function(a: number, b: number): number {
    return a + b;
  }
  get computed(): number {
    return 3;
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

  it.each(['constructor', '__proto__', '_private', 'toString', 'hasOwnProperty', 'valueOf', 'field', 'arrow', 'computed', '__defineGetter__'])(
    'never exposes my_instance.%s',
    (name) => {
      expect(table.resolve(`my_instance.${name}`)).toBeUndefined();
    },
  );

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
