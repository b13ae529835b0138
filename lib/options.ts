import { isIP } from 'node:net';
import { availableParallelism } from 'node:os';
import { inspect } from 'node:util';
import { type AddressPrefix, checkAllowList } from './auth/allow-list.js';
import { type AuthKeys, checkAuthKeys } from './auth/keys.js';
import { engineLimits } from './engine/limits.js';
import { HeartwatchError } from './errors.js';
import {
  allowedCpus,
  formatCpuList,
  jsMaxHosts,
  nativeMaxHostsPerShard,
} from './native/platform.js';
import {
  derive,
  maxThreadsFor,
  type OptionEnv,
  type OptionSpec,
  optionSpec,
  optionTable,
  type RECEIVE_BACKENDS,
  type TableOptionName,
} from './options-table.js';
import { type ResolvedTcpOptions, resolveTcpOptions, type TcpOptions } from './tcp-options.js';

/** How a datagram is attributed to a host. */
export type Identity = 'id' | 'address' | 'ip';
export { RECEIVE_BACKENDS } from './options-table.js';
/** How the native engine reads its UDP sockets (option `receiveBackend`). */
export type ReceiveBackend = (typeof RECEIVE_BACKENDS)[number];

/**
 * The mass-failure guard: when more than `fraction` of the up hosts go down by timeout within
 * `windowMs`, heartwatch emits `'storm'` (phase `start`, then `end` once a whole window passes
 * without a timeout), and applies `policy` to the downs of the storm. See README "What a down means".
 */
export interface StormOptions {
  /** Share of the up hosts whose downs within one window make a storm; above 0, at most 1. Default 0.4. */
  fraction?: number | undefined;
  /** The window, 1 to 16 777 214 ms. Default: `timeoutMs`. */
  windowMs?: number | undefined;
  /** Fewer downs than this in a window are never a storm, 1 to 2^31-1. Default 10. */
  minDowns?: number | undefined;
  /**
   * `'flag'` (default): downs are delivered as they come, with `storm: true`. `'hold'`: they are
   * held until the storm ends, then delivered flagged; a held host heard again meanwhile is never
   * reported down (nor its recovery).
   */
  policy?: 'flag' | 'hold' | undefined;
}

/** {@link StormOptions} checked and defaulted. */
export interface ResolvedStormOptions {
  readonly fraction: number;
  readonly windowMs: number;
  readonly minDowns: number;
  readonly policy: 'flag' | 'hold';
}

/**
 * Options for `new Heartwatch(options)`. Every option is optional; each is checked before
 * anything starts, and a bad or unknown one throws `HeartwatchError` with code
 * `ERR_HW_INVALID_OPTION`. Thread and CPU defaults come from the CPUs this process may run on
 * (its affinity mask, as `taskset` or a container's cpuset sets it): n is how many there are.
 */
