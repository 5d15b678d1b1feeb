/**
 * What piscina runs on each worker thread of a QAMServer (see thread-pool.ts): imports the
 * registered module, calls the export with the request's params and hands back the outcome in a
 * form structured clone carries whole. Structured clone would turn a thrown custom error into a
 * plain `Error` without its `code`, and a result it cannot clone would kill the thread inside
 * piscina; both are caught here. Plain JavaScript, so it runs as it is from lib/ and from dist/lib.
 */

const causeDepthLimit = 4;

/**
 * @param {{ href: string, exportName: string, params: unknown[] }} task
 * @returns {Promise<{ result: unknown } | { error: object } | { unsendable: string }>}
 */
export async function call({ href, exportName, params }) {
  let result;
  try {
    const fn = (await import(href))[exportName];
    if (typeof fn !== 'function') throw new TypeError(`${href} exports no function named '${exportName}'`);
    result = await fn(...params);
  } catch (error) {
    return { error: errorPayload(error, 0) };
  }
  try {
    // Cloned once here too: a failure inside piscina's postMessage would end the thread instead.
    structuredClone(result);
  } catch (error) {
    return { unsendable: describe(error) };
  }
  return { result };
}

/**
 * The same fields the server sends in an error reply (envelope.ts `errorToPayload`), read the same
 * careful way: a thrown value whose getters or Proxy traps throw gives what could be read.
 */
function errorPayload(error, depth) {
  if (!attempt(() => error instanceof Error, false)) return { name: 'Error', message: describe(error) };
  const read = (key) => attempt(() => error[key], undefined);
  const name = read('name');
  const payload = { name: typeof name === 'string' ? name : 'Error', message: describe(read('message')) };
  const code = read('code');
  if (typeof code === 'string') payload.code = code;
  const args = read('args');
  if (attempt(() => Array.isArray(args), false) && clonable(args)) payload.args = args;
  const stack = read('stack');
  if (typeof stack === 'string') payload.stack = stack;
  const cause = read('cause');
  if (cause !== undefined && depth < causeDepthLimit) payload.cause = errorPayload(cause, depth + 1);
  return payload;
}

/** What `run` returns, or `fallback` when it throws. */
function attempt(run, fallback) {
  try {
    return run();
  } catch {
    return fallback;
  }
}

function clonable(value) {
  return attempt(() => {
    structuredClone(value);
    return true;
  }, false);
}

function describe(value) {
  if (typeof value === 'string') return value;
  return attempt(() => String(value), `[unprintable ${typeof value}]`);
}
