import { QAMAbortException, currentCall } from '../../lib/index.js';
import { brokers } from '../support/brokers.js';

/** What a long server function saw of its signal. */
interface Seen {
  aborted: boolean;
  reason: unknown;
  afterMs: number;
}

/**
 * A caller's cancel reaches the server instance running the call, when the call asked for a
 * started notice: the function's `currentCall().signal` aborts long before the deadline.
 */
describe.each(brokers)('cancelling a running call on %s', (_name, useBroker) => {
  const broker = useBroker();

  /** A server whose `wait` runs until its signal aborts or `release()`; `seen` resolves with what it saw. */
  function waitingServer(replies: 'direct' | 'callme' = 'direct') {
    let started: () => void = () => undefined;
    const running = new Promise<void>((resolve) => (started = resolve));
    let release: () => void = () => undefined;
    let seen: (value: Seen) => void = () => undefined;
    const outcome = new Promise<Seen>((resolve) => (seen = resolve));
    const server = broker.server().registerFunction(async () => {
      const signal = currentCall()!.signal;
      const at = Date.now();
      started();
      await new Promise<void>((resolve) => {
        release = resolve;
        signal.addEventListener('abort', () => resolve(), { once: true });
      });
      seen({ aborted: signal.aborted, reason: signal.reason, afterMs: Date.now() - at });
      return 'done';
    }, 'wait');
    return { server, running, outcome, release: () => release(), replies };
  }

  it.each(['direct', 'callme'] as const)(
    'withSignal: the function sees signal.aborted (QAMAbortException) well before the 60 s deadline (replies %s)',
    async (replies) => {
      const { server, running, outcome } = waitingServer(replies);
      await server.serve();
      const proxy = broker.proxy<{ wait(): string }>({ serverId: server.serverId, timeout: 60, replies });
      const controller = new AbortController();
      let noticed: (instanceId: string) => void = () => undefined;
      const notice = new Promise<string>((resolve) => (noticed = resolve));
      const call = proxy
        .withStartNotice((_uid, instanceId) => noticed(instanceId))
        .withSignal(controller.signal)
        .wait();
      await running;
      // Without the notice the proxy would not know which instance runs the call.
      expect(await notice).toBe(server.instanceId);
      controller.abort();
      await expect(call).rejects.toBeInstanceOf(QAMAbortException);
      const seen = await outcome;
      expect(seen).toMatchObject({ aborted: true, reason: expect.any(QAMAbortException) });
      expect((seen.reason as Error).message).toBe('The caller of wait cancelled it');
      expect(seen.afterMs).toBeLessThan(30_000);
    },
  );

  it('proxy.cancel(uid) in callback mode reaches the instance too', async () => {
    const { server, running, outcome } = waitingServer();
    await server.serve();
    const proxy = broker.proxy<{ wait(): string }>({ serverId: server.serverId, timeout: 60 });
    const errors: unknown[] = [];
    let noticed = false;
    const uid = proxy
      .withStartNotice(() => (noticed = true))
      .callback(
        () => undefined,
        (error) => errors.push(error),
      )
      .wait();
    await running;
    while (!noticed) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(proxy.cancel(uid)).toBe(true);
    await expect(outcome).resolves.toMatchObject({ aborted: true });
    expect(errors).toEqual([expect.any(QAMAbortException)]);
  });

  it('a call that did not ask for a notice sends no cancel: the function runs on', async () => {
    const { server, running, outcome, release } = waitingServer();
    await server.serve();
    const proxy = broker.proxy<{ wait(): string }>({ serverId: server.serverId, timeout: 60 });
    const controller = new AbortController();
    const call = proxy.withSignal(controller.signal).wait();
    await running;
    controller.abort();
    await expect(call).rejects.toBeInstanceOf(QAMAbortException);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(server.stats().active).toBe(1);
    release();
    await expect(outcome).resolves.toMatchObject({ aborted: false });
  });
});
