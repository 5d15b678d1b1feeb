/**
 * Jest global set-up: tags this run, so every name made by `uniqueName` carries the tag and the
 * teardown (spec/support/global-teardown.ts) can find what the run's tests left on the broker.
 */
import { randomBytes } from 'node:crypto';

export default function globalSetup(): void {
  process.env['QAM_TEST_RUN'] = `r${randomBytes(3).toString('hex')}r`;
}
