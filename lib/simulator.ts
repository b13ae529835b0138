import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { inspect } from 'node:util';
import { checkAuthKeys } from './auth/keys.js';
import { simulatorLimits } from './engine/limits.js';
import { errorCode, HeartwatchError } from './errors.js';
import { loadNative } from './native/binding.js';
import { allowedCpus, formatCpuList } from './native/platform.js';
import { authTagBytes, maxUdpPayloadBytes } from './protocol/wire-v1.js';
import { parseUdpAddress } from './sender/udp-address.js';

/** Hosts `[firstHost, firstHost + hosts)` stop at `atMs` after the start of the run. */
export interface FleetKill {
  /** How many hosts stop. */
  hosts: number;
  /** Index (0-based) of the first one. Default 0. */
  firstHost?: number;
  /** When, in milliseconds after the start. */
  atMs: number;
  /** Send one last heartbeat with the LEAVE flag (a clean shutdown) instead of going quiet. Default false. */
  leave?: boolean;
}

/**
 * Hosts `[firstHost, firstHost + hosts)` restart at `atMs`: a new random incarnation, seq from
 * `firstSeq` again. A killed host that restarts sends again (a recovery).
 */
export interface FleetRestart {
  hosts: number;
  firstHost?: number;
  atMs: number;
}

/** Options for {@link simulateFleet}. */
export interface SimulateFleetOptions {
  /** Server address: `udp://ip:port` or `ip:port`, IPv6 in brackets. An IP literal, not a name. */
  server: string;
  /** Simulated hosts, 1 to 16 777 216. Host `i` sends host_id `firstHostId + i`. */
  hosts: number;
  /** Datagrams per second for the whole fleet, up to 10^8; each host beats every `hosts / packetsPerSecond` s. */
  packetsPerSecond: number;
  /** How long to send, 0 to 4 294 967 295 ms; 0 runs until `signal` aborts. Default 10 000. */
  durationMs?: number;
  /**
   * Interval announced in each heartbeat, 0 to 4 294 967 295 ms (0 = unknown). Default: the real
   * period, `ceil(hosts * 1000 / packetsPerSecond)`.
   */
  intervalMs?: number;
  /** Host id of host 0, 1 to 2^64 - hosts. Default 1n. */
  firstHostId?: bigint;
  /** Opaque payload bytes per heartbeat, 0 to 65 479. Default 0. */
  payloadBytes?: number;
  /** Datagrams per sendmmsg call, 1 to 1024. Default 64. */
  batch?: number;
  /** Pin the sending thread to this CPU, one of this process's affinity mask; `null` leaves it unpinned. Default null. */
  cpu?: number | null;
  /** Seq of each host's first heartbeat, a u32 (set near 2^32 to exercise the wrap). Default 0. */
  firstSeq?: number;
  /** Seed for the send order and incarnations, a u32; the same seed gives the same run. Default: random. */
  seed?: number;
  /**
   * Sign every heartbeat with this key (16 to 1024 bytes), with the simulator's own tag code.
   * Incarnations then start at the current Unix second and go up by one per restart, as a server
   * that checks tags requires. Over UDP and TCP alike. Default: unsigned.
   */
  key?: Uint8Array;
  kills?: readonly FleetKill[];
  restarts?: readonly FleetRestart[];
  /** Aborting it ends the run within about 10 ms; the promise still resolves with the report. */
  signal?: AbortSignal;
  /**
   * `'tcp'`: one TCP connection per host to a server run with `tcp`, all opened (epoll) before
   * the clock starts, each heartbeat one frame; more source addresses in 127.0.0.0/8 are used
   * when a loopback target's ephemeral ports run out. Default `'udp'`.
   */
  transport?: 'udp' | 'tcp';
  /**
   * Report, in `longGaps`, each host whose longest time between two of its heartbeats (or from
   * its last one to the end of the run) went over this many milliseconds, 1 to 4 294 967 295: a
   * host the simulator itself left silent (it fell behind, or was starved of CPU), late by its
   * own clock rather than the server's. Costs 16 bytes per host. Default: not tracked.
   */
  longGapMs?: number;
  /**
   * Hosts whose index is a multiple of this, 1 to 16 777 216, carry a status of `statusBytes`
   * in every heartbeat (10: every 10th host, starting with host 0); the others send 28-byte
   * beats, so `payloadBytes` must be 0. The status starts with its stamp, the host id (u64) and
   * its change count (u32, big-endian), then the simulator's fixed pattern; it changes every
   * `statusChangeEvery`-th of the host's heartbeats, staggered so the changes spread over the
   * fleet (see `statusChangeEvery`). Nothing is stored per host. Default: no statuses.
   */
  statusHostStride?: number;
  /** Bytes of each status, 12 (the stamp) to 65 479 (65 463 with `key`). Default 64. */
  statusBytes?: number;
  /**
   * A host's status changes every this many of its heartbeats, 1 to 4 294 967 295: its beat `b`
   * (0 first, counted by seq from `firstSeq`) carries change count
   * `floor((b + rank % statusChangeEvery) / statusChangeEvery)`, where `rank` is
   * `floor(index / statusHostStride)`. Default 1 (every beat).
   */
  statusChangeEvery?: number;
}

