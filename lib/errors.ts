/** heartwatch's own error codes, described at {@link HeartwatchOwnCode}. */
export const heartwatchOwnCodes = [
  'ERR_HW_INVALID_OPTION',
  'ERR_HW_INVALID_ARGUMENT',
  'ERR_HW_NATIVE_UNAVAILABLE',
  'ERR_HW_NATIVE',
  'ERR_HW_CLOSED',
  'ERR_HW_RECEIVER_FAILED',
  'ERR_HW_ENGINE_WARNING',
  'ERR_HW_LISTENER',
  'ERR_HW_SOCKET',
  'ERR_HW_PROM_CLIENT_MISSING',
] as const;

/**
 * The codes heartwatch gives its own errors. One place, so a consumer can switch on them and the
 * compiler catches a misspelt one:
 *
 * - `ERR_HW_INVALID_OPTION`: an option has the wrong type or value; the message names the
 *   option, the value given and what is allowed.
 * - `ERR_HW_INVALID_ARGUMENT`: a method argument is wrong (a host id that is not a decimal u64,
 *   a sender payload that is too long, ...); the message names it.
 * - `ERR_HW_NATIVE_UNAVAILABLE`: the native addon could not be loaded (see `cause`), or it was
 *   built from other sources than lib/ (its exported layouts and limits differ).
 * - `ERR_HW_NATIVE`: the native engine failed without an errno (see `cause`).
 * - `ERR_HW_CLOSED`: the instance was closed; it refuses every call that would start work.
 * - `ERR_HW_RECEIVER_FAILED` (emitted as `'error'`): a native receiver thread stopped for good;
 *   the message names the errno. Expiry is held from then on: restart the server.
 * - `ERR_HW_ENGINE_WARNING` (emitted as `'warning'`): the engine saw something an operator should
 *   know (another socket joined the port), and carries on.
 * - `ERR_HW_LISTENER` (emitted as `'error'`): a listener threw something that is not an Error.
 * - `ERR_HW_SOCKET`: a socket failed with an error that names no errno (see `cause`).
 * - `ERR_HW_PROM_CLIENT_MISSING`: `registerMetrics` was called and prom-client is not installed.
 */
export type HeartwatchOwnCode = (typeof heartwatchOwnCodes)[number];

/** The characters of `S`, as a union. */
type Chars<S extends string> = S extends `${infer C}${infer Rest}` ? C | Chars<Rest> : never;
type Letter = Chars<'ABCDEFGHIJKLMNOPQRSTUVWXYZ'>;

/**
 * An errno name of a failed system call or resolver lookup (`EADDRINUSE`, `EACCES`,
 * `ENOTFOUND`, ...): `E` and capitals, never `ERR...`, so a misspelt `ERR_HW_` code matches
 * neither this nor {@link HeartwatchOwnCode}.
 */
export type ErrnoName = `E${Exclude<Letter, 'R'>}${string}` | `ER${Exclude<Letter, 'R'>}${string}`;

/** Every `HeartwatchError.code`: one of heartwatch's own codes, or an errno name. */
export type HeartwatchErrorCode = HeartwatchOwnCode | ErrnoName;

const ownCodes: ReadonlySet<string> = new Set(heartwatchOwnCodes);

/**
 * `code` as a {@link HeartwatchErrorCode}: kept when it is one (an errno name from the OS or the
 * addon), else `fallback` (Node's own `ERR_SOCKET_...` codes, no code at all).
 */
export function errorCode(code: unknown, fallback: HeartwatchOwnCode): HeartwatchErrorCode {
  if (typeof code !== 'string') return fallback;
  if (ownCodes.has(code) || /^E(?!RR)[A-Z][A-Z0-9_]*$/.test(code))
    return code as HeartwatchErrorCode;
  return fallback;
}

/**
 * Every error heartwatch raises on purpose is a `HeartwatchError`. Switch on `err.code`, never on
 * the message: codes are part of the API ({@link HeartwatchErrorCode}, each described at
 * {@link HeartwatchOwnCode}), messages may be reworded. An errno name comes with `syscall`
 * saying which call failed.
 */
export class HeartwatchError extends Error {
  readonly code: HeartwatchErrorCode;
  readonly syscall: string | undefined;

  constructor(
    code: HeartwatchErrorCode,
    message: string,
    options?: { cause?: unknown; syscall?: string },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'HeartwatchError';
    this.code = code;
    this.syscall = options?.syscall;
  }
}
