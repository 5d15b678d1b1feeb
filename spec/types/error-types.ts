/**
 * Type tests: compiled by `tsc --noEmit` in `npm test`, never run. Each `@ts-expect-error` line
 * must fail to compile, or the build fails.
 */
import { QAMException, QAMRemoteException, QAMTimeoutException, type QAMErrorCode } from '../../lib/index.js';

export function errorCodes(error: unknown): QAMErrorCode | undefined {
  if (error instanceof QAMRemoteException) {
    const code: 'REMOTE_ERROR' = error.code;
    const remote: string | undefined = error.remoteCode;
    // @ts-expect-error: a remote error's code is always REMOTE_ERROR, the function's own is remoteCode
    const timeout: 'TIMEOUT' = error.code;
    return remote === undefined ? code : timeout;
  }
  if (error instanceof QAMTimeoutException) {
    const code: 'TIMEOUT' = error.code;
    return code;
  }
  // @ts-expect-error: not one of qam's codes
  const unknown: QAMErrorCode = 'E_SOMETHING';
  return error instanceof QAMException ? error.code : unknown;
}
