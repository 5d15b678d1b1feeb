import { cancelQueue, isCancelQueueOf, replyRoute } from '../../../lib/protocols/naming.js';

describe('replyRoute', () => {
  it.each([
    'amq.rabbitmq.reply-to.g1h2AA1yZXBseUA5MjQ4ODg0AAAwzgAAAABrDMQi.MJcSYptlZ3jCiF/138mfWA==',
    'amq.rabbitmq.reply-to.g1h2AA5yZXBseUA2ODc4MTMzNAAAcEoAAAAAaS8eQg==',
    'amq.rabbitmq.reply-to.AAAA.BBBB',
    'amq.rabbitmq.reply-to.abc_DEF-ghi~jkl',
  ])('takes a direct reply-to address of either broker generation by its shape: %s', (address) => {
    expect(replyRoute(address)).toEqual({ exchange: '', routingKey: address });
  });

  it('takes a callme client exchange', () => {
    expect(replyRoute('client_olivia_ex_4f1c-aa')).toEqual({ exchange: 'client_olivia_ex_4f1c-aa', routingKey: '' });
  });

  it.each([
    ['the bare pseudo queue', 'amq.rabbitmq.reply-to'],
    ['the prefix without a token', 'amq.rabbitmq.reply-to.'],
    ['a token with a space', 'amq.rabbitmq.reply-to.AAAA BBBB'],
    ['a token with a line break', 'amq.rabbitmq.reply-to.AAAA\nBBBB'],
    ['a token with other punctuation', 'amq.rabbitmq.reply-to.AAAA;BBBB'],
    ['an address above 255 bytes', `amq.rabbitmq.reply-to.${'A'.repeat(234)}`],
    ['a client exchange with a control character', 'client_a\u0000_ex_1'],
    ['another exchange', 'amq.fanout'],
    ['a server exchange', 'server_calc_ex'],
  ])('refuses %s', (_, address) => {
    expect(replyRoute(address)).toBeUndefined();
  });

  it('takes the longest direct address a short string holds', () => {
    const address = `amq.rabbitmq.reply-to.${'A'.repeat(233)}`;
    expect(address).toHaveLength(255);
    expect(replyRoute(address)).toEqual({ exchange: '', routingKey: address });
  });
});

describe('cancel queues', () => {
  it('are named per server instance, and a notice may name only one of the server called', () => {
    expect(cancelQueue('calc', '0123456789abcdef')).toBe('server_calc_cancel_0123456789abcdef');
    expect(isCancelQueueOf('calc', 'server_calc_cancel_0123456789abcdef')).toBe(true);
    expect(isCancelQueueOf('calc', 'server_other_cancel_0123456789abcdef')).toBe(false);
    expect(isCancelQueueOf('calc', 'server_calc_queue')).toBe(false);
    expect(isCancelQueueOf('calc', 'server_calc_cancel_0123')).toBe(false);
    expect(isCancelQueueOf('calc', 'server_calc_cancel_0123456789abcdef.x')).toBe(false);
  });
});
