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

/** The same fields the server sends in an error reply (envelope.ts `errorToPayload`). */
function errorPayload(error, depth) {
  if (!(error instanceof Error)) return { name: 'Error', message: describe(error) };
  const payload = { name: String(error.name), message: String(error.message) };
  if (typeof error.code === 'string') payload.code = error.code;
  if (Array.isArray(error.args) && clonable(error.args)) payload.args = error.args;
  if (typeof error.stack === 'string') payload.stack = error.stack;
  if (error.cause !== undefined && depth < causeDepthLimit) payload.cause = errorPayload(error.cause, depth + 1);
  return payload;
}

function clonable(value) {
  try {
    structuredClone(value);
    return true;
  } catch {
    return false;
  }
}

function describe(value) {
  if (value instanceof Error) return `${value.name}: ${value.message}`;
  try {
    return String(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}