/** What the simulator sent. Times are `performance.now()` milliseconds (NaN: never happened). */
export interface FleetReport {
  packetsSent: number;
  leavesSent: number;
  sendErrors: number;
  /** Send errors by errno name, e.g. `{ ECONNREFUSED: 3 }`. */
  errors: Record<string, number>;
  startedAt: number;
  elapsedMs: number;
  packetsPerSecond: number;
  /** The run ended early because `signal` aborted. */
  stoppedEarly: boolean;
  /** One per `kills` entry: when it took effect and, per host, when it sent its last datagram. */
  kills: { at: number; lastSendAt: number[] }[];
  /** One per `restarts` entry: when it took effect. */
  restartsAt: number[];
  /**
   * With `longGapMs`, by ascending `host` (0-based index), each host whose longest time between
   * two sends (`gapMs`; a kill's silence counts, up to the restart or the end of the run) went
   * over it, and when the send that ended that gap went out, or the run ended (`endedAt`).
   * Empty without `longGapMs`.
   */
  longGaps: { host: number; gapMs: number; endedAt: number }[];
}

/** The addon's fleet simulator, as the native module exposes it. */
interface NativeFleetSimulator {
  runFleetSimulator(config: NativeFleetConfig): NativeFleetRun;
}

interface NativeFleetConfig {
  address: string;
  port: number;
  hosts: number;
  firstHostId: bigint;
  packetsPerSecond: number;
  durationMs: number;
  intervalMs: number;
  payloadBytes: number;
  batch: number;
  cpu: number;
  firstSeq: number;
  seed: number;
  key: Uint8Array | undefined;
  kills: { firstHost: number; hostCount: number; atMs: number; graceful: boolean }[];
  restarts: { firstHost: number; hostCount: number; atMs: number }[];
  tcp: boolean;
  longGapMs: number;
  statusHostStride: number;
  statusBytes: number;
  statusChangeEvery: number;
}

interface NativeFleetRun {
  done: Promise<NativeFleetReport>;
  stop(): void;
}

interface NativeFleetReport {
  packetsSent: number;
  leavesSent: number;
  sendErrors: number;
  errorsByErrno: [string, number][];
  startMs: number;
  elapsedMs: number;
  achievedPacketsPerSecond: number;
  stoppedEarly: boolean;
  kills: { atMs: number; lastSendMs: number[] }[];
  restartAtMs: number[];
  longGaps: { host: number; gapMs: number; endedMs: number }[];
}

