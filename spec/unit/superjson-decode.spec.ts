import { isDeepStrictEqual } from 'node:util';
import SuperJSON from 'superjson';
import { serializerNamed, superjson } from '../../lib/serializers.js';

/**
 * The superjson serializer decodes with work and a value bounded by the size of the message:
 * references cannot unfold a value beyond it, and no path walks a Set or an array it should not.
 */

const serializer = serializerNamed('superjson');
const decode = (message: unknown): unknown => serializer.decode(Buffer.from(JSON.stringify(message)));

/** The 2 KB request of the report: 25 references, each sharing the level below twice, 2^25 paths. */
function dagRequest(levels: number): { json: unknown; meta: unknown } {
  let node: unknown = [0, 0];
  for (let level = 1; level < levels; level++) node = [node, 0];
  const references: Record<string, string[]> = {};
  let path = 'params.0';
  for (let level = 1; level < levels; level++) {
    references[`${path}.0`] = [`${path}.1`];
    path += '.0';
  }
  return { json: { method: 'echo', params: [node] }, meta: { referentialEqualities: references, v: 1 } };
}

/** Counts the steps of every Set and Map iterator while `run` runs: the work of walking them. */
function iteratorSteps(run: () => void): number {
  const prototypes = [Object.getPrototypeOf(new Set().values()), Object.getPrototypeOf(new Map().values())] as Array<{
    next: () => unknown;
  }>;
  const originals = prototypes.map((prototype) => prototype.next);
  let steps = 0;
  prototypes.forEach((prototype, i) => {
    const next = originals[i] as () => unknown;
    prototype.next = function (this: unknown) {
      steps++;
      return next.call(this);
    };
  });
  try {
    run();
  } finally {
    prototypes.forEach((prototype, i) => (prototype.next = originals[i] as () => unknown));
  }
  return steps;
}

describe('superjson references', () => {
  it('refuse a 2 KB message whose references unfold into 2^25 values', () => {
    const message = dagRequest(25);
    expect(JSON.stringify(message).length).toBeLessThan(2500);
    expect(() => decode(message)).toThrow(/unfold/);
  });

  it('accept references that unfold into no more than the message holds', () => {
    const shared = { name: 'shared', list: [1, 2, 3] };
    const value = { a: shared, b: [shared, shared], set: new Set([shared]), map: new Map([[shared, shared]]) };
    const back = serializer.decode(serializer.encode(value)) as typeof value;
    expect(back).toEqual(value);
    expect(back.b[0]).toBe(back.a);
    expect(back.b[1]).toBe(back.a);
    expect([...back.set][0]).toBe(back.a);
    expect([...back.map.keys()][0]).toBe(back.a);
    expect([...back.map.values()][0]).toBe(back.a);
  });

  it('count a shared string at every place it appears', () => {
    const references = { 'a.0': ['a.1', 'a.2', 'a.3', 'a.4', 'a.5', 'a.6', 'a.7', 'a.8', 'a.9'] };
    const message = { json: { a: ['x'.repeat(1000), 0, 0, 0, 0, 0, 0, 0, 0, 0] }, meta: { referentialEqualities: references, v: 1 } };
    expect(() => decode(message)).toThrow(/unfold/);
  });

  it('refuse a value that contains itself', () => {
    const cyclic: Record<string, unknown> = { name: 'loop' };
    cyclic['self'] = cyclic;
    expect(() => serializer.decode(serializer.encode({ params: [cyclic] }))).toThrow(/contains itself/);
    expect(() => serializer.decode(serializer.encode(cyclic))).toThrow(/contains itself/);
  });

  it.each<[string, unknown]>([
    ['past the end of an array', { json: { a: [1], b: {} }, meta: { referentialEqualities: { b: ['a.100000000'] }, v: 1 } }],
    ['a key the object does not have', { json: { a: {}, b: 1 }, meta: { referentialEqualities: { b: ['a.added'] }, v: 1 } }],
    ['from a value the message does not hold', { json: { a: [] }, meta: { referentialEqualities: { 'a.5': ['a.0'] }, v: 1 } }],
    ['through the prototype', { json: { a: {} }, meta: { referentialEqualities: { a: ['a.__proto__.polluted'] }, v: 1 } }],
    [
      'a Map entry with no key or value side',
      { json: { m: [[1, 2]] }, meta: { values: { m: ['map'] }, referentialEqualities: { 'm.0.1': ['m.0.2'] }, v: 1 } },
    ],
  ])('refuse a path %s', (_label, message) => {
    expect(() => decode(message)).toThrow(TypeError);
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  });

  it('walk each Set and Map once, however many references reach into it', () => {
    const n = 3000;
    const references: Record<string, string[]> = {};
    for (let i = 0; i < n; i++) references[`s.${n - 1 - i}`] = [`b.${i}`];
    references[`m.${n - 1}.1`] = ['c'];
    const message = {
      json: {
        s: Array.from({ length: n }, (_, i) => ({ i })),
        m: Array.from({ length: n }, (_, i) => [i, { i }]),
        b: Array<number>(n).fill(0),
        c: 0,
      },
      meta: { values: { s: ['set'], m: ['map'] }, referentialEqualities: references, v: 1 },
    };
    let value: { b: unknown[]; s: Set<unknown> } | undefined;
    const steps = iteratorSteps(() => (value = decode(message) as typeof value));
    expect(steps).toBeLessThan(10 * n);
    expect(value?.b[0]).toBe([...(value?.s ?? [])][n - 1]);
  });
});

