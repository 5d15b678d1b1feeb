/**
 * How the run process talks to its children: the configs it passes (argv[2], JSON) and the
 * messages they exchange over the fork IPC channel, plus the child side's bootstrap.
 */

import type { Behavior } from './behaviors.js';
import type { Cap } from './measure.js';
import type { Target, Task } from './plan.js';

export interface ServerChildConfig {
  variant: string;
  url: string;
  servers: Array<{ name: string; behavior: Behavior; concurrency: number }>;
  lifetimeMs: number;
}

export interface ClientChildConfig {
  variant: string;
  url: string;
  targets: Partial<Record<Target, string>>;
  tasks: Task[];
  callTimeoutMs: number;
  lifetimeMs: number;
}

/** What a client process measured: every task's metrics, and the tasks that hit their time cap. */
export interface TaskOutcome {
  metrics: Record<string, number>;
  caps: Cap[];
}

export type ChildMessage =
  { type: 'ready' } | { type: 'stopped' } | { type: 'result'; outcome: TaskOutcome } | { type: 'error'; message: string };

export type ParentMessage = { type: 'start' } | { type: 'stop' };

export function describe(error: unknown): string {
  if (error instanceof Error) return error.stack?.split('\n').slice(0, 3).join(' | ') ?? error.message;
  return String(error);
}

/**
 * Child side: resolves with the first of these messages the run process sends, or 'gone' when it
 * went away (or there is no IPC channel): the child then finishes by itself.
 */
export function received<T extends ParentMessage['type']>(...types: T[]): Promise<T | 'gone'> {
  if (!process.connected) return Promise.resolve('gone');
  return new Promise((resolve) => {
    const onMessage = (message: ParentMessage): void => {
      if (!(types as string[]).includes(message.type)) return;
      process.off('message', onMessage);
      resolve(message.type as T);
    };
    process.on('message', onMessage);
    process.once('disconnect', () => resolve('gone'));
  });
}

/** Child side: sends a message to the run process; resolves once it is written (at once without IPC). */
export function tell(message: ChildMessage): Promise<void> {
  return new Promise((resolve) => {
    if (process.send === undefined || !process.connected) resolve();
    else process.send(message, undefined, {}, () => resolve());
  });
}

/**
 * Child side: reads the config, arms the watchdog that ends a stuck child, reports a crash to the
 * parent instead of dying silently, and ends the process once `main` is done.
 */
export function runChild<Config extends { lifetimeMs: number }>(main: (config: Config) => Promise<void>): void {
  const config = JSON.parse(process.argv[2] ?? '{}') as Config;
  setTimeout(() => {
    console.error(`bench child ${process.pid}: lifetime of ${config.lifetimeMs} ms exceeded, exiting`);
    process.exit(3);
  }, config.lifetimeMs).unref();
  main(config).then(
    () => leave(0),
    (error: unknown) => {
      console.error(`bench child ${process.pid}: ${describe(error)}`);
      void tell({ type: 'error', message: describe(error) }).then(() => leave(1));
    },
  );
}

/** Lets the event loop drain, but never longer than a few seconds (a library's stray timer). */
function leave(code: number): void {
  process.exitCode = code;
  if (process.connected) process.disconnect();
  setTimeout(() => process.exit(code), 3000).unref();
}
