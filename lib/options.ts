/**
 * Checks the option objects of public constructors and methods at the door, before anything
 * connects: an unknown key (a misspelt option would otherwise silently keep its default) or a value
 * of the wrong type is a TypeError naming the option. `undefined` stands for an absent option.
 * @internal
 */

import { isParamsSchema } from './server/validation.js';

/** Where a value was found, for the error: `QAMProxy`, option `ssl.servername`. */
export interface OptionPlace {
  readonly owner: string;
  readonly path: string;
}

/** Checks the value of one option, which is not undefined; throws a TypeError when it is wrong. */
export type Rule = (value: unknown, at: OptionPlace) => void;

/** A rule for every option of `T`: an option added to the type and not here is a compile error. */
export type Rules<T> = { readonly [K in keyof T]-?: Rule };

/**
 * Renames the aliases among `options` (QAM's and callme's spellings, `alias: name`) to the names
 * they stand for; the options must have passed {@link checkOptions}. Giving both spellings of one
 * option is a TypeError. Returns `options` itself when it holds no alias.
 */
export function resolveAliases<T extends object>(owner: string, options: T, aliases: Readonly<Record<string, string>>): T {
  let resolved: Record<string, unknown> | undefined;
  for (const [alias, name] of Object.entries(aliases)) {
    if (!Object.hasOwn(options, alias)) continue;
    resolved ??= { ...(options as Record<string, unknown>) };
    const value = resolved[alias];
    delete resolved[alias];
    if (value === undefined) continue;
    if (resolved[name] !== undefined) {
      throw new TypeError(`Options '${name}' and '${alias}' of ${owner} are one option spelt two ways: give one of them`);
    }
    resolved[name] = value;
  }
  return (resolved ?? options) as T;
}

/** Options whose values an error must not repeat. */
const secretPattern = /password|passphrase|key$/i;

function describeValue(value: unknown, path: string): string {
  const type = Array.isArray(value) ? 'array' : value === null ? 'null' : typeof value;
  if (secretPattern.test(path) || (type !== 'string' && type !== 'number' && type !== 'boolean')) return `a value of type ${type}`;
  const shown = type === 'string' ? JSON.stringify(value) : String(value);
  return `${shown.length > 80 ? `${shown.slice(0, 80)}…` : shown} (${type})`;
}

/** The TypeError of an option whose value is not what `expected` says. */
export function optionError(at: OptionPlace, expected: string, value: unknown): TypeError {
  return new TypeError(`Option '${at.path}' of ${at.owner} must be ${expected}, got ${describeValue(value, at.path)}`);
}

/** A rule from a test and the description of what passes it. */
export function rule(expected: string, test: (value: unknown) => boolean): Rule {
  return (value, at) => {
    if (!test(value)) throw optionError(at, expected, value);
  };
}

/** Node timers and AMQP `expiration` take whole milliseconds below 2^31. */
const maxSeconds = (2 ** 31 - 1) / 1000;

export const anyString = rule('a string', (value) => typeof value === 'string');
export const nonEmptyString = rule('a non-empty string', (value) => typeof value === 'string' && value !== '');
export const boolean = rule('true or false', (value) => typeof value === 'boolean');
export const positiveInteger = rule('a positive integer', (value) => Number.isSafeInteger(value) && (value as number) > 0);
/** A duration: a positive number of seconds (fractions allowed) that a timer can hold. */
export const seconds = rule(
  `a positive number of seconds up to ${maxSeconds}`,
  (value) => typeof value === 'number' && value > 0 && value <= maxSeconds,
);
/** A duration that may be zero. */
export const secondsOrZero = rule(
  `a number of seconds from 0 up to ${maxSeconds}`,
  (value) => typeof value === 'number' && value >= 0 && value <= maxSeconds,
);

export function integerBetween(min: number, max: number): Rule {
  return rule(
    `an integer from ${min} to ${max}`,
    (value) => Number.isInteger(value) && (value as number) >= min && (value as number) <= max,
  );
}

export function oneOf(...allowed: string[]): Rule {
  const expected = allowed.map((value) => `'${value}'`).join(' or ');
  return rule(expected, (value) => typeof value === 'string' && allowed.includes(value));
}

export function arrayOf(item: Rule, expected: string): Rule {
  return (value, at) => {
    if (!Array.isArray(value)) throw optionError(at, expected, value);
    value.forEach((element, index) => item(element, { owner: at.owner, path: `${at.path}[${index}]` }));
  };
}

/** A Standard Schema (zod, valibot, …) or an array of them, one per param. */
export const paramsSchema = rule('a Standard Schema (zod, valibot, …) or an array of them, one per param', isParamsSchema);

/** An object whose every value passes `item`. */
export function record(item: Rule, expected: string): Rule {
  return (value, at) => {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw optionError(at, expected, value);
    for (const [key, element] of Object.entries(value)) {
      if (element !== undefined) item(element, { owner: at.owner, path: `${at.path}.${key}` });
    }
  };
}

/** A nested option object, checked key by key like the options it sits in. */
export function nested<T>(rules: Rules<T>): Rule {
  return (value, at) => checkOptions(at.owner, value, rules, at.path);
}

/**
 * Checks `options` against `rules`: it must be a plain object whose every key has a rule, and every
 * value that is not undefined must pass its rule.
 * @param owner what the options are for, as the caller wrote it: `QAMProxy`, `QAMServer.close`
 * @param prefix the path of a nested option object, e.g. `ssl`
 */
export function checkOptions<T>(owner: string, options: unknown, rules: Rules<T>, prefix = ''): asserts options is T {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new TypeError(
      prefix === ''
        ? `The options of ${owner} must be an object, got ${describeValue(options, '')}`
        : `Option '${prefix}' of ${owner} must be an object, got ${describeValue(options, prefix)}`,
    );
  }
  const known: Readonly<Record<string, Rule>> = rules;
  for (const [key, value] of Object.entries(options)) {
    const path = prefix === '' ? key : `${prefix}.${key}`;
    const check = Object.hasOwn(known, key) ? known[key] : undefined;
    if (check === undefined) throw new TypeError(unknownOption(owner, path, key, Object.keys(known)));
    if (value !== undefined) check(value, { owner, path });
  }
}

function unknownOption(owner: string, path: string, key: string, known: string[]): string {
  const guess = closest(key, known);
  const hint = guess === undefined ? `; the options are ${known.join(', ')}` : `; did you mean '${guess}'?`;
  return `Unknown option '${path}' of ${owner}${hint}`;
}

/**
 * The known name `name` was probably meant to be: the same in another case (`hostName`), a longer
 * name it begins (`host`), or one at most two edits away (`wrokers`, `tls`).
 */
export function closest(name: string, known: readonly string[]): string | undefined {
  const lower = name.toLowerCase();
  const sameCase = known.find((candidate) => candidate.toLowerCase() === lower);
  if (sameCase !== undefined) return sameCase;
  if (lower.length >= 3) {
    const extended = known.find((candidate) => candidate.toLowerCase().startsWith(lower));
    if (extended !== undefined) return extended;
  }
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of known) {
    if (Math.abs(candidate.length - lower.length) >= bestDistance) continue;
    const distance = editDistance(lower, candidate.toLowerCase());
    if (distance < bestDistance && distance < candidate.length) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

/** Levenshtein distance (insertions, deletions, substitutions). */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}