describe('superjson value annotations', () => {
  it('may not reach into a value an earlier annotation converted', () => {
    const n = 3000;
    const values: Record<string, unknown> = { s: ['set'] };
    for (let i = 0; i < n; i++) values[`s.${n - 1 - i}`] = ['number'];
    const message = { json: { s: Array.from({ length: n }, (_, i) => String(i)) }, meta: { values, v: 1 } };
    let refused: unknown;
    const steps = iteratorSteps(() => {
      try {
        decode(message);
      } catch (error) {
        refused = error;
      }
    });
    expect(refused).toBeInstanceOf(TypeError);
    expect(steps).toBeLessThan(10 * n);
  });

  it.each<[string, unknown]>([
    ['past the end of an array', { json: { a: [] }, meta: { values: { 'a.100000000': ['undefined'] }, v: 1 } }],
    ['to a key the object does not have', { json: { a: {} }, meta: { values: { 'a.b': ['undefined'] }, v: 1 } }],
  ])('may not point %s', (_label, message) => {
    expect(() => decode(message)).toThrow(TypeError);
  });

  it('may not make superjson walk a long path again for each of many values', () => {
    const depth = 3000;
    const count = 5000;
    const json = `{"params":[${'{"a":'.repeat(depth)}${JSON.stringify(Array<null>(count).fill(null))}${'}'.repeat(depth)}]}`;
    const children = Object.fromEntries(Array.from({ length: count }, (_, i) => [String(i), ['undefined']]));
    const values = { [`params.0${'.a'.repeat(depth)}`]: ['set', children] };
    const text = `{"json":${json},"meta":${JSON.stringify({ values, v: 1 })}}`;
    expect(() => serializer.decode(Buffer.from(text))).toThrow(/segments per byte/);
  });

  it('refuse an annotation applied twice to one value', () => {
    expect(() => decode({ json: { a: { b: [] } }, meta: { values: { a: { b: ['set'] }, 'a.b': ['map'] }, v: 1 } })).toThrow(/twice/);
  });

  it('still read what superjson writes: nested Sets and Maps, classes, Dates, typed arrays, legacy paths', () => {
    class Point {
      constructor(
        public x: number,
        public y: number,
      ) {}
    }
    superjson.registerClass(Point, { identifier: 'spec.Point' });
    const inner = new Set([new Date(0), 'a.b', 'c\\d']);
    const value = {
      'dotted.key': new Map<unknown, unknown>([[inner, new Map([['k', new Point(1, 2)]])]]),
      nested: [inner, new Set([new Set([1n, undefined])])],
      bytes: new Float32Array([1.5]),
      point: new Point(3, 4),
    };
    const back = serializer.decode(serializer.encode(value)) as typeof value;
    expect(back).toEqual(value);
    expect(back.point).toBeInstanceOf(Point);
    expect(back.nested[0]).toBe([...back['dotted.key'].keys()][0]);
    // superjson before version 1 wrote paths without escapes; its messages still read.
    expect(decode({ json: { a: [1] }, meta: { values: { a: ['set'] } } })).toEqual({ a: new Set([1]) });
  });
});

