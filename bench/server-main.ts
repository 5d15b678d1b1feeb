/**
 * Bench server process: starts one server per behaviour with the variant's library, says 'ready',
 * and on 'stop' (or when the run process goes away) closes them, deleting their queues.
 */

import { handlerFor, threadableFor } from './behaviors.js';
import { describe, received, runChild, tell } from './ipc.js';
import type { ServerChildConfig } from './ipc.js';
import { variantNamed } from './variants/index.js';
import type { ServerHandle, ServerOptions } from './variants/types.js';

runChild<ServerChildConfig>(async (config) => {
  const variant = await variantNamed(config.variant).load();
  const handles: ServerHandle[] = [];
  try {
    for (const { name, behavior, concurrency } of config.servers) {
      const options: ServerOptions = { url: config.url, name, handler: handlerFor(behavior), concurrency };
      const threadable = threadableFor(behavior);
      if (threadable !== undefined) options.threadable = threadable;
      handles.push(await variant.startServer(options));
    }
    await tell({ type: 'ready' });
    await received('stop');
  } finally {
    for (const handle of handles) {
      await handle.close().catch((error: unknown) => console.error(`bench server: close failed: ${describe(error)}`));
    }
  }
  await tell({ type: 'stopped' });
});