export interface HeartwatchOptions {
  /** UDP port to listen on, 0 to 65535; 0 picks a free port (read it from `listen()`). Default 7700. */
  port?: number | undefined;
  /** Address to bind, an IP literal. Default `'::'`: every IPv6 and IPv4 address (dual-stack). */
  host?: string | undefined;
  /** A host is down when no heartbeat arrived for this long, 1 to 16 777 214 ms (about 4 h 39 min). Default 5000. */
  timeoutMs?: number | undefined;
  /**
   * When a heartbeat announces its interval, the host's timeout is `interval * missedBeats`
   * instead of `timeoutMs`. 0 to 1000; 0 ignores announced intervals. Default 3.
   */
  missedBeats?: number | undefined;
  /**
   * `'id'`: the host is the datagram's host_id field (default). `'address'`: the source ip:port;
   * any datagram at all counts as a heartbeat, so agents that can only send a UDP ping work.
   * `'ip'`: the source IP alone.
   */
  identity?: Identity | undefined;
  /** Receiver threads (native engine), 1 to max(4, 4n) capped at 256. Default max(1, floor(n/2)). */
  receivers?: number | undefined;
  /** Worker threads, each owning a shard of the hosts (native engine); like `receivers`. */
  workers?: number | undefined;
  /**
   * CPUs the native threads are pinned to, round-robin (receivers first, then workers): each
   * one this process may run on (its affinity mask), no repeats; `null` leaves them unpinned.
   * Default: every CPU of the affinity mask (under `taskset -c 2,3`: `[2, 3]`).
   */
  cpus?: readonly number[] | null | undefined;
  /**
   * Hosts tracked at most. At the cap a new host takes the place of a down host (forgotten
   * without an event); when every tracked host is up it is refused and counted. Default
   * 4 194 304. At most the engine's limit: the native engine's per-worker limit (exported by the
   * addon, 16 million and a little more) times `workers`; the pure-TS engine 2^24 (V8's Map).
   */
  maxHosts?: number | undefined;
  /**
   * Forget a host this long after it went down (no event), 1 to 2^31-1 ms; 0 keeps it until a
   * new host needs its place. Default 3 600 000 (one hour).
   */
  forgetAfterMs?: number | undefined;
  /**
   * The longest status (heartbeat payload) kept per host, 0 to 65 535 bytes; 0 ignores payloads.
   * A longer one is refused and counted (`stats().statuses.oversize`), and the host keeps its
   * old status. Default 1024.
   */
  maxStatusBytes?: number | undefined;
  /**
   * Bytes of status storage this engine may hold in all (blocks of power-of-two sizes, 8 bytes of
   * header each; the native engine gives each worker an equal share), 0 to 2^40. A status past
   * it is refused and counted (`stats().statuses.overBudget`). Default 64 MiB.
   */
  statusBudgetBytes?: number | undefined;
  /** Datagrams per `recvmmsg` call (native engine), 1 to 1024. Default 64. */
  batchSize?: number | undefined;
  /** Socket receive buffer to ask the kernel for, 4096 to 2^31-1 bytes. Default 8 MiB. */
  recvBufferBytes?: number | undefined;
  /**
   * How the native engine's receivers read their sockets: `'recvmmsg'` (batches of `batchSize`),
   * `'io_uring'` (a multishot recvmsg into kernel-picked buffers; Linux 6.1+, fails `listen()`
   * with the errno where the kernel or a seccomp policy refuses io_uring), or `'auto'` (io_uring,
   * which drains more datagrams per CPU second (bench/README.md), falling back to recvmmsg where
   * it is refused). Both run the same checks and publish the same receive watermark. `listen()`
   * says which one runs and why 'auto' fell back; `stats().receivers[i].backend` too.
   * The pure-TS engine reads with node:dgram and takes only `'auto'`. Default `'auto'`.
   */
  receiveBackend?: ReceiveBackend | undefined;
  /** Slots per receiver-to-worker ring (native engine), a power of two from 1024 to 2^24. Default 65 536. */
  ringCapacity?: number | undefined;
  /**
   * Events per worker-to-JavaScript ring (native engine), a power of two from 1024 to 2^24.
   * Default 65 536. When JavaScript falls behind, events wait in an overflow queue and expiry
   * pauses; none is lost.
   */
  eventRingCapacity?: number | undefined;
  /** Events handed to JavaScript per batch at most, 1 to 65 536. Default 4096. */
  eventBatchSize?: number | undefined;
  /** Native threads poll instead of sleeping when idle: lower latency, a busy core each. Default false. */
  spin?: boolean | undefined;
  /**
   * `'native'`: the C++ engine, or throw if the addon cannot load. `'js'`: the pure-TS engine.
   * `'auto'` (default): native when it loads, else js with one `'warning'` event.
   */
  engine?: 'auto' | 'native' | 'js' | undefined;
  /**
   * Expiry index. `'fifo'`: one timeout for all hosts, re-arming is O(1); requires missedBeats: 0.
   * `'wheel'`: per-host timeouts. `'auto'` (default): fifo when missedBeats is 0, else wheel.
   */
  expiry?: 'auto' | 'fifo' | 'wheel' | undefined;
  /**
   * Heartbeat authentication (docs/protocol.md, "Authentication"). `keys`: 1 to 8 keys of 16 to
   * 1024 bytes (32 recommended); every key verifies, the first is the one senders should sign
   * with; rotate them with `hw.setKeys()`. `required` (default false): drop datagrams without a
   * valid tag; false accepts both (a migration mode) and counts the unsigned ones as
   * `unauthenticated`. Signed heartbeats are also checked for replay. Default (or null): no keys.
   * TCP frames are checked the same way, as they arrive, and counted in `stats().tcp`
   * (`authFailed`, `unauthenticated`, `authUnsupported`; docs/protocol.md, "Authentication over TCP").
   */
  auth?: { keys: readonly Uint8Array[]; required?: boolean | undefined } | null | undefined;
  /**
   * Source prefixes datagrams are accepted from, e.g. `['10.0.0.0/8', 'fd00::/8']`, at most 256;
   * others are dropped before parsing and counted as `notAllowed`. IPv4-mapped sources on a
   * dual-stack socket match IPv4 prefixes; TCP frames are checked by their peer's address.
   * Default: every source.
   */
  allow?: readonly string[] | undefined;
  /** The mass-failure guard ({@link StormOptions}); `false` turns it off. Default: on, policy `'flag'`. */
  storm?: StormOptions | false | undefined;
  /** The TCP transport, off by default: `{ port: 7700 }` turns it on (see {@link TcpOptions}). */
  tcp?: TcpOptions | null | undefined;
}

