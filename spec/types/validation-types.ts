/**
 * Type tests of params schemas and middleware: compiled by `tsc --noEmit` in `npm test`, never run.
 * Each `@ts-expect-error` line must fail to compile, or the build fails.
 */
import { z } from 'zod';
import { QAMServer, currentCall, type Middleware } from '../../lib/index.js';

class Accounts {
  open(owner: string, limit: number): string {
    return `${owner}:${limit}`;
  }
}

export function schemasMatchTheFunction(): void {
  const add = (a: number, b: number): number => a + b;
  new QAMServer({ serverId: 'types' })
    .registerFunction(add, 'add', { params: [z.number(), z.number()] })
    .registerFunction(add, 'add2', { params: z.tuple([z.number(), z.number()]) })
    .registerFunction((when: Date) => when.getTime(), 'at', { params: [z.coerce.date()] })
    .registerClass(new Accounts(), 'accounts', { params: { open: [z.string(), z.number()] } });

  // @ts-expect-error the second schema gives a string, the function takes a number
  new QAMServer({ serverId: 'types' }).registerFunction(add, 'add', { params: [z.number(), z.string()] });
  // @ts-expect-error a tuple schema of the wrong shape
  new QAMServer({ serverId: 'types' }).registerFunction(add, 'add', { params: z.tuple([z.string()]) });
  // @ts-expect-error open's limit is a number
  new QAMServer({ serverId: 'types' }).registerClass(new Accounts(), 'accounts', { params: { open: [z.string(), z.string()] } });
}

export function middlewareTypes(): void {
  const audit: Middleware = async (call, next) => {
    const who: string | undefined = call.userId;
    const method: string = call.method;
    const result: unknown = await next();
    return who === undefined ? result : `${method}: ${String(result)}`;
  };
  new QAMServer({ serverId: 'types' }).use(audit).use((_call, next) => next());
  const userId: string | undefined = currentCall()?.userId;
  void userId;
  // @ts-expect-error next takes no argument
  new QAMServer({ serverId: 'types' }).use((call, next) => next(call));
}