const maxHosts = 16_777_216;
const maxU32 = 0xffff_ffff;
const maxU64 = (1n << 64n) - 1n;
const knownKeys = [
  'server',
  'hosts',
  'packetsPerSecond',
  'durationMs',
  'intervalMs',
  'firstHostId',
  'payloadBytes',
  'batch',
  'cpu',
  'firstSeq',
  'seed',
  'key',
  'transport',
  'kills',
  'restarts',
  'signal',
  'longGapMs',
  'statusHostStride',
  'statusBytes',
  'statusChangeEvery',
] as const;

function describe(value: unknown): string {
  return inspect(value, { depth: 1, breakLength: Number.POSITIVE_INFINITY, maxArrayLength: 8 });
}

function invalid(option: string, expected: string, value: unknown): HeartwatchError {
  return new HeartwatchError(
    'ERR_HW_INVALID_OPTION',
    `Invalid option "${option}": expected ${expected}, got ${describe(value)}`,
  );
}

function integer(option: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw invalid(option, `an integer from ${min} to ${max}`, value);
  }
  return value;
}

function hostRange(
  option: string,
  value: unknown,
  hosts: number,
): { firstHost: number; hostCount: number; atMs: number; rest: Record<string, unknown> } {
  const expected = `{ hosts, firstHost?, atMs } covering hosts 0 to ${hosts - 1}`;
  if (typeof value !== 'object' || value === null) throw invalid(option, expected, value);
  const { hosts: count, firstHost = 0, atMs, ...rest } = value as Record<string, unknown>;
  const hostCount = integer(`${option}.hosts`, count, 1, hosts);
  const first = integer(`${option}.firstHost`, firstHost, 0, hosts - 1);
  if (first + hostCount > hosts) throw invalid(option, expected, value);
  return { firstHost: first, hostCount, atMs: integer(`${option}.atMs`, atMs, 0, maxU32), rest };
}