/** The checked `auth` option; the keys print redacted. */
export interface ResolvedAuth {
  readonly keys: AuthKeys;
  readonly required: boolean;
}

/** Every option, checked and defaulted; `expiry: 'auto'` is resolved. */
export interface ResolvedOptions {
  readonly port: number;
  readonly host: string;
  readonly timeoutMs: number;
  readonly missedBeats: number;
  readonly identity: Identity;
  readonly receivers: number;
  readonly workers: number;
  readonly cpus: readonly number[] | null;
  readonly maxHosts: number;
  readonly forgetAfterMs: number;
  readonly maxStatusBytes: number;
  readonly statusBudgetBytes: number;
  readonly batchSize: number;
  readonly recvBufferBytes: number;
  readonly receiveBackend: ReceiveBackend;
  readonly ringCapacity: number;
  readonly eventRingCapacity: number;
  readonly eventBatchSize: number;
  readonly spin: boolean;
  readonly engine: 'auto' | 'native' | 'js';
  readonly expiry: 'fifo' | 'wheel';
  /** null: no keys. */
  readonly auth: ResolvedAuth | null;
  readonly allow: readonly AddressPrefix[];
  /** `null` when the guard is off. */
  readonly storm: ResolvedStormOptions | null;
  /** `null`: TCP off. */
  readonly tcp: ResolvedTcpOptions | null;
}

const maxI32 = 2 ** 31 - 1;

/** The table's options as `resolveTable` gives them: `expiry` still may be 'auto'. */
type TableValues = Omit<Pick<ResolvedOptions, Exclude<TableOptionName, 'maxHosts'>>, 'expiry'> & {
  readonly expiry: 'auto' | 'fifo' | 'wheel';
};

/** The longest status: a v1 payload's length is a u16 (lib/engine/limits.ts). */
export const MAX_STATUS_BYTES = engineLimits.maxStatusBytes;

/** The longest timeout, about 4 h 39 min, for both engines (lib/engine/limits.ts says why). */
export const maxTimeoutMs = engineLimits.maxTimeoutMs;

/** The most threads of one kind (lib/options-table.ts), by default for this process's CPUs. */
export function maxThreads(cpuCount = availableParallelism()): number {
  return maxThreadsFor(cpuCount);
}

/** The most hosts the engine that will run can track, and the reason, for the error message. */
function maxHostsLimit(engine: 'auto' | 'native' | 'js', workers: number) {
  const perShard = engine === 'js' ? undefined : nativeMaxHostsPerShard();
  if (perShard === undefined) {
    return {
      max: jsMaxHosts,
      note: ' (the pure-TS engine: V8 holds at most 2^24 entries in a Map)',
    };
  }
  return {
    max: Math.min(maxI32, perShard * workers),
    note: ` (the native engine tracks at most ${perShard} hosts per worker; workers: ${workers})`,
  };
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  return inspect(value, { depth: 1, breakLength: Number.POSITIVE_INFINITY, maxArrayLength: 16 });
}

export function invalid(
  option: string,
  expected: string,
  value: unknown,
  note = '',
): HeartwatchError {
  return new HeartwatchError(
    'ERR_HW_INVALID_OPTION',
    `Invalid option "${option}": expected ${expected}, got ${describe(value)}${note}`,
  );
}

export function integer(
  option: string,
  value: unknown,
  min: number,
  max: number,
  unit = '',
): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw invalid(option, `an integer from ${min} to ${max}${unit}`, value);
  }
  return value;
}

function oneOf<T extends string>(option: string, value: unknown, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw invalid(option, `one of ${allowed.map((a) => `"${a}"`).join(', ')}`, value);
  }
  return value as T;
}

