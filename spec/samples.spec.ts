import { once } from 'node:events';
import * as net from 'node:net';
import { callbackSample } from '../samples/callback.js';
import { demo, demoBroker } from '../samples/demo.js';
import { errorsSample } from '../samples/errors.js';
import { eventsSample } from '../samples/events.js';
import { fingerprintSample } from '../samples/fingerprint.js';
import { introspectionSample } from '../samples/introspection.js';
import { messagesSample } from '../samples/messages.js';
import { noReplySample } from '../samples/no-reply.js';
import { middlewareSample } from '../samples/middleware.js';
import { qamSample } from '../samples/qam.js';
import { rawRpcSample } from '../samples/raw-rpc.js';
import { callmeClient, callmeServer } from '../samples/port-callme.js';
import { qamProxy, qamServer, type QamBroker } from '../samples/port-qam.js';
import { QamPeer, peerCleanup } from './interop/peer.js';
import { BROKER_HOST, BROKER_PORT, brokerUrl, createVhost, uniqueName, type TempVhost } from './support/broker.js';
import { startedSample } from '../samples/started.js';
import { testingSample } from '../samples/testing.js';
import { timeoutSample } from '../samples/timeout.js';

/** The README's examples are these samples; running them keeps the README honest. */
async function printed(sample: (print: (line: string) => void) => Promise<void>): Promise<string[]> {
  const lines: string[] = [];
  await sample((line) => lines.push(line));
  return lines;
}

describe('samples', () => {
  it('introspection: the methods a server serves, and a cancel that reaches it', async () => {
    expect(await printed(introspectionSample)).toEqual([
      'add/2: adds two numbers',
      'build_report/1',
      'calc.adder_function/2: adds, the QAM way',
      'caller: ABORTED',
      'server: cancelled by the caller',
    ]);
  });

  it('demo: a server and a proxy in every mode', async () => {
    expect(await printed(demo)).toEqual([
      'add(2, 3) = 5',
      'my_instance.adder_function(2, 4) = 6',
      expect.stringMatching(/^callback call started, uid \S+, state 0$/),
      'callback result: my_instance.slow_square(7) = 49',
      'setTimeout(0.1).my_instance.slow_square(3) -> QAMTimeoutException (TIMEOUT)',
    ]);
  });

  it('demo on the embedded broker prints the same', async () => {
    expect(await printed((print) => demo(print, 'memory://samples-demo'))).toEqual([
      'add(2, 3) = 5',
      'my_instance.adder_function(2, 4) = 6',
      expect.stringMatching(/^callback call started, uid \S+, state 0$/),
      'callback result: my_instance.slow_square(7) = 49',
      'setTimeout(0.1).my_instance.slow_square(3) -> QAMTimeoutException (TIMEOUT)',
    ]);
  });

  it('demo chooses QAM_URL when set, never another broker', async () => {
    const saved = process.env['QAM_URL'];
    process.env['QAM_URL'] = 'memory://from-env';
    try {
      const lines: string[] = [];
      await expect(demoBroker((line) => lines.push(line))).resolves.toBeUndefined();
      expect(lines).toEqual(['broker: QAM_URL']);
    } finally {
      if (saved === undefined) delete process.env['QAM_URL'];
      else process.env['QAM_URL'] = saved;
    }
  });

  it('demo fails with a clear error when QAM_URL names a broker that does not answer, trying no other', async () => {
    const closed = net.createServer().listen(0, '127.0.0.1');
    await once(closed, 'listening');
    const { port } = closed.address() as net.AddressInfo;
    closed.close();
    await once(closed, 'close');
    const saved = process.env['QAM_URL'];
    process.env['QAM_URL'] = `amqp://guest:guest@127.0.0.1:${port}/`;
    try {
      const lines: string[] = [];
      const url = await demoBroker((line) => lines.push(line));
      const error = await demo((line) => lines.push(line), url).catch((e: unknown) => e);
      expect(error).toMatchObject({ name: 'QAMConnectFailedException', code: 'CONNECT_FAILED', reason: 'refused' });
      expect((error as Error).message).toContain(`127.0.0.1:${port}`);
      expect(lines).toEqual(['broker: QAM_URL']);
    } finally {
      if (saved === undefined) delete process.env['QAM_URL'];
      else process.env['QAM_URL'] = saved;
    }
  });

  it('testing: a service tested on the embedded broker, through a cut connection', async () => {
    expect(await printed(testingSample)).toEqual([
      'apples left: 2',
      'pear: OUT_OF_STOCK',
      'server_inventory_queue: 0 ready, 0 unacked, 1 consumer',
      'after a cut, apples left: 1',
    ]);
  });

  it.each([
    ['RabbitMQ', undefined],
    ['the embedded broker', 'memory://samples-no-reply'],
  ])('no-reply: a fire-and-forget call on %s', async (_name, url) => {
    expect(await printed((print) => noReplySample(print, url))).toEqual([
      'request confirmed by the broker',
      'server recorded: user 42 logged in',
      'server stats: oneWay 1, served 1',
    ]);
  });

  it('middleware: logging, authorization by the verified user, params validation', async () => {
    expect(await printed(middlewareSample)).toEqual([
      'pay by guest -> paid 5 (lunch)',
      'INVALID_PARAMS: [[0]]',
      'FORBIDDEN: guest may not call pay',
    ]);
  });

  it('callback: ok, err with a timeout, state polling', async () => {
    expect(await printed(callbackSample)).toEqual(['success: 6', 'error: timeout occurred', 'callbacks still waiting: 0']);
  });

  it('started: a long job polled from the caller, queued or running', async () => {
    expect(await printed(startedSample)).toEqual([
      'sent: state 0',
      'started by our server',
      'running: state 1, the server says 1',
      'report ready',
      'done: state 2, the server says 2',
    ]);
  });

  it('timeout: setTimeout and an AbortSignal', async () => {
    expect(await printed(timeoutSample)).toEqual([
      'remote function is too slow, timeout occurred',
      'cancelled: ABORTED',
      'sleep(0.1) = done',
    ]);
  });

  it('errors: custom classes, remote codes, method not found', async () => {
    expect(await printed(errorsSample)).toEqual([
      'AccountOverdrawn: cannot withdraw 100',
      'remote Error (ENOSPC): disk full',
      'not found: METHOD_NOT_FOUND',
    ]);
  });

  it('qam: one server for QAM-format and native proxies', async () => {
    expect(await printed(qamSample)).toEqual([
      'QAM format: my_instance.adder_function(2, 4) = 6',
      'QAM format: raises -> args ["boom",42]',
      'QAM format: nosuch -> Methodname nosuch is not registered on QAMServer',
      'native format: add(2, 3) = 5',
    ]);
  });

  describe("porting guide: QAM's tutorial program in TypeScript", () => {
    const broker: QamBroker = { hostname: BROKER_HOST, port: BROKER_PORT, username: 'guest', password: 'guest', vhost: '/' };
    const printedByProxy = ['add(2, 3) = 5', 'my_instance.adder_function(2, 4) = 6', 'success: 6', 'set_timeout(10).add(2, 3) = 5'];

    it('the ported proxy calls the ported server', async () => {
      const serverId = uniqueName('qamserver');
      const server = await qamServer(serverId, broker);
      try {
        const lines: string[] = [];
        await qamProxy(serverId, uniqueName('qamproxy'), (line) => lines.push(line), broker);
        expect(lines).toEqual(printedByProxy);
      } finally {
        await server.close({ deleteQueue: true });
      }
    });

    it('the ported proxy calls the Python QAM peer server, standing in for the Python server not yet ported', async () => {
      const serverId = uniqueName('pyqamserver');
      const peer = await QamPeer.start(['server', '--server-id', serverId], brokerUrl());
      try {
        const lines: string[] = [];
        await qamProxy(serverId, uniqueName('qamproxy'), (line) => lines.push(line), broker);
        expect(lines).toEqual(printedByProxy);
      } finally {
        await peer.stop();
        await peerCleanup(brokerUrl(), serverId);
      }
    });

    it('the Python QAM peer proxy, standing in for the Python proxies still running, calls the ported server', async () => {
      const serverId = uniqueName('qamserver');
      const clientId = uniqueName('pyqamproxy');
      const server = await qamServer(serverId, broker);
      const peer = await QamPeer.start(['proxy', '--server-id', serverId, '--client-id', clientId], brokerUrl());
      try {
        peer.send({ seq: 1, method: 'add', params: [2, 3] });
        peer.send({ seq: 2, method: 'my_instance.adder_function', params: [2, 4] });
        expect(await peer.result(1)).toMatchObject({ ok: true, result: 5 });
        expect(await peer.result(2)).toMatchObject({ ok: true, result: 6 });
      } finally {
        await peer.stop();
        await server.close({ deleteQueue: true });
        await peerCleanup(brokerUrl(), serverId, [clientId]);
      }
    });
  });

  it("porting guide: callme's getting-started program in TypeScript", async () => {
    const serverId = uniqueName('fooserver');
    const server = await callmeServer(serverId, BROKER_HOST);
    try {
      expect(await printed((print) => callmeClient(serverId, print, BROKER_HOST))).toEqual(['2']);
    } finally {
      await server.close({ deleteQueue: true });
    }
  });
});

