/**
 * Every error heartwatch raises on purpose is a `HeartwatchError`. Switch on `err.code`, never on
 * the message: codes are part of the API, messages may be reworded.
 *
 * - `ERR_HW_INVALID_OPTION`: an option has the wrong type or value; the message names the
 *   option, the value given and what is allowed.
 * - `ERR_HW_NATIVE_UNAVAILABLE`: the native addon could not be loaded (see `cause`).
 * - `ERR_HW_RECEIVER_FAILED` (emitted as `'error'`): a native receiver thread stopped for good;
 *   the message names the errno. Expiry is held from then on: restart the server.
 * - errno names (`EADDRINUSE`, `EACCES`, ...): a system call failed; `syscall` says which.
 */
export class HeartwatchError extends Error {
  readonly code: string;
  readonly syscall: string | undefined;

  constructor(code: string, message: string, options?: { cause?: unknown; syscall?: string }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'HeartwatchError';
    this.code = code;
    this.syscall = options?.syscall;
  }
}
