/**
 * The long fuzz run against RabbitMQ (the short one is spec/fuzz/broker.spec.ts): fuzzed requests
 * of both protocols to a real QAMServer, then fuzzed replies to a real QAMProxy of each transport.
 * Prints progress and the figures, and exits non-zero when anything went wrong.
 *
 *   npm run fuzz -- [--messages 100000] [--proxy-calls 10000] [--seed N] [--hostile-reply-to] [--url amqp://…]
 *
 * The broker is `--url`, else QAM_URL, else amqp://guest:guest@127.0.0.1:5672/. Every batch is
 * sampled from `seed + batch number`; a problem names its batch seed, which replays it.
 */
import { parseArgs } from 'node:util';
import { fuzzProxy, fuzzServer, type ProxyFuzzFigures, type ProxyTransport, type ServerFuzzFigures } from '../spec/support/fuzz-broker.js';

const { values: args } = parseArgs({
  options: {
    messages: { type: 'string', default: '100000' },
    'proxy-calls': { type: 'string', default: '10000' },
    seed: { type: 'string' },
    'hostile-reply-to': { type: 'boolean', default: false },
    url: { type: 'string' },
  },
});

const url = args.url ?? process.env['QAM_URL'] ?? 'amqp://guest:guest@127.0.0.1:5672/';
const messages = positive('messages', args.messages);
const proxyCalls = positive('proxy-calls', args['proxy-calls']);
const seed = args.seed === undefined ? Date.now() % 2 ** 31 : Number(args.seed);

function positive(name: string, text: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0) throw new TypeError(`--${name} must be a non-negative integer, got ${text}`);
  return value;
}

/**
 * Crashes: errors nothing caught (in amqplib's callbacks, timers), which in a real server process
 * would have killed it. They are counted and the run goes on; a failure of the harness itself
 * ends the run (see the end).
 */
const crashes: string[] = [];
process.on('uncaughtException', (error) => crashes.push(`uncaught: ${describe(error)}`));
process.on('unhandledRejection', (reason) => crashes.push(`unhandled rejection: ${describe(reason)}`));

function describe(error: unknown): string {
  try {
    return error instanceof Error ? (error.stack ?? String(error)) : String(error);
  } catch {
    return '(a value that cannot be shown)';
  }
}

function serverFailed(figures: ServerFuzzFigures): boolean {
  const { missing, duplicates, stray, malformed, wrongMethod, canaryCalls, pollution, serverConnectionLosses, alive, registeredCalls } =
    figures;
  return (
    missing + duplicates + stray + malformed + wrongMethod + canaryCalls + pollution.length + serverConnectionLosses > 0 ||
    alive !== true ||
    registeredCalls > figures.messages
  );
}

function proxyFailed(figures: ProxyFuzzFigures): boolean {
  return figures.wrongOutcome + figures.hangs + figures.pollution.length > 0 || figures.alive !== true;
}

async function main(): Promise<boolean> {
  const started = Date.now();
  console.log(
    `fuzzing ${url.replace(/:[^:@/]*@/, ':***@')}: ${messages} requests to a server, ${proxyCalls} replies to each of 3 proxies, seed ${seed}${args['hostile-reply-to'] ? ', hostile reply_to values' : ''}`,
  );

  let lastReport = 0;
  const server = await fuzzServer({
    url,
    messages,
    seed,
    hostileReplyTo: args['hostile-reply-to'],
    progress: (figures) => {
      if (figures.messages - lastReport < 10_000 && figures.messages < messages) return;
      lastReport = figures.messages;
      console.log(
        `  ${figures.messages} requests, ${figures.replies} replies, ${figures.missing} missing, ${figures.registeredCalls} runs, ` +
          `max event-loop delay ${figures.maxEventLoopDelayMs} ms, ${Math.round(figures.durationMs / 1000)} s`,
      );
    },
  });
  console.log('server:', JSON.stringify(server, null, 2));

  const proxies: ProxyFuzzFigures[] = [];
  for (const [index, transport] of (['direct', 'callme', 'qam'] as ProxyTransport[]).entries()) {
    if (proxyCalls === 0) break;
    // Each proxy its own replies: batches are seeded seed + batch number, so a million apart.
    const figures = await fuzzProxy({ url, transport, calls: proxyCalls, seed: seed + (index + 1) * 1_000_000 });
    proxies.push(figures);
    console.log(`proxy (${transport}):`, JSON.stringify(figures, null, 2));
  }

  const proxyTotal = proxies.reduce((total, figures) => total + figures.calls, 0);
  const failed = serverFailed(server) || proxies.some(proxyFailed) || crashes.length > 0;
  const sum = (count: (figures: ProxyFuzzFigures) => number): number => proxies.reduce((total, figures) => total + count(figures), 0);
  const lines = [
    `figures (seed ${seed}, ${Math.round((Date.now() - started) / 1000)} s in all)`,
    `  requests to the server    ${server.messages} (native ${server.byProtocol.native}, qam ${server.byProtocol.qam}; valid ${server.byOrigin.valid}, mutated ${server.byOrigin.mutated}, random ${server.byOrigin.random})`,
    `  replies due / optional    ${server.mustReply} / ${server.mayReply}`,
    `  replies received          ${server.replies}`,
    `  missing (hangs)           ${server.missing}`,
    `  duplicate / stray         ${server.duplicates} / ${server.stray}`,
    `  malformed / wrong method  ${server.malformed} / ${server.wrongMethod}`,
    `  registered runs / canary  ${server.registeredCalls} / ${server.canaryCalls}`,
    `  prototype pollution       ${server.pollution.length === 0 ? 'none' : server.pollution.join(', ')}`,
    `  server connection losses  ${server.serverConnectionLosses}`,
    `  server alive after        ${server.alive}`,
    `  max event-loop delay      ${server.maxEventLoopDelayMs} ms`,
    `  server log lines          ${server.logged.warn} warn, ${server.logged.error} error`,
    `  server run                ${Math.round(server.durationMs / 1000)} s`,
    `  replies to proxies        ${proxyTotal} (${proxies.map((p) => `${p.transport}: ${p.values} values, ${p.errors} errors, ${p.followUps} for other calls`).join('; ')})`,
    `  proxy wrong outcomes      ${sum((p) => p.wrongOutcome)}`,
    `  proxy hangs               ${sum((p) => p.hangs)}`,
    `  proxies alive after       ${proxies.every((p) => p.alive === true)}`,
    `  crashes                   ${crashes.length}`,
    ...crashes.slice(0, 10).map((crash) => `    ${crash}`),
    `  messages in all           ${server.messages + proxyTotal}`,
    failed ? 'FAILED' : 'passed',
  ];
  console.log(`\n${lines.join('\n')}`);
  return failed;
}

main().then(
  (failed) => process.exit(failed ? 1 : 0),
  (error: unknown) => {
    console.error(`the fuzzer itself failed: ${describe(error)}`);
    process.exit(2);
  },
);
