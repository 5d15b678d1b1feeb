import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { QAMInvalidParamsException, QAMProxy, QAMRemoteException, QAMServer, currentCall, type ServerApi } from '../lib/index.js';

/** Middleware (logging, authorization by the verified caller), and params validated by a schema. */
export async function middlewareSample(print: (line: string) => void = console.log): Promise<void> {
  const serverId = `middleware_${randomBytes(4).toString('hex')}`;
  const allowed = new Set(['guest']);
  const server = new QAMServer({ serverId })
    .registerFunction((amount: number, note: string) => `paid ${amount} (${note})`, 'pay', {
      params: [z.number().positive(), z.string().max(20).default('no note')],
    })
    .use(async (call, next) => {
      const result = await next();
      print(`${call.method} by ${call.userId} -> ${String(result)}`);
      return result;
    })
    .use((call, next) => {
      // call.userId is the AMQP user_id, which RabbitMQ checked against the caller's login.
      if (call.userId === undefined || !allowed.has(call.userId)) {
        throw Object.assign(new Error(`${String(call.userId)} may not call ${currentCall()?.method}`), { code: 'FORBIDDEN' });
      }
      return next();
    });
  await server.serve();
  const proxy = new QAMProxy<ServerApi<typeof server>>({ serverId, timeout: 10 });

  await proxy.pay(5, 'lunch');
  try {
    await proxy.pay(-5, 'refund?');
  } catch (error) {
    if (error instanceof QAMInvalidParamsException) print(`${error.code}: ${JSON.stringify(error.issues.map((issue) => issue.path))}`);
  }
  allowed.clear();
  try {
    await proxy.pay(5, 'again');
  } catch (error) {
    if (error instanceof QAMRemoteException) print(`${error.remoteCode}: ${error.message}`);
  }
  await proxy.close();
  await server.close({ deleteQueue: true });
}