describe.each([
  ['RabbitMQ', 'rabbitmq'],
  ['the embedded broker', 'memory'],
] as const)('messaging samples on %s', (_name, kind) => {
  // Each sample runs in a vhost of its own on RabbitMQ, deleted afterwards with what it declared.
  let vhost: TempVhost | undefined;
  let url: string;
  beforeEach(async () => {
    if (kind === 'rabbitmq') {
      vhost = await createVhost('qam_samples');
      url = brokerUrl(vhost.vhost);
    } else url = `memory://samples-messaging-${Math.random().toString(36).slice(2)}`;
  }, 60_000);
  afterEach(async () => {
    await vhost?.remove();
    vhost = undefined;
  }, 60_000);

  it('messages: a producer and a processor with Postage typed messages', async () => {
    expect(await printed((print) => messagesSample(print, url))).toEqual([
      'square: value 49',
      'divide: error "division by zero"',
      'explode: exception RangeError "out of range"',
      'quit from billing (worker)',
      'processor: received 4, replies 3, handler errors 1',
    ]);
  });

  it('events: broadcast, a group, a failing handler, a status', async () => {
    expect(await printed((print) => eventsSample(print, url))).toEqual([
      'broadcast subscriber saw: order.created from shop, order.shipped from shop, status.shop from shop',
      'billing group billed: 1, 2, 3, 4',
      'failing handler: 8 attempts, 4 requeued, 4 dropped',
    ]);
  });

  it('raw rpc: a non-qam service called with a raw body and properties', async () => {
    expect(await printed((print) => rawRpcSample(print, url))).toEqual([
      'reply: application/json success {"weight":12}',
      'reply fields: exchange "", redelivered false',
      'notice confirmed by the broker',
      'the service noted message msg_1',
    ]);
  });

  it('fingerprint: what the caller claims and the user the broker verified', async () => {
    expect(await printed((print) => fingerprintSample(print, url))).toEqual([
      "this connection's fingerprint: billing (worker), pid of this process",
      'the server sees: billing (worker, qam) as user guest',
    ]);
  });
});
