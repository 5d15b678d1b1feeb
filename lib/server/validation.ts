import type { StandardSchemaV1 } from '@standard-schema/spec';
import { QAMInvalidParamsException, describeError, serverRaised, type ParamsIssue } from '../errors.js';
import { clip } from '../log-guard.js';
import { isThenable } from '../util/thenable.js';

/**
 * What validates a function's params: one Standard Schema for the whole params array (a tuple
 * schema: `z.tuple([z.number(), z.number()])`), or one per positional param
 * (`[z.number(), z.number()]`). Any library implementing Standard Schema works: zod, valibot,
 * ArkType, …
 */
export type ParamsSchema<P extends readonly unknown[] = unknown[]> =
  StandardSchemaV1<unknown, P> | { readonly [K in keyof P]: StandardSchemaV1<unknown, P[K]> };

/** Validates a call's params: the params to run with (the schemas' output), or a promise of them; throws or rejects with QAMInvalidParamsException. @internal */
export type ParamsValidator = (method: string, params: unknown[]) => unknown[] | Promise<unknown[]>;

/** True for a Standard Schema (of any vendor). @internal */
export function isStandardSchema(value: unknown): value is StandardSchemaV1 {
  if ((typeof value !== 'object' && typeof value !== 'function') || value === null) return false;
  const props: unknown = (value as Record<string, unknown>)['~standard'];
  return (
    typeof props === 'object' &&
    props !== null &&
    (props as Record<string, unknown>)['version'] === 1 &&
    typeof (props as Record<string, unknown>)['validate'] === 'function'
  );
}

/** True for what {@link ParamsSchema} allows. @internal */
export function isParamsSchema(value: unknown): boolean {
  return isStandardSchema(value) || (Array.isArray(value) && value.every(isStandardSchema));
}

/** The validator of a schema checked by {@link isParamsSchema}. @internal */
export function paramsValidator(schema: ParamsSchema): ParamsValidator {
  if (isStandardSchema(schema)) {
    return (method, params) => settle(method, schema['~standard'].validate(params), []);
  }
  const schemas = schema as readonly StandardSchemaV1[];
  return (method, params) => {
    if (params.length > schemas.length) {
      throw invalid(method, [{ message: `expected at most ${schemas.length} params, got ${params.length}` }]);
    }
    const results = schemas.map((item, index) => item['~standard'].validate(params[index]));
    if (!results.some(isThenable)) return combine(method, results as StandardSchemaV1.Result<unknown>[]);
    return Promise.all(results).then((settled) => combine(method, settled));
  };
}

function settle(
  method: string,
  result: StandardSchemaV1.Result<unknown> | Promise<StandardSchemaV1.Result<unknown>>,
  prefix: PropertyKey[],
): unknown[] | Promise<unknown[]> {
  const take = (outcome: StandardSchemaV1.Result<unknown>): unknown[] => {
    if (outcome.issues !== undefined)
      throw invalid(
        method,
        outcome.issues.map((issue) => issueOf(issue, prefix)),
      );
    if (!Array.isArray(outcome.value)) throw invalid(method, [{ message: 'the params schema did not produce an array' }]);
    return outcome.value;
  };
  return isThenable(result) ? Promise.resolve(result).then(take) : take(result);
}

function combine(method: string, results: readonly StandardSchemaV1.Result<unknown>[]): unknown[] {
  const issues: ParamsIssue[] = [];
  const values = results.map((result, index) => {
    if (result.issues !== undefined) issues.push(...result.issues.map((issue) => issueOf(issue, [index])));
    return result.issues === undefined ? result.value : undefined;
  });
  if (issues.length > 0) throw invalid(method, issues);
  // A trailing param the caller left out stays absent when its schema let it be undefined.
  while (values.length > 0 && values[values.length - 1] === undefined) values.pop();
  return values;
}

function issueOf(issue: StandardSchemaV1.Issue, prefix: readonly PropertyKey[]): ParamsIssue {
  const message = typeof issue.message === 'string' ? issue.message : describeError(issue.message);
  const path = [...prefix, ...(issue.path ?? [])].map((segment) => {
    const key = typeof segment === 'object' && segment !== null ? segment.key : segment;
    return typeof key === 'number' ? key : String(key);
  });
  return path.length > 0 ? { message, path } : { message };
}

function invalid(method: string, issues: ParamsIssue[]): QAMInvalidParamsException {
  const listed = issues.map((issue) => (issue.path === undefined ? issue.message : `${issue.path.join('.')}: ${issue.message}`));
  return serverRaised(new QAMInvalidParamsException(clip(`Invalid params for ${method}: ${listed.join('; ')}`, 1024), issues));
}
