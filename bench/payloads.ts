/** Request payloads: a small record whose JSON encoding is about the asked size. */

export type Payload = Record<string, unknown>;

const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

function filler(length: number): string {
  let text = '';
  for (let i = 0; i < length; i++) text += alphabet[(i * 7919) % alphabet.length];
  return text;
}

/** An object of a few typed fields plus a string, `JSON.stringify` of which is `bytes` long (at least ~70). */
export function makePayload(bytes: number): Payload {
  const payload = { id: 42, name: 'qam-bench', tags: ['a', 'b'], ok: true, ratio: 0.5, data: '' };
  payload.data = filler(Math.max(0, bytes - JSON.stringify(payload).length));
  return payload;
}

export function describeBytes(bytes: number): string {
  return bytes >= 1024 ? `${Math.round(bytes / 1024)} KiB` : `${bytes} B`;
}
