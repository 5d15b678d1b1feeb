import type { StandardSchemaV1 } from '@standard-schema/spec';
import { z } from 'zod';
import { QAMInvalidParamsException, type ParamsSchema } from '../../../lib/index.js';
import { isParamsSchema, paramsValidator } from '../../../lib/server/validation.js';

/** A hand-made Standard Schema, as any library other than zod would give. */
function schemaOf<T>(
  check: (value: unknown) => StandardSchemaV1.Result<T> | Promise<StandardSchemaV1.Result<T>>,
): StandardSchemaV1<unknown, T> {
  return { '~standard': { version: 1, vendor: 'spec', validate: check } };
}

const even = schemaOf<number>((value) =>
  typeof value === 'number' && value % 2 === 0 ? { value } : { issues: [{ message: 'not even', path: [{ key: 'n' }] }] },
);

function refusal(run: () => unknown): QAMInvalidParamsException {
  try {
    run();
  } catch (error) {
    if (error instanceof QAMInvalidParamsException) return error;
    throw error;
  }
  throw new Error('no refusal');
}

describe('params validation', () => {
  it('tells schemas from other values', () => {
    expect(isParamsSchema(z.number())).toBe(true);
    expect(isParamsSchema([z.number(), even])).toBe(true);
    expect(isParamsSchema([])).toBe(true);
    expect(isParamsSchema({ parse: () => 1 })).toBe(false);
    expect(isParamsSchema([z.number(), 'x'])).toBe(false);
    expect(isParamsSchema({ '~standard': { version: 2, validate: () => ({ value: 1 }) } })).toBe(false);
  });

  it('validates synchronously when the schemas do, with paths from the param index', () => {
    const validate = paramsValidator([even, z.string()]);
    expect(validate('f', [2, 'x'])).toEqual([2, 'x']);
    const error = refusal(() => validate('f', [3, 4]));
    expect(error.code).toBe('INVALID_PARAMS');
    expect(error.issues).toEqual([
      { message: 'not even', path: [0, 'n'] },
      { message: expect.any(String), path: [1] },
    ]);
    expect(error.message).toMatch(/^Invalid params for f: 0\.n: not even; 1: /);
  });

  it('validates a tuple schema whole, and refuses one whose output is not an array', () => {
    expect(paramsValidator(z.tuple([z.number()]))('f', [1])).toEqual([1]);
    expect(refusal(() => paramsValidator(z.tuple([z.number()]))('f', ['1'])).issues[0]?.path).toEqual([0]);
    expect(refusal(() => paramsValidator(z.object({}) as unknown as ParamsSchema)('f', [])).message).toMatch(/Invalid params for f/);
    expect(refusal(() => paramsValidator(z.any().transform(() => 5) as unknown as ParamsSchema)('f', [])).message).toMatch(
      /did not produce an array/,
    );
  });

  it('returns a promise when a schema is asynchronous', async () => {
    const later = schemaOf<string>(async (value) => (value === 'ok' ? { value } : { issues: [{ message: 'not ok' }] }));
    const validate = paramsValidator([later]);
    await expect(validate('f', ['ok'])).resolves.toEqual(['ok']);
    await expect(validate('f', ['no'])).rejects.toMatchObject({ code: 'INVALID_PARAMS', issues: [{ message: 'not ok', path: [0] }] });
  });

  it('leaves out trailing optional params the caller did not send', () => {
    expect(paramsValidator([z.number(), z.number().optional()])('f', [1])).toEqual([1]);
  });
});
