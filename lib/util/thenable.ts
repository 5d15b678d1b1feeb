/**
 * A value `await` would wait for: an object or function with a `then` method. Reading `then` may
 * throw (a hostile getter); callers that run user code call this inside their `try`.
 * @internal
 */
export function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    ((typeof value === 'object' && value !== null) || typeof value === 'function') &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}
