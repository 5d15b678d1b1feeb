/**
 * What the bench servers do with a request. Servers run in another process, so a behaviour
 * travels as a small serializable spec and becomes a handler here, in one place for all variants.
 */

import { cpuBoundEcho } from './cpu-work.js';
import type { Handler, Threadable } from './variants/types.js';

export type Behavior =
  /** Reply with the request value. */
  | { kind: 'echo' }
  /** Hold every request until a {@link releaseRequest} arrives (or `maxMs` passed), then echo. */
  | { kind: 'hold'; maxMs: number }
  /** Burn a fixed amount of CPU ({@link cpuBoundEcho}), then echo. */
  | { kind: 'cpu' };

/** The request that makes a 'hold' server answer everything it holds. */
export const releaseRequest = { bench: 'release' } as const;

function isRelease(value: unknown): boolean {
  return typeof value === 'object' && value !== null && (value as { bench?: unknown }).bench === releaseRequest.bench;
}

export function handlerFor(behavior: Behavior): Handler {
  switch (behavior.kind) {
    case 'echo':
      return function echo(value) {
        return value;
      };
    case 'hold': {
      const held: Array<() => void> = [];
      let timer: NodeJS.Timeout | undefined;
      const releaseAll = (): void => {
        clearTimeout(timer);
        timer = undefined;
        for (const release of held.splice(0)) release();
      };
      return function heldEcho(value) {
        if (isRelease(value)) {
          releaseAll();
          return value;
        }
        timer ??= setTimeout(releaseAll, behavior.maxMs);
        return new Promise((resolve) => held.push(() => resolve(value)));
      };
    }
    case 'cpu':
      return cpuBoundEcho;
  }
}

/** The behaviour as a module export, for variants that can run it on worker threads. */
export function threadableFor(behavior: Behavior): Threadable | undefined {
  return behavior.kind === 'cpu' ? { module: new URL('./cpu-work.js', import.meta.url).href, exportName: 'cpuBoundEcho' } : undefined;
}