function cpuList(value: unknown, allowed: readonly number[]): readonly number[] | null {
  if (value === null) return null;
  const expected = `null or a non-empty array of distinct CPUs this process may run on (${formatCpuList(allowed)})`;
  if (!Array.isArray(value) || value.length === 0) throw invalid('cpus', expected, value);
  const seen = new Set<number>();
  for (const cpu of value as unknown[]) {
    if (typeof cpu !== 'number' || !Number.isInteger(cpu) || !allowed.includes(cpu)) {
      const note =
        typeof cpu === 'number' && Number.isInteger(cpu) && cpu >= 0
          ? ` (CPU ${cpu} is not in this process's affinity mask: ${formatCpuList(allowed)})`
          : '';
      throw invalid('cpus', expected, value, note);
    }
    if (seen.has(cpu)) throw invalid('cpus', expected, value, ` (CPU ${cpu} is listed twice)`);
    seen.add(cpu);
  }
  return Object.freeze([...seen]);
}

/** The table's options, then the compound ones that keep their own code. */
const knownOptions = [
  ...optionTable.map((o) => o.name),
  ...(['cpus', 'auth', 'allow', 'storm', 'tcp'] as const),
] satisfies readonly (keyof HeartwatchOptions)[];

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(
        Math.min((previous[j] as number) + 1, (current[j - 1] as number) + 1, substitution),
      );
    }
    previous = current;
  }
  return previous[b.length] as number;
}

/** The known option a mistyped name most likely meant, if any is close enough to be a typo. */
function closestOption(name: string): string | undefined {
  const lower = name.toLowerCase();
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const known of knownOptions) {
    const k = known.toLowerCase();
    const distance = k.startsWith(lower) || lower.startsWith(k) ? 1 : editDistance(lower, k);
    if (distance < bestDistance) {
      best = known;
      bestDistance = distance;
    }
  }
  return bestDistance <= Math.max(2, Math.floor(name.length / 3)) ? best : undefined;
}

/** The options object, once it is an object whose every key is a known option. */
function knownKeys(input: unknown): Record<string, unknown> {
  if (input === undefined) return {};
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new HeartwatchError(
      'ERR_HW_INVALID_OPTION',
      `Invalid options: expected an object such as { port: 7700, timeoutMs: 5000 }, got ${describe(input)}`,
    );
  }
  for (const key of Object.keys(input)) {
    if ((knownOptions as readonly string[]).includes(key)) continue;
    const suggestion = closestOption(key);
    throw new HeartwatchError(
      'ERR_HW_INVALID_OPTION',
      `Unknown option "${key}"${suggestion === undefined ? '' : `: did you mean "${suggestion}"?`}` +
        ` Known options: ${knownOptions.join(', ')}`,
    );
  }
  return input as Record<string, unknown>;
}

/**
 * Checks options and fills in defaults. Throws `HeartwatchError('ERR_HW_INVALID_OPTION')` naming
 * the option, the value given and what is allowed; unknown keys are errors too.
 */
export function resolveOptions(input: unknown): ResolvedOptions {
  const given = knownKeys(input);
  const has = (key: (typeof knownOptions)[number]): boolean => given[key] !== undefined;
  const allowed = allowedCpus();
  const env: OptionEnv = { cpuCount: allowed.length };
  const table = resolveTable(given, env);
  const { missedBeats, engine, receiveBackend, timeoutMs, host } = table;
  if (engine === 'js' && receiveBackend !== 'auto') {
    throw invalid(
      'receiveBackend',
      `'auto' with engine 'js' (the pure-TS engine reads with node:dgram)`,
      receiveBackend,
    );
  }
  if (table.expiry === 'fifo' && missedBeats > 0) {
    throw new HeartwatchError(
      'ERR_HW_INVALID_OPTION',
      `Invalid options "expiry" and "missedBeats": expiry "fifo" gives every host the same timeout, ` +
        `so it needs missedBeats: 0 (announced intervals ignored), got missedBeats: ${missedBeats}` +
        `${has('missedBeats') ? '' : ' (the default)'}`,
    );
  }
  const expiry = table.expiry === 'auto' ? (missedBeats === 0 ? 'fifo' : 'wheel') : table.expiry;
  return Object.freeze({
    ...table,
    cpus: given.cpus === undefined ? Object.freeze([...allowed]) : cpuList(given.cpus, allowed),
    maxHosts: resolveMaxHosts(given.maxHosts, engine, table.workers),
    expiry,
    auth: has('auth') && given.auth !== null ? resolveAuth(given.auth) : null,
    allow: has('allow') ? checkAllowList(given.allow) : Object.freeze([]),
    storm: stormOptions(given.storm, timeoutMs),
    tcp: resolveTcpOptions(given.tcp, host, maxThreadsFor(env.cpuCount)),
  });
}

