import type SuperJSON from 'superjson';

/*
 * superjson's decoder trusts its input, and a few hundred bytes can cost a server seconds or
 * gigabytes:
 * - `referentialEqualities` say "the value at path B is the one at path A". Paths through paths
 *   already shared build a DAG: 25 references make an array whose unfolding (what JSON.stringify,
 *   superjson's own encoder or a function walking its argument sees) has 2^25 leaves.
 * - Each step of a path through a Set or Map walks it from its start, so a million paths into a
 *   Set of a million elements take 10^12 steps (superjson applies value annotations in the order of
 *   their keys, so flat keys reach into Sets it has already built).
 * - A path to an index past the end of an array grows it: `a.100000000` makes an array of 10^8
 *   holes that JSON.stringify writes out as 500 MB of `null`.
 * So qam checks the value annotations before superjson applies them (each path leads to a value
 * the message holds, and none reaches into a value already converted), applies the references
 * itself with every step a constant-time lookup, and then measures the value as JSON.stringify
 * would unfold it, against the size of the message: an honest encoder writes every shared value
 * out in full at each place (superjson does), so the unfolded value is never larger than the
 * message that carried it. A value that contains itself is refused: how large it unfolds depends
 * on where a walk enters it, so no single measure bounds it.
 */

type Segments = string[];

const forbiddenKeys: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

/** Deepest nesting of the annotation trees in `meta.values`. */
const maxAnnotationDepth = 64;

/**
 * superjson walks each annotation's path from the root: a key of a thousand segments above a Set
 * of ten thousand annotated elements costs ten million steps. The paths may total this many
 * segments per byte of the message. What superjson writes stays well below: 0.05 for an array of
 * objects with Dates, 0.8 for a Set of Dates 30 objects deep, 5 at 200 objects deep.
 */
const pathStepsPerByte = 16;

/**
 * Decodes the JSON text of a superjson message. Throws a TypeError saying why a message is refused.
 * @internal
 */
