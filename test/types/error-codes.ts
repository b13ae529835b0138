// Compiled by test/ts/error-codes.test.ts with tsc: a consumer that switches on
// HeartwatchError.code. It must compile, and each @ts-expect-error line must be an error.
import { HeartwatchError, type HeartwatchErrorCode } from '../../lib/index.js';

export function describeError(err: unknown): string {
  if (!(err instanceof HeartwatchError)) return 'not ours';
  const code: HeartwatchErrorCode = err.code;
  switch (code) {
    case 'ERR_HW_INVALID_OPTION':
    case 'ERR_HW_INVALID_ARGUMENT':
      return 'fix the call';
    case 'ERR_HW_NATIVE_UNAVAILABLE':
    case 'ERR_HW_NATIVE':
      return 'native engine';
    case 'ERR_HW_CLOSED':
    case 'ERR_HW_RECEIVER_FAILED':
      return 'restart';
    case 'ERR_HW_ENGINE_WARNING':
    case 'ERR_HW_LISTENER':
    case 'ERR_HW_SOCKET':
    case 'ERR_HW_PROM_CLIENT_MISSING':
      return 'see the message';
    case 'EADDRINUSE':
    case 'ERANGE':
    case 'ENOTFOUND':
      return 'errno';
    // @ts-expect-error a misspelt code is not a HeartwatchErrorCode
    case 'ERR_HW_INVALID_OPTOIN':
      return 'never';
    // @ts-expect-error Node's own codes are never passed through
    case 'ERR_SOCKET_DGRAM_NOT_RUNNING':
      return 'never';
    default:
      return code;
  }
}

// @ts-expect-error codes are not free strings
export const notACode: HeartwatchErrorCode = 'timeout';
// @ts-expect-error the constructor takes only codes
export const made = new HeartwatchError('ERR_HW_TYPO', 'message');