/** The table's options (lib/options-table.ts), each checked against its entry or defaulted. */
function resolveTable(given: Record<string, unknown>, env: OptionEnv): TableValues {
  const values: Record<string, unknown> = {};
  for (const spec of optionTable as readonly OptionSpec[]) {
    if (spec.name === 'maxHosts') continue;
    const value = given[spec.name];
    values[spec.name] =
      value === undefined ? derive(spec.default, env) : checkScalar(spec, value, env);
  }
  return values as TableValues;
}

/** One value against its table entry, with the error message each kind has always had. */
function checkScalar(spec: OptionSpec, value: unknown, env: OptionEnv): unknown {
  const { name } = spec;
  const min = derive(spec.min ?? 0, env);
  const max = derive(spec.max ?? 0, env);
  switch (spec.kind) {
    case 'integer':
      return integer(name, value, min, max, derive(spec.unit ?? '', env));
    case 'powerOfTwo':
      if (
        typeof value !== 'number' ||
        !Number.isInteger(value) ||
        value < min ||
        value > max ||
        (value & (value - 1)) !== 0
      ) {
        throw invalid(name, `a power of two from ${min} to ${max}`, value);
      }
      return value;
    case 'choice':
      return oneOf(name, value, spec.choices ?? []);
    case 'boolean':
      if (typeof value !== 'boolean') throw invalid(name, 'a boolean', value);
      return value;
    case 'ip':
      if (typeof value !== 'string' || isIP(value) === 0) {
        throw invalid(name, 'an IP address literal such as "::", "0.0.0.0" or "127.0.0.1"', value);
      }
      return value;
  }
}

/** `maxHosts`: its table entry's bounds, lowered to what the engine that will run can track. */
function resolveMaxHosts(value: unknown, engine: ResolvedOptions['engine'], workers: number) {
  const spec = optionSpec('maxHosts');
  const limit = maxHostsLimit(engine, workers);
  if (value === undefined) return Math.min(spec.default as number, limit.max);
  return integer('maxHosts', value, spec.min as number, limit.max, limit.note);
}

function resolveAuth(value: unknown): ResolvedAuth {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new HeartwatchError(
      'ERR_HW_INVALID_OPTION',
      `Invalid option "auth": expected an object { keys: [key, ...], required?: boolean }, got ${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value}`,
    );
  }
  const { keys, required, ...rest } = value as Record<string, unknown>;
  const unknown = Object.keys(rest)[0];
  if (unknown !== undefined) {
    throw new HeartwatchError(
      'ERR_HW_INVALID_OPTION',
      `Unknown option "auth.${unknown}": "auth" takes "keys" and "required"`,
    );
  }
  if (required !== undefined && typeof required !== 'boolean') {
    throw invalid('auth.required', 'a boolean', required);
  }
  return Object.freeze({ keys: checkAuthKeys('auth.keys', keys), required: required === true });
}

function stormOptions(value: unknown, timeoutMs: number): ResolvedStormOptions | null {
  if (value === false) return null;
  const given = (value ?? {}) as Record<string, unknown>;
  if (typeof given !== 'object' || Array.isArray(given)) {
    throw invalid('storm', 'false or an object such as { fraction: 0.5, policy: "hold" }', value);
  }
  const known = ['fraction', 'windowMs', 'minDowns', 'policy'];
  for (const key of Object.keys(given)) {
    if (!known.includes(key)) {
      throw invalid(
        'storm',
        `an object with only ${known.join(', ')}`,
        value,
        ` (unknown "${key}")`,
      );
    }
  }
  const fraction = given.fraction ?? 0.4;
  if (typeof fraction !== 'number' || !(fraction > 0 && fraction <= 1)) {
    throw invalid('storm.fraction', 'a number above 0, at most 1', fraction);
  }
  return Object.freeze({
    fraction,
    windowMs:
      given.windowMs === undefined
        ? timeoutMs
        : integer('storm.windowMs', given.windowMs, 1, maxTimeoutMs, ' (milliseconds)'),
    minDowns:
      given.minDowns === undefined ? 10 : integer('storm.minDowns', given.minDowns, 1, maxI32),
    policy:
      given.policy === undefined
        ? 'flag'
        : oneOf('storm.policy', given.policy, ['flag', 'hold'] as const),
  });
}