export function decodeSuperjson(superjson: SuperJSON, text: string): unknown {
  const message: unknown = JSON.parse(text);
  if (!isRecord(message)) throw new TypeError('a superjson message must be an object');
  const json = own(message, 'json');
  const meta = own(message, 'meta');
  if (meta === undefined) return superjson.deserialize({ json: json as never });
  if (!isRecord(meta)) throw new TypeError('superjson "meta" is not an object');
  const version = own(meta, 'v') ?? 0;
  if (typeof version !== 'number') throw new TypeError('superjson "meta.v" is not a number');
  // superjson's own rule: paths of messages before version 1 have no escapes.
  const legacy = version < 1;
  const values = own(meta, 'values');
  if (values !== undefined) checkValueAnnotations(json, values, legacy, pathStepsPerByte * text.length);
  const value = superjson.deserialize({
    json: json as never,
    meta: (values === undefined ? { v: version } : { values, v: version }) as never,
  });
  const references = own(meta, 'referentialEqualities');
  if (references === undefined) return value;
  applyReferences(value, references, legacy);
  checkUnfoldedSize(value, text.length);
  return value;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const prototype: unknown = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

function own(record: object, key: string): unknown {
  return Object.prototype.hasOwnProperty.call(record, key) ? (record as Record<string, unknown>)[key] : undefined;
}

/** superjson's path syntax: segments joined by `.`, with `\.` and `\\` escaped (not in legacy paths). */
function parsePath(text: string, legacy: boolean): Segments {
  const segments = text.includes('\\') ? parseEscapedPath(text, legacy) : text.split('.');
  for (const key of segments) if (forbiddenKeys.has(key)) throw new TypeError(`superjson path through '${key}' is not accepted`);
  return segments;
}

function parseEscapedPath(text: string, legacy: boolean): Segments {
  const segments: Segments = [];
  let segment = '';
  for (let i = 0; i < text.length; i++) {
    const char = text.charAt(i);
    const next = text.charAt(i + 1);
    if (!legacy && char === '\\' && next === '\\') {
      segment += '\\';
      i++;
    } else if (!legacy && char === '\\' && next !== '.') {
      throw new TypeError('invalid superjson path');
    } else if (char === '\\' && next === '.') {
      segment += '.';
      i++;
    } else if (char === '.') {
      segments.push(segment);
      segment = '';
    } else {
      segment += char;
    }
  }
  segments.push(segment);
  return segments;
}

/** The index a path segment names in an array of `length` elements, if it names one that exists. */
function indexIn(key: string, length: number): number | undefined {
  if (!/^(0|[1-9]\d*)$/.test(key)) return undefined;
  const index = Number(key);
  return index < length ? index : undefined;
}

/** The paths of value annotations superjson has applied, as a tree: none may reach inside another. */
class AnnotatedPaths {
  #children: Map<string, AnnotatedPaths> | undefined;
  #annotated = false;

  /** The node one segment further down; throws when this one has been annotated already. */
  enter(key: string): AnnotatedPaths {
    if (this.#annotated) throw new TypeError('superjson annotation inside a value already converted');
    this.#children ??= new Map();
    let child = this.#children.get(key);
    if (child === undefined) this.#children.set(key, (child = new AnnotatedPaths()));
    return child;
  }

  mark(): void {
    if (this.#annotated) throw new TypeError('superjson value annotated twice');
    this.#annotated = true;
  }
}

/** Where a walk through the annotations is: the path's length, the JSON value and the node it reaches. */
interface Place {
  depth: number;
  json: unknown;
  annotated: AnnotatedPaths;
}

/**
 * Walks `meta.values` in the order superjson applies it (a node's children before the node,
 * keys in object order) and checks each annotation's path against the plain JSON: it must lead to
 * a value the message holds, never into a value an earlier annotation converted (a Set, a Map, a
 * class instance), and the annotations that trust their input are refused (see serializers.ts).
 * The paths, counted from the root as superjson walks them, may total `maxSteps` segments; this
 * walk itself goes down each key once.
 */
function checkValueAnnotations(json: unknown, values: unknown, legacy: boolean, maxSteps: number): void {
  let steps = 0;
  const descend = (from: Place, key: string): Place => {
    const segments = parsePath(key, legacy);
    steps += from.depth + segments.length;
    if (steps > maxSteps)
      throw new TypeError(`superjson annotation paths longer in all than ${pathStepsPerByte} segments per byte of the message`);
    let { json: node, annotated } = from;
    for (const segment of segments) {
      annotated = annotated.enter(segment);
      if (Array.isArray(node)) {
        const index = indexIn(segment, node.length);
        if (index === undefined) throw new TypeError('superjson annotation for a value the message does not hold');
        node = node[index];
      } else if (isRecord(node) && Object.prototype.hasOwnProperty.call(node, segment)) {
        node = node[segment];
      } else {
        throw new TypeError('superjson annotation for a value the message does not hold');
      }
    }
    return { depth: from.depth + segments.length, json: node, annotated };
  };
  const annotate = (place: Place, type: unknown): void => {
    if (type === 'typed-array' || type === 'bigint' || (Array.isArray(type) && type[0] === 'typed-array')) {
      throw new TypeError(`superjson annotation '${Array.isArray(type) ? String(type[0]) : String(type)}' is not accepted`);
    }
    place.annotated.mark();
  };
  const visit = (tree: unknown, place: Place, level: number): void => {
    if (level > maxAnnotationDepth) throw new TypeError('superjson annotations nested too deeply');
    if (Array.isArray(tree)) {
      const [type, children] = tree as unknown[];
      if (children !== undefined) {
        if (!isRecord(children)) throw new TypeError('superjson annotation children are not an object');
        for (const [key, child] of Object.entries(children)) visit(child, descend(place, key), level + 1);
      }
      annotate(place, type);
    } else if (isRecord(tree)) {
      for (const [key, child] of Object.entries(tree)) visit(child, descend(place, key), level + 1);
    } else if (tree !== undefined) {
      throw new TypeError('superjson annotation is neither a list nor an object');
    }
  };
  visit(values, { depth: 0, json, annotated: new AnnotatedPaths() }, 0);
}

/**
 * Applies `referentialEqualities` as superjson would, with every path step a constant-time lookup:
 * the elements of a Set or Map are indexed once, changed in the index, and written back at the
 * end. Every path must lead to a value the message holds.
 */
function applyReferences(root: unknown, references: unknown, legacy: boolean): void {
  // superjson writes references to the root as a list; the root inside itself is a cycle.
  if (!isRecord(references)) throw new TypeError('a superjson value that contains itself is not accepted');
  const containers = new Containers();
  for (const [from, to] of Object.entries(references)) {
    if (!Array.isArray(to)) throw new TypeError('superjson references are not lists of paths');
    const value = containers.get(root, parsePath(from, legacy));
    for (const path of to) {
      if (typeof path !== 'string') throw new TypeError('superjson references are not lists of paths');
      containers.set(root, parsePath(path, legacy), value);
    }
  }
  containers.writeBack();
}

const missing = (): TypeError => new TypeError('superjson reference to a value the message does not hold');

/** Sets and Maps as arrays (of elements, of [key, value] entries) while references are applied. */
class Containers {
  readonly #sets = new Map<Set<unknown>, unknown[]>();
  readonly #maps = new Map<Map<unknown, unknown>, Array<[unknown, unknown]>>();
  readonly #changed = new Set<Set<unknown> | Map<unknown, unknown>>();

  get(root: unknown, path: Segments): unknown {
    let node = root;
    for (let i = 0; i < path.length; i++) {
      if (node instanceof Map) {
        const entry = this.#entry(node, path[i] as string, path[++i]);
        node = entry[path[i] === '0' ? 0 : 1];
      } else {
        node = this.#slot(node, path[i] as string).value;
      }
    }
    return node;
  }

  set(root: unknown, path: Segments, value: unknown): void {
    let node = root;
    for (let i = 0; i < path.length; i++) {
      const last = node instanceof Map ? i + 2 === path.length : i + 1 === path.length;
      if (node instanceof Map) {
        const entry = this.#entry(node, path[i] as string, path[++i]);
        const side = path[i] === '0' ? 0 : 1;
        if (!last) {
          node = entry[side];
          continue;
        }
        entry[side] = value;
        this.#changed.add(node);
      } else {
        const slot = this.#slot(node, path[i] as string);
        if (!last) {
          node = slot.value;
          continue;
        }
        slot.assign(value);
      }
    }
  }

  writeBack(): void {
    for (const container of this.#changed) {
      container.clear();
      if (container instanceof Set) for (const element of this.#sets.get(container) ?? []) container.add(element);
      else for (const [key, value] of this.#maps.get(container) ?? []) container.set(key, value);
    }
  }

  /** The entry of a Map a `row`, `0|1` pair of segments names (0: its key, 1: its value). */
  #entry(map: Map<unknown, unknown>, row: string, side: string | undefined): [unknown, unknown] {
    let entries = this.#maps.get(map);
    if (entries === undefined) this.#maps.set(map, (entries = [...map.entries()]));
    const index = indexIn(row, entries.length);
    if (index === undefined || (side !== '0' && side !== '1')) throw missing();
    return entries[index] as [unknown, unknown];
  }

  /** The element of an array or Set, or the own property of an object, a segment names. */
  #slot(node: unknown, key: string): { value: unknown; assign: (value: unknown) => void } {
    if (Array.isArray(node)) {
      const index = indexIn(key, node.length);
      if (index === undefined) throw missing();
      return { value: node[index], assign: (value) => (node[index] = value) };
    }
    if (node instanceof Set) {
      let elements = this.#sets.get(node);
      if (elements === undefined) this.#sets.set(node, (elements = [...node]));
      const index = indexIn(key, elements.length);
      if (index === undefined) throw missing();
      const list = elements;
      return {
        value: list[index],
        assign: (value) => {
          list[index] = value;
          this.#changed.add(node);
        },
      };
    }
    const descriptor = typeof node === 'object' && node !== null ? Object.getOwnPropertyDescriptor(node, key) : undefined;
    if (descriptor === undefined || !('value' in descriptor) || descriptor.writable !== true) throw missing();
    return { value: descriptor.value, assign: (value) => ((node as Record<string, unknown>)[key] = value) };
  }
}

/**
 * Measures `root` as JSON.stringify would unfold it, each shared value counted at every place it
 * appears, and throws once the count passes `budget` or the value turns out to contain itself.
 * Each value counts the length of the JSON superjson writes for it (see `sizeOf`), so what an
 * honest encoder sent always fits the size of its message. Each object is visited once (its count
 * is kept), so the work is linear in the decoded graph.
 */
function checkUnfoldedSize(root: unknown, budget: number): void {
  interface Frame {
    node: object;
    children: unknown[];
    next: number;
    size: number;
  }
  // The count of each object walked, or `onPath` while it is being walked.
  const sizes = new Map<object, number>();
  const onPath = -1;
  const stack: Frame[] = [];
  const tooLarge = (): TypeError => new TypeError(`superjson references unfold the value beyond the ${budget} bytes of its message`);
  const open = (node: object): void => {
    const { children, size } = partsOf(node);
    if (size > budget) throw tooLarge();
    sizes.set(node, onPath);
    stack.push({ node, children, next: 0, size });
  };
  if (typeof root !== 'object' || root === null) return;
  open(root);
  while (stack.length > 0) {
    const frame = stack[stack.length - 1] as Frame;
    if (frame.next < frame.children.length) {
      const child = frame.children[frame.next++];
      if (typeof child !== 'object' || child === null) {
        frame.size += sizeOf(child);
      } else {
        const known = sizes.get(child);
        if (known === undefined) {
          open(child);
          continue;
        }
        if (known === onPath) throw new TypeError('a superjson value that contains itself is not accepted');
        frame.size += known;
      }
      if (frame.size > budget) throw tooLarge();
      continue;
    }
    stack.pop();
    sizes.set(frame.node, frame.size);
    const parent = stack[stack.length - 1];
    if (parent !== undefined) {
      parent.size += frame.size;
      if (parent.size > budget) throw tooLarge();
    }
  }
}

/**
 * The length of the JSON superjson writes for a value other than an object, or less: a string
 * counts without its escapes, a registered symbol as an empty name, booleans, null and undefined
 * (written as null) 4.
 */
function sizeOf(value: unknown): number {
  if (typeof value === 'string') return value.length + 2;
  if (typeof value === 'number' || typeof value === 'bigint') return String(value).length;
  return typeof value === 'symbol' ? 2 : 4;
}

/**
 * The values inside an object that a walk would visit, and what the object counts by itself: its
 * brackets, separators and keys as superjson writes them (a Set as a list, a Map as a list of
 * pairs, a Date as its ISO string, a Buffer or typed array as base64).
 */
function partsOf(node: object): { children: unknown[]; size: number } {
  if (Array.isArray(node)) return { children: node, size: 1 + node.length };
  if (node instanceof Set) return { children: [...node], size: 1 + node.size };
  if (node instanceof Map) return { children: [...node].flat(), size: 1 + 4 * node.size };
  if (ArrayBuffer.isView(node)) return { children: [], size: 2 + 4 * Math.ceil(node.byteLength / 3) };
  if (node instanceof Date) return { children: [], size: isoDateLength };
  if (node instanceof RegExp) return { children: [], size: node.source.length + node.flags.length + 4 };
  let size = 1;
  for (const key of Object.keys(node)) size += key.length + 4;
  return { children: Object.values(node), size };
}

/** `"2000-01-01T00:00:00.000Z"`, quotes included. */
const isoDateLength = 26;
