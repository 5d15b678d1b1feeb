import type { QAMConnection } from '../amqp/connection.js';
import type { WorkerPool } from './pool.js';

/**
 * Waits for the pool's running calls to finish and reply, up to `timeoutMs`; not while the broker
 * blocks the connection (their replies cannot leave before it unblocks). True when they did.
 * @internal
 */
export async function drain(pool: WorkerPool, connection: QAMConnection, timeoutMs: number): Promise<boolean> {
  if (pool.active === 0) return true;
  let timer: NodeJS.Timeout | undefined;
  let onBlocked: (() => void) | undefined;
  const drained = await Promise.race([
    pool.idle().then(() => true),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(resolve, connection.blocked ? 0 : timeoutMs, false);
      onBlocked = () => resolve(false);
      connection.once('blocked', onBlocked);
    }),
  ]);
  clearTimeout(timer);
  if (onBlocked !== undefined) connection.off('blocked', onBlocked);
  return drained;
}