describe('superjson decoding of random values', () => {
  /** A small PRNG, so a failure names its seed. */
  function random(seed: number): () => number {
    let state = seed;
    return () => {
      state = (state * 1103515245 + 12345) % 2147483648;
      return state / 2147483648;
    };
  }

  /** A random value of plain data, Sets, Maps, Dates and shared objects (no cycles). */
  function randomValue(next: () => number): unknown {
    const pool: object[] = [];
    const build = (depth: number): unknown => {
      const pick = next();
      if (pool.length > 0 && pick < 0.15) return pool[Math.floor(next() * pool.length)];
      if (depth > 3 || pick < 0.35) {
        const leaves = [
          1,
          'text',
          null,
          true,
          undefined,
          new Date(Math.floor(next() * 1e12)),
          2.5,
          /a.b/gi,
          NaN,
          new Date(Date.UTC(12000, 0)),
        ];
        return leaves[Math.floor(next() * leaves.length)];
      }
      const size = Math.floor(next() * 4);
      const children = Array.from({ length: size }, () => build(depth + 1));
      const kind = Math.floor(next() * 4);
      let made: object;
      if (kind === 0) made = children;
      else if (kind === 1) made = Object.fromEntries(children.map((child, i) => [`k${i}.${i}`, child]));
      else if (kind === 2) made = new Set(children);
      else made = new Map(children.map((child, i) => [i % 2 === 0 ? child : `key${i}`, child]));
      pool.push(made);
      return made;
    };
    return build(0);
  }

  // superjson's own decoder gets some of these wrong: it replaces a shared element of a Set by
  // deleting and re-adding it, which moves it, so later paths into that Set reach the wrong element
  // (or nothing, and it throws).
  // And its format cannot always say what is shared (a reference into the copy of a shared value
  // that a later reference replaces is lost). Wherever superjson reads back the value and its
  // sharing exactly, qam must too.
  it('round-trip 500 random values, with their sharing wherever superjson’s own decoder keeps it', () => {
    const reference = new SuperJSON();
    let compared = 0;
    for (let seed = 1; seed <= 500; seed++) {
      const value = { params: [randomValue(random(seed))] };
      const text = superjson.stringify(value);
      const back = serializer.decode(Buffer.from(text));
      expect({ seed, value: back }).toEqual({ seed, value });
      let theirs: unknown;
      try {
        theirs = reference.parse(text);
      } catch {
        continue;
      }
      if (!isDeepStrictEqual(theirs, value) || !isDeepStrictEqual(sharing(theirs), sharing(value))) continue;
      compared++;
      expect({ seed, shape: sharing(back) }).toEqual({ seed, shape: sharing(value) });
    }
    expect(compared).toBeGreaterThan(400);
  });
});

describe('superjson references at random', () => {
  function random(seed: number): () => number {
    let state = seed;
    return () => {
      state = (state * 1103515245 + 12345) % 2147483648;
      return state / 2147483648;
    };
  }

  // JSON.stringify of an accepted value is never longer than the message: each value counts what
  // its JSON takes. (Small trees, so that a failure unfolds into thousands of values, not billions.)
  it('either refuse a message or decode a value whose JSON is no longer than the message', () => {
    let accepted = 0;
    let refused = 0;
    for (let seed = 1; seed <= 300; seed++) {
      const next = random(seed);
      const paths: string[] = [];
      const build = (path: string, depth: number): unknown => {
        paths.push(path);
        if (depth > 5 || next() < 0.2) return Math.floor(next() * 1000);
        return Array.from({ length: 1 + Math.floor(next() * 3) }, (_, i) => build(`${path}.${i}`, depth + 1));
      };
      const json = { method: 'echo', params: [build('params.0', 0)] };
      const references: Record<string, string[]> = {};
      for (let i = 0; i < 12; i++) {
        const from = paths[Math.floor(next() * paths.length)] as string;
        (references[from] ??= []).push(paths[Math.floor(next() * paths.length)] as string);
      }
      const text = JSON.stringify({ json, meta: { referentialEqualities: references, v: 1 } });
      let value: unknown;
      try {
        value = serializer.decode(Buffer.from(text));
      } catch (error) {
        expect(error).toBeInstanceOf(TypeError);
        refused++;
        continue;
      }
      accepted++;
      expect({ seed, length: JSON.stringify(value).length <= text.length }).toEqual({ seed, length: true });
    }
    expect(accepted).toBeGreaterThan(30);
    expect(refused).toBeGreaterThan(30);
  });
});

/** Which places of a value hold the same object, as a list of place-number groups. */
function sharing(root: unknown): number[][] {
  const places = new Map<object, number[]>();
  let counter = 0;
  const walk = (value: unknown): void => {
    const place = counter++;
    if (typeof value !== 'object' || value === null) return;
    const seen = places.get(value);
    if (seen !== undefined) {
      seen.push(place);
      return;
    }
    places.set(value, [place]);
    if (value instanceof Map) {
      for (const [key, item] of value) {
        walk(key);
        walk(item);
      }
    } else if (value instanceof Set || Array.isArray(value)) for (const item of value) walk(item);
    else if (!(value instanceof Date)) for (const item of Object.values(value)) walk(item);
  };
  walk(root);
  return [...places.values()].filter((group) => group.length > 1);
}