/** Checks every option and turns it into the addon's config; throws `ERR_HW_INVALID_OPTION`. */
function nativeConfig(input: unknown): NativeFleetConfig {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new HeartwatchError(
      'ERR_HW_INVALID_OPTION',
      `simulateFleet options must be an object like { server: 'udp://127.0.0.1:7700', hosts: 1000, packetsPerSecond: 1000 }, got ${describe(input)}`,
    );
  }
  const options = input as Record<string, unknown>;
  for (const key of Object.keys(options)) {
    if (!(knownKeys as readonly string[]).includes(key)) {
      throw new HeartwatchError(
        'ERR_HW_INVALID_OPTION',
        `Unknown option "${key}" for simulateFleet; known options are ${knownKeys.join(', ')}`,
      );
    }
  }
  const { server } = options;
  const address = typeof server === 'string' ? parseUdpAddress(server, undefined) : undefined;
  if (address === undefined || 'error' in address || isIP(address.host) === 0) {
    const why = address !== undefined && 'error' in address ? ` (${address.error})` : '';
    throw invalid('server', `'udp://ip:port' with an IP address${why}`, server);
  }
  const hosts = integer('hosts', options.hosts, 1, maxHosts);
  const rate = options.packetsPerSecond;
  if (typeof rate !== 'number' || !(rate > 0 && rate <= 1e8)) {
    throw invalid('packetsPerSecond', 'a number above 0, at most 100000000', rate);
  }
  const durationMs =
    options.durationMs === undefined
      ? 10_000
      : integer('durationMs', options.durationMs, 0, maxU32);
  if (durationMs === 0 && !(options.signal instanceof AbortSignal)) {
    throw invalid('durationMs', 'a positive duration unless a signal is given to stop the run', 0);
  }
  const intervalMs =
    options.intervalMs === undefined
      ? Math.min(maxU32, Math.ceil((hosts * 1000) / rate))
      : integer('intervalMs', options.intervalMs, 0, maxU32);
  const firstHostId = options.firstHostId ?? 1n;
  if (
    typeof firstHostId !== 'bigint' ||
    firstHostId < 1n ||
    firstHostId > maxU64 - BigInt(hosts) + 1n
  ) {
    throw invalid(
      'firstHostId',
      `a bigint from 1n to ${maxU64 - BigInt(hosts) + 1n}n (2^64 - hosts)`,
      firstHostId,
    );
  }
  const payloadBytes =
    options.payloadBytes === undefined
      ? 0
      : integer(
          'payloadBytes',
          options.payloadBytes,
          0,
          options.key === undefined ? maxUdpPayloadBytes : maxUdpPayloadBytes - authTagBytes,
        );
  const batch =
    options.batch === undefined ? 64 : integer('batch', options.batch, 1, simulatorLimits.maxBatch);
  let cpu = -1;
  if (options.cpu !== undefined && options.cpu !== null) {
    const allowed = allowedCpus();
    if (!allowed.includes(options.cpu as number)) {
      throw invalid(
        'cpu',
        `a CPU this process may run on (${formatCpuList(allowed)})`,
        options.cpu,
      );
    }
    cpu = options.cpu as number;
  }
  const firstSeq =
    options.firstSeq === undefined ? 0 : integer('firstSeq', options.firstSeq, 0, maxU32);
  const seed =
    options.seed === undefined
      ? randomBytes(4).readUInt32BE(0)
      : integer('seed', options.seed, 0, maxU32);
  const list = (option: 'kills' | 'restarts'): unknown[] => {
    const value = options[option] ?? [];
    if (!Array.isArray(value)) throw invalid(option, 'an array', value);
    return value;
  };
  const kills = list('kills').map((kill, i) => {
    const { firstHost, hostCount, atMs, rest } = hostRange(`kills[${i}]`, kill, hosts);
    const { leave = false, ...unknown } = rest;
    if (typeof leave !== 'boolean') throw invalid(`kills[${i}].leave`, 'a boolean', leave);
    if (Object.keys(unknown).length > 0)
      throw invalid(`kills[${i}]`, '{ hosts, firstHost?, atMs, leave? }', kill);
    return { firstHost, hostCount, atMs, graceful: leave };
  });
  const restarts = list('restarts').map((restart, i) => {
    const { firstHost, hostCount, atMs, rest } = hostRange(`restarts[${i}]`, restart, hosts);
    if (Object.keys(rest).length > 0)
      throw invalid(`restarts[${i}]`, '{ hosts, firstHost?, atMs }', restart);
    return { firstHost, hostCount, atMs };
  });
  if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) {
    throw invalid('signal', 'an AbortSignal', options.signal);
  }
  const transport = options.transport ?? 'udp';
  if (transport !== 'udp' && transport !== 'tcp') {
    throw invalid('transport', '"udp" or "tcp"', transport);
  }
  const longGapMs =
    options.longGapMs === undefined ? 0 : integer('longGapMs', options.longGapMs, 1, maxU32);
  const statuses = statusConfig(options, payloadBytes);
  return {
    address: address.host,
    port: address.port,
    hosts,
    firstHostId,
    packetsPerSecond: rate,
    durationMs,
    intervalMs,
    payloadBytes,
    batch,
    cpu,
    firstSeq,
    seed,
    key: options.key === undefined ? undefined : checkAuthKeys('key', [options.key]).keys[0],
    kills,
    restarts,
    tcp: transport === 'tcp',
    longGapMs,
    ...statuses,
  };
}

/** The status options, checked; without `statusHostStride` neither of the others is allowed. */
function statusConfig(
  options: Record<string, unknown>,
  payloadBytes: number,
): Pick<NativeFleetConfig, 'statusHostStride' | 'statusBytes' | 'statusChangeEvery'> {
  if (options.statusHostStride === undefined) {
    for (const option of ['statusBytes', 'statusChangeEvery'] as const) {
      if (options[option] !== undefined) {
        throw invalid(option, 'to be left out unless "statusHostStride" is set', options[option]);
      }
    }
    return { statusHostStride: 0, statusBytes: 0, statusChangeEvery: 1 };
  }
  const statusHostStride = integer('statusHostStride', options.statusHostStride, 1, maxHosts);
  if (payloadBytes !== 0) {
    throw invalid(
      'payloadBytes',
      '0 when "statusHostStride" is set (plain hosts send 28-byte beats)',
      payloadBytes,
    );
  }
  const maxStatus =
    options.key === undefined ? maxUdpPayloadBytes : maxUdpPayloadBytes - authTagBytes;
  const statusBytes =
    options.statusBytes === undefined
      ? 64
      : integer('statusBytes', options.statusBytes, simulatorLimits.minStatusBytes, maxStatus);
  const statusChangeEvery =
    options.statusChangeEvery === undefined
      ? 1
      : integer('statusChangeEvery', options.statusChangeEvery, 1, maxU32);
  return { statusHostStride, statusBytes, statusChangeEvery };
}

