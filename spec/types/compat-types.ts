/**
 * Type tests of QAM's and callme's names: compiled by `tsc --noEmit` in `npm test`, never run.
 * Each `@ts-expect-error` line must fail to compile, or the build fails.
 */
import { QAMProxy, QAMServer, type CallbackState } from '../../lib/index.js';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function assertType<T extends true>(): T | undefined {
  return undefined;
}

const calc = { add: (x: number, y: number): number => x + y };
const greeter = { hello: async (name: string): Promise<string> => `hello ${name}` };

export async function aliasesKeepTheirTypes(): Promise<void> {
  const proxy = new QAMProxy<typeof calc>({ server_id: 'calc', amqp_host: 'localhost', amqp_port: 5672 });
  assertType<Equal<ReturnType<typeof proxy.set_timeout>, ReturnType<typeof proxy.setTimeout>>>();
  const slow = proxy.set_timeout(10).add(1, 2);
  assertType<Equal<typeof slow, Promise<number>>>();
  const uid = proxy.callback(() => undefined).add(1, 2);
  assertType<Equal<typeof uid, string>>();
  assertType<Equal<ReturnType<typeof proxy.get_callback_state>, CallbackState>>();
  assertType<Equal<ReturnType<typeof proxy.get_num_waiting_callbacks>, number>>();
  // @ts-expect-error set_timeout takes seconds
  proxy.set_timeout('10');

  const other = proxy.useServer<typeof greeter>('greeter');
  const hello = other.hello('olivia');
  assertType<Equal<typeof hello, Promise<string>>>();
  // @ts-expect-error the other server's API has no add
  void other.add(1, 2);
  const untyped = proxy.use_server('anything');
  assertType<Equal<ReturnType<typeof untyped.whatever>, any>>();

  const unbound = new QAMProxy({ amqp_host: 'localhost', amqp_user: 'olivia', amqp_password: 'secret', amqp_vhost: '/' });
  void unbound.use_server('fooserver').add(1, 1);

  // @ts-expect-error an unknown option
  void new QAMProxy({ serverId: 'a', amqp_hostname: 'x' });

  const server = new QAMServer({ server_id: 'calc', amqp_host: 'localhost' })
    .register_function((x: number, y: number) => x + y, 'add')
    .register_class(
      new (class {
        twice(n: number): number {
          return 2 * n;
        }
      })(),
      'my_instance',
    );
  const typed = new QAMProxy<typeof server extends QAMServer<infer A> ? A : never>({ serverId: 'calc' });
  const twice = typed.my_instance.twice(2);
  assertType<Equal<typeof twice, Promise<number>>>();
  await server.start();
  // @ts-expect-error a server needs its id
  void new QAMServer({ amqp_host: 'localhost' });
  // @ts-expect-error one spelling of the server id only
  void new QAMServer({ serverId: 'a', server_id: 'a' });
}
