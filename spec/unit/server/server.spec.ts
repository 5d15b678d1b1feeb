/**
 * A QAMServer's dispatch over a fake of the AMQP port: what it declares and consumes, when it
 * acknowledges, what it answers, what it refuses to run again, how it closes.
 */
import { jest } from '@jest/globals';
import { PortError } from '../../../lib/amqp/port.js';
import { turns } from '../../support/fake-port.js';
import { callmeExchange, directAddress, requestQueue, serving, type Served } from './helpers.js';

let served: Served[] = [];
async function start(...args: Parameters<typeof serving>): Promise<Served> {
  const server = await serving(...args);
  served.push(server);
  return server;
}
/** 'returned' when `promise` settles within a generous bound (its own time is not what is measured), else 'hung'. */
async function soon(promise: Promise<unknown>): Promise<'returned' | 'hung'> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<'hung'>((resolve) => (timer = setTimeout(resolve, 5_000, 'hung')));
  const outcome = await Promise.race([promise.then(() => 'returned' as const), hung]);
  clearTimeout(timer);
  return outcome;
}

afterEach(async () => {
  jest.useRealTimers();
  for (const server of served) await server.close();
  served = [];
});

describe('QAMServer dispatch', () => {
  it('declares its queue, sets the prefetch to its worker count and consumes with acknowledgements', async () => {
    const { port } = await start({ workers: 3 });
    expect(port.operations).toEqual(
      expect.arrayContaining([
        `declareQueue ${requestQueue}`,
        'declareExchange server_calc_ex direct',
        `bindQueue ${requestQueue} server_calc_ex calc`,
      ]),
    );
    const consumer = port.consumers.get(requestQueue);
    expect(consumer?.options.noAck).toBe(false);
    expect(consumer?.channel.prefetchCount).toBe(3);
  });

  it('answers a request at its reply address with its correlation id, and acknowledges it only once the reply is confirmed', async () => {
    const { port, request, replies } = await start();
    port.autoConfirm = false;
    const { deliveryTag } = request('add', [2, 3], { replyTo: directAddress(1), correlationId: 'c-1' });
    await port.until(() => port.published.length >= 1);
    const [reply] = replies();
    expect(reply).toMatchObject({ target: directAddress(1), body: { result: 5 } });
    expect(reply!.message.properties).toMatchObject({ correlationId: 'c-1', contentType: 'application/json' });
    await turns();
    expect(port.published).toHaveLength(1);
    expect(port.acked.has(deliveryTag)).toBe(false);
    reply!.message.confirm();
    await port.until(() => port.acked.has(deliveryTag));
  });

  it('with ack onReceipt, acknowledges a request as its worker takes it, before it finishes', async () => {
    const { port, request, open } = await start({ ack: 'onReceipt' });
    const { deliveryTag } = request('gated', [], { replyTo: directAddress(1), correlationId: 'c' });
    expect(port.acked.has(deliveryTag)).toBe(true);
    open();
    await port.until(() => port.published.length >= 1);
  });

  it('runs a request without a reply address and acknowledges it, publishing nothing', async () => {
    const { port, request, ran } = await start();
    const { deliveryTag } = request('add', [1, 1]);
    await port.until(() => port.acked.has(deliveryTag));
    expect(ran).toEqual(['add']);
    expect(port.published).toHaveLength(0);
  });

  it('answers a method nothing is registered under with METHOD_NOT_FOUND, and a malformed request with BAD_MESSAGE', async () => {
    const { port, request, replies, ran } = await start();
    const missing = request('constructor', [], { replyTo: directAddress(1), correlationId: 'a' });
    await port.until(() => port.acked.has(missing.deliveryTag));
    const garbage = port.deliver(requestQueue, Buffer.from('{"params":'), {
      contentType: 'application/json',
      replyTo: directAddress(1),
      correlationId: 'b',
    });
    await port.until(() => port.acked.has(garbage.deliveryTag));
    expect(replies().map(({ body }) => (body as { error: { code: string } }).error.code)).toEqual(['METHOD_NOT_FOUND', 'BAD_MESSAGE']);
    expect(ran).toEqual([]);
  });

  it('answers what a function throws as an error reply', async () => {
    const { port, request, replies } = await start();
    const { deliveryTag } = request('fail', [], { replyTo: callmeExchange(1), correlationId: 'c' });
    await port.until(() => port.acked.has(deliveryTag));
    expect(replies()[0]).toMatchObject({ target: callmeExchange(1), body: { error: { message: 'failed' } } });
  });

  it("skips a request whose caller's time ran out, acknowledging it without an answer", async () => {
    const { port, server, request, ran } = await start();
    const { deliveryTag } = request('add', [1, 2], { replyTo: directAddress(1), correlationId: 'c', expiration: '0' });
    await port.until(() => port.acked.has(deliveryTag));
    expect(ran).toEqual([]);
    expect(port.published).toHaveLength(0);
    expect(server.stats().expired).toBe(1);
  });

  it('runs at most `workers` calls at once', async () => {
    const { port, request, ran, open } = await start({ workers: 2 });
    for (let i = 0; i < 3; i++) request('gated', [], { replyTo: directAddress(1), correlationId: `c${i}` });
    await turns();
    expect(ran).toEqual(['gated', 'gated']);
    open();
    await port.until(() => ran.length === 3);
    open();
    open();
    await port.until(() => port.acked.size === 3);
  });

  it('runs a redelivered request whose reply was never refused (redelivered after an ordinary reconnect)', async () => {
    const { port, request, ran } = await start();
    const { deliveryTag } = request('add', [1, 2], { replyTo: directAddress(1), correlationId: 'c' }, { redelivered: true });
    await port.until(() => port.acked.has(deliveryTag));
    expect(ran).toEqual(['add']);
  });

  it('drops a redelivered request whose reply made the broker close the connection, without running it again', async () => {
    const { port, request, ran } = await start();
    port.autoConfirm = false;
    const properties = { replyTo: directAddress(666), correlationId: 'poison' };
    const first = request('add', [1, 2], properties);
    await port.until(() => port.published.length >= 1);
    // RabbitMQ 3.10 closes the whole connection (541) on a reply to a direct address it cannot decode.
    port.published[0]!.fail(new PortError('internal', 'INTERNAL_ERROR', { replyCode: 541, connection: true }));
    await port.until(() => port.acked.has(first.deliveryTag));
    const again = request('add', [1, 2], properties, { redelivered: true });
    await port.until(() => port.acked.has(again.deliveryTag));
    expect(ran).toEqual(['add']);
    expect(port.published).toHaveLength(1);
    // Other requests are still served.
    port.autoConfirm = true;
    const other = request('add', [2, 2], { replyTo: directAddress(1), correlationId: 'c' });
    await port.until(() => port.acked.has(other.deliveryTag));
    expect(ran).toEqual(['add', 'add']);
  });

  it('consumes again, after a backoff, when the broker cancels its consumer or closes its channel', async () => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
    const { port } = await start();
    const first = port.consumers.get(requestQueue)!;
    port.cancelConsumer(requestQueue);
    await turns();
    expect(port.consumers.has(requestQueue)).toBe(false);
    await jest.advanceTimersByTimeAsync(1_000);
    await port.until(() => port.consumers.has(requestQueue));
    const second = port.consumers.get(requestQueue)!;
    expect(second.channel).not.toBe(first.channel);
    second.channel.closeWith(new PortError('precondition-failed', 'PRECONDITION_FAILED - unknown delivery tag 1', { replyCode: 406 }));
    await turns();
    expect(port.consumers.has(requestQueue)).toBe(false);
    await jest.advanceTimersByTimeAsync(30_000);
    await port.until(() => port.consumers.has(requestQueue));
  });

  it('declares its exchange again when a periodic check finds it gone', async () => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
    const { port } = await start();
    let gone = true;
    port.refuse = (operation, name) =>
      operation === 'checkExchange' && name === 'server_calc_ex' && gone
        ? new PortError('not-found', `NOT_FOUND - no exchange '${name}'`, { replyCode: 404 })
        : undefined;
    const declared = port.operations.filter((operation) => operation === 'declareExchange server_calc_ex direct').length;
    await jest.advanceTimersByTimeAsync(5_000);
    await port.until(
      () => port.operations.filter((operation) => operation === 'declareExchange server_calc_ex direct').length === declared + 1,
    );
    gone = false;
    await jest.advanceTimersByTimeAsync(5_000);
    await turns();
    expect(port.operations.filter((operation) => operation === 'checkExchange server_calc_ex')).toHaveLength(2);
    expect(port.operations.filter((operation) => operation === 'declareExchange server_calc_ex direct')).toHaveLength(declared + 1);
  });

  it('close() stops consuming, lets running calls reply and be acknowledged, then closes its channels', async () => {
    const { port, server, request, open } = await start();
    const { deliveryTag } = request('gated', [], { replyTo: directAddress(1), correlationId: 'c' });
    const consumer = port.consumers.get(requestQueue)!;
    const closed = jest.fn();
    const closing = server.close().then(closed);
    await turns();
    expect(port.consumers.has(requestQueue)).toBe(false);
    expect(closed).not.toHaveBeenCalled();
    open();
    await closing;
    expect(port.acked.has(deliveryTag)).toBe(true);
    expect(port.published).toHaveLength(1);
    expect(consumer.channel.closed).toBe(true);
  });

  it('close() returns promptly while the broker blocks the connection, leaving what runs unacknowledged', async () => {
    const { port, server, main, request } = await start();
    const { deliveryTag } = request('gated', [], { replyTo: directAddress(1), correlationId: 'c' });
    main.block();
    // The fake broker never answers while it blocks: a close() that waits for it would never return.
    await expect(soon(server.close())).resolves.toBe('returned');
    expect(port.acked.has(deliveryTag)).toBe(false);
  });
});