/** Whether this build's addon has the fleet simulator. */
export function fleetSimulatorAvailable(): boolean {
  const load = loadNative();
  return (
    load.ok &&
    typeof (load.binding as Partial<NativeFleetSimulator>).runFleetSimulator === 'function'
  );
}

/**
 * Runs the native fleet simulator: `hosts` simulated hosts sending wire-protocol v1 heartbeats
 * to `server` at `packetsPerSecond` in total (paced, with sendmmsg, on its own thread), killing
 * and restarting hosts as planned. Resolves with what was sent when the run ends.
 *
 * Options are checked here first (`ERR_HW_INVALID_OPTION`); `ERR_HW_NATIVE_UNAVAILABLE` when the
 * addon cannot load.
 */
export async function simulateFleet(options: SimulateFleetOptions): Promise<FleetReport> {
  const config = nativeConfig(options);
  const load = loadNative();
  if (!load.ok) throw load.error;
  const binding = load.binding as Partial<NativeFleetSimulator>;
  if (typeof binding.runFleetSimulator !== 'function') {
    throw new HeartwatchError(
      'ERR_HW_NATIVE_UNAVAILABLE',
      `heartwatch: the native addon at ${load.file} has no fleet simulator`,
    );
  }
  let run: NativeFleetRun;
  try {
    run = binding.runFleetSimulator(config);
  } catch (err) {
    throw asHeartwatchError(err);
  }
  const { signal } = options;
  const stop = (): void => run.stop();
  if (signal?.aborted) stop();
  signal?.addEventListener('abort', stop, { once: true });
  let report: NativeFleetReport;
  try {
    report = await run.done;
  } catch (err) {
    throw asHeartwatchError(err);
  } finally {
    signal?.removeEventListener('abort', stop);
  }
  // The addon reports CLOCK_MONOTONIC milliseconds; performance.now() is the same clock shifted
  // to the process start, and is what callers can compare with.
  const shift = Number(process.hrtime.bigint()) / 1e6 - performance.now();
  const local = (ms: number): number => ms - shift;
  return {
    packetsSent: report.packetsSent,
    leavesSent: report.leavesSent,
    sendErrors: report.sendErrors,
    errors: Object.fromEntries(report.errorsByErrno),
    startedAt: local(report.startMs),
    elapsedMs: report.elapsedMs,
    packetsPerSecond: report.achievedPacketsPerSecond,
    stoppedEarly: report.stoppedEarly,
    kills: report.kills.map((k) => ({ at: local(k.atMs), lastSendAt: k.lastSendMs.map(local) })),
    restartsAt: report.restartAtMs.map(local),
    longGaps: report.longGaps.map((g) => ({
      host: g.host,
      gapMs: g.gapMs,
      endedAt: local(g.endedMs),
    })),
  };
}

/** The addon's errors carry an errno name (or ERR_HW_*) as `code`; keep it, as a HeartwatchError. */
function asHeartwatchError(err: unknown): unknown {
  if (!(err instanceof Error) || err instanceof HeartwatchError) return err;
  const { code, syscall } = err as { code?: unknown; syscall?: unknown };
  if (typeof code !== 'string') return err;
  return new HeartwatchError(errorCode(code, 'ERR_HW_NATIVE'), err.message, {
    cause: err,
    ...(typeof syscall === 'string' ? { syscall } : {}),
  });
}
