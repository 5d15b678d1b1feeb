import { callmeClientProtocol } from '../../../lib/protocols/callme/client.js';
import { qamClientProtocol } from '../../../lib/protocols/qam/client.js';
import { serializerNamed } from '../../../lib/serializers.js';

const qam = (): ReturnType<typeof qamClientProtocol> =>
  qamClientProtocol({ serverId: 's', clientId: 'c', expiresMs: undefined, maxBytes: 1024 });

describe('call ids no other party can guess', () => {
  it('QAM ids start at a random point below 2^52 and count up by one, as safe integers', () => {
    const starts = Array.from({ length: 100 }, () => Number(qam().nextId()));
    expect(new Set(starts).size).toBe(100);
    expect(starts.every((id) => Number.isSafeInteger(id) && id >= 1 && id <= 2 ** 52)).toBe(true);
    // 100 draws of 52 random bits: all below 2^51, or all above a millisecond clock in
    // microseconds, would each happen once in 2^100 runs.
    expect(starts.some((id) => id > 2 ** 51)).toBe(true);
    expect(starts.some((id) => Math.abs(id - Date.now() * 1000) > 10 ** 12)).toBe(true);
    const protocol = qam();
    const first = Number(protocol.nextId());
    const next = Array.from({ length: 1000 }, () => Number(protocol.nextId()));
    expect(next).toEqual(Array.from({ length: 1000 }, (_, i) => first + i + 1));
  });

  it('callme call ids share nothing with the reply names they are sent with', () => {
    const protocol = callmeClientProtocol({
      serverId: 's',
      user: 'guest',
      serializer: serializerNamed('json'),
      maxBytes: 1024,
      errorClasses: new Map(),
    });
    const uid = protocol.replyQueue.slice('client_guest_queue_'.length);
    const ids = [protocol.nextId(), protocol.nextId()];
    const request = protocol.request(ids[0]!, 'add', [1, 2], Date.now() + 1000);
    expect(request.properties.replyTo).toBe(`client_guest_ex_${uid}`);
    expect(request.properties.correlationId).toBe(ids[0]);
    for (const id of ids) {
      expect(id).not.toContain(uid);
      expect(id).toMatch(/^[\w-]{22}\.[0-9a-z]+$/);
    }
    expect(ids[0]!.split('.')[0]).toBe(ids[1]!.split('.')[0]);
  });
});
