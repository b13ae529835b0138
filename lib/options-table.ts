import { engineLimits } from './engine/limits.js';

/**
 * The one table of heartwatch's scalar options: `resolveOptions` checks and defaults them from it,
 * `heartwatch serve` parses its flags for them and lists them in `--help` from it, and a test
 * holds README.md's options table to its rendering (`renderReadmeCells`). The compound options
 * (`cpus`, `auth`, `allow`, `storm`, `tcp`) keep their own code in lib/options.ts.
 * Native limits come from lib/engine/limits.ts (asserted against the addon at load), never retyped.
 */

/** What the defaults and bounds of an option depend on: the CPUs this process may run on. */
export interface OptionEnv {
  /** How many CPUs the affinity mask holds (n in the docs). */
  readonly cpuCount: number;
}

type Scalar = number | string | boolean;
type Derived<T> = T | ((env: OptionEnv) => T);

/** How a `serve` flag's text becomes the option's value. */
export type FlagKind = 'integer' | 'duration' | 'choice' | 'ip';

/** The `serve` flag of an option. */
export interface OptionFlag {
  /** Without the leading `--`. */
  readonly name: string;
  readonly kind: FlagKind;
  /** The flag's lines in `serve --help`, each without the two leading spaces. */
  readonly help: readonly string[];
}

/** One scalar option. */
export interface OptionSpec {
  readonly name: string;
  readonly kind: 'integer' | 'powerOfTwo' | 'choice' | 'boolean' | 'ip';
  readonly default: Derived<Scalar>;
  readonly min?: Derived<number>;
  readonly max?: Derived<number>;
  readonly choices?: readonly string[];
  /** Said after the range in an error: ' (milliseconds)'. */
  readonly unit?: Derived<string>;
  /** Numbers are bytes: README renders whole MiB as MiB. */
  readonly bytes?: boolean;
  /** One line of what it does. */
  readonly doc: string;
  /** README's default and allowed cells where they are formulas rather than values. */
  readonly readme?: { readonly default?: string; readonly allowed?: string };
  readonly flag?: OptionFlag;
  /**
   * How the native engine's config takes it (lib/engine/native-engine.ts): `'value'` as is,
   * `'enum'` as the native contract's number for the choice; absent: native code does not take it.
   */
  readonly native?: 'value' | 'enum';
}

const maxI32 = 2 ** 31 - 1;

/** Option `receiveBackend`'s values (the native contract's `receiveBackend` gives each its native value). */
export const RECEIVE_BACKENDS = ['auto', 'recvmmsg', 'io_uring'] as const;

/** The most threads of one kind: 4 per CPU lets tests and oversubscribed setups run, 256 bounds memory. */
export function maxThreadsFor(cpuCount: number): number {
  return Math.min(256, Math.max(4, cpuCount * 4));
}

const threads = {
  kind: 'integer',
  default: (env: OptionEnv) => Math.max(1, Math.floor(env.cpuCount / 2)),
  min: 1,
  max: (env: OptionEnv) => maxThreadsFor(env.cpuCount),
  unit: (env: OptionEnv) => ` (this machine has ${env.cpuCount} CPUs)`,
  readme: { default: 'max(1, ⌊n/2⌋)' },
} as const;

/** The scalar options, in README order. */
export const optionTable = [
  {
    name: 'port',
    native: 'value',
    kind: 'integer',
    default: 7700,
    min: 0,
    max: 65535,
    unit: ' (0 picks a free port)',
    doc: 'UDP port; 0 picks a free one',
    flag: {
      name: 'port',
      kind: 'integer',
      help: [
        '--port N             UDP port, 0 for an ephemeral one                 (default 7700)',
      ],
    },
  },
  {
    name: 'host',
    native: 'value',
    kind: 'ip',
    default: '::',
    doc: 'bind address',
    flag: {
      name: 'host',
      kind: 'ip',
      help: ['--host IP            bind address; "::" is dual-stack IPv6 + IPv4      (default ::)'],
    },
  },
  {
    name: 'timeoutMs',
    native: 'value',
    kind: 'integer',
    default: 5000,
    min: 1,
    max: engineLimits.maxTimeoutMs,
    unit: ' (milliseconds)',
    doc: 'down after this long without a heartbeat',
    flag: {
      name: 'timeout',
      kind: 'duration',
      help: [
        '--timeout D          declare a host down after D without a heartbeat   (default 5000)',
      ],
    },
  },
  {
    name: 'missedBeats',
    native: 'value',
    kind: 'integer',
    default: 3,
    min: 0,
    max: 1000,
    unit: ' (0 ignores announced intervals)',
    doc: 'per-host timeout = announced interval × this',
    flag: {
      name: 'missed-beats',
      kind: 'integer',
      help: [
        '--missed-beats N     a host that announces its interval I is down after N*I',
        '                     missed; others use --timeout; 0: always --timeout (default 3)',
      ],
    },
  },
  {
    name: 'identity',
    native: 'enum',
    kind: 'choice',
    default: 'id',
    choices: ['id', 'address', 'ip'],
    doc: 'what a host is',
    flag: {
      name: 'identity',
      kind: 'choice',
      help: [
        '--identity MODE      id: the host_id field; address: source ip:port;',
        '                     ip: source IP (any datagram counts)               (default id)',
      ],
    },
  },
  {
    name: 'receivers',
    native: 'value',
    ...threads,
    doc: 'receiver threads (native), one socket each',
    readme: { ...threads.readme, allowed: '1–min(256, max(4, 4n))' },
    flag: {
      name: 'receivers',
      kind: 'integer',
      help: [
        '--receivers N        receiver threads                                  (default cores/2)',
      ],
    },
  },
  {
    name: 'workers',
    native: 'value',
    ...threads,
    doc: 'worker threads (native), each owning a shard of the hosts',
    readme: { ...threads.readme, allowed: 'like `receivers`' },
    flag: {
      name: 'workers',
      kind: 'integer',
      help: [
        '--workers N          worker threads                                    (default cores/2)',
      ],
    },
  },
  {
    name: 'maxHosts',
    native: 'value',
    kind: 'integer',
    default: 4_194_304,
    min: 1,
    max: maxI32,
    doc: 'hosts tracked at most',
    readme: {
      allowed:
        "1 to the engine's limit: native 16 774 142 × `workers` (at most 2³¹−1), pure-TS 2²⁴",
    },
    flag: {
      name: 'max-hosts',
      kind: 'integer',
      help: [
        '--max-hosts N        most hosts tracked; more are refused and counted  (default 4194304)',
      ],
    },
  },
  {
    name: 'forgetAfterMs',
    native: 'value',
    kind: 'integer',
    default: 3_600_000,
    min: 0,
    max: maxI32,
    unit: ' (milliseconds; 0 = never)',
    doc: 'forget hosts down this long',
    flag: {
      name: 'forget-after',
      kind: 'duration',
      help: [
        '--forget-after D     forget a host D after it went down (no event); 0 keeps it until a',
        '                     new host needs its place                          (default 1h)',
      ],
    },
  },
  {
    name: 'maxStatusBytes',
    native: 'value',
    kind: 'integer',
    default: 1024,
    min: 0,
    max: engineLimits.maxStatusBytes,
    unit: ' (bytes; 0 = no statuses)',
    bytes: true,
    doc: 'longest status kept per host',
    flag: {
      name: 'max-status-bytes',
      kind: 'integer',
      help: [
        '--max-status-bytes N longest host status kept; 0 ignores payloads      (default 1024)',
      ],
    },
  },
  {
    name: 'statusBudgetBytes',
    native: 'value',
    kind: 'integer',
    default: 64 * 1024 * 1024,
    min: 0,
    max: 2 ** 40,
    unit: ' (bytes)',
    bytes: true,
    doc: 'bytes of status blocks held in all',
    flag: {
      name: 'status-budget',
      kind: 'integer',
      help: [
        '--status-budget N    bytes of status storage in all                    (default 67108864)',
      ],
    },
  },
  {
    name: 'batchSize',
    native: 'value',
    kind: 'integer',
    default: 64,
    min: 1,
    max: engineLimits.maxBatchSize,
    doc: 'datagrams per `recvmmsg` (native)',
  },
  {
    name: 'receiveBackend',
    native: 'enum',
    kind: 'choice',
    default: 'auto',
    choices: RECEIVE_BACKENDS,
    doc: 'how receivers read their sockets',
  },
  {
    name: 'recvBufferBytes',
    native: 'value',
    kind: 'integer',
    default: 8 * 1024 * 1024,
    min: 4096,
    max: maxI32,
    unit: ' (bytes)',
    bytes: true,
    doc: 'SO_RCVBUF asked for',
  },
  {
    name: 'ringCapacity',
    native: 'value',
    kind: 'powerOfTwo',
    default: 65_536,
    min: engineLimits.minRingCapacity,
    max: engineLimits.maxRingCapacity,
    doc: 'slots per receiver→worker ring (native)',
  },
  {
    name: 'eventRingCapacity',
    native: 'value',
    kind: 'powerOfTwo',
    default: 65_536,
    min: engineLimits.minRingCapacity,
    max: engineLimits.maxRingCapacity,
    doc: 'events per worker→JS ring (native)',
  },
  {
    name: 'eventBatchSize',
    kind: 'integer',
    default: 4096,
    min: 1,
    max: 65_536,
    doc: 'events per batch handed to JS',
  },
  {
    name: 'spin',
    native: 'value',
    kind: 'boolean',
    default: false,
    doc: 'native threads busy-poll',
  },
  {
    name: 'engine',
    kind: 'choice',
    default: 'auto',
    choices: ['auto', 'native', 'js'],
    doc: 'which engine',
    flag: {
      name: 'engine',
      kind: 'choice',
      help: [
        '--engine E           auto, native or js; auto falls back to js with a warning',
        '                                                                       (default auto)',
      ],
    },
  },
  {
    name: 'expiry',
    native: 'enum',
    kind: 'choice',
    default: 'auto',
    choices: ['auto', 'fifo', 'wheel'],
    doc: 'expiry index',
  },
] as const satisfies readonly OptionSpec[];

/** A scalar option's name. */
export type TableOptionName = (typeof optionTable)[number]['name'];

/** The entry of `name`. */
export function optionSpec(name: TableOptionName): OptionSpec {
  return optionTable.find((o) => o.name === name) as OptionSpec;
}

/** A default or bound for this environment. */
export function derive<T>(value: Derived<T>, env: OptionEnv): T {
  return typeof value === 'function' ? (value as (env: OptionEnv) => T)(env) : value;
}

const superscripts = '⁰¹²³⁴⁵⁶⁷⁸⁹';

/** A number as README writes it: 2³¹−1, 2²⁴, 64 MiB, 65 536, 4096. */
export function renderNumber(n: number, bytes = false): string {
  const power = (k: number) => `2${[...String(k)].map((d) => superscripts[Number(d)]).join('')}`;
  if (n === maxI32) return `${power(31)}−1`;
  if (bytes && n >= 2 ** 20 && n < 2 ** 30 && n % 2 ** 20 === 0) return `${n / 2 ** 20} MiB`;
  const log = Math.log2(n);
  if (n > 0 && Number.isInteger(log) && log >= 24) return power(log);
  if (n < 10_000) return String(n);
  return String(n).replace(/\B(?=(\d{3})+$)/g, ' ');
}

function renderValue(value: Scalar, bytes: boolean): string {
  if (typeof value === 'string') return `\`'${value}'\``;
  if (typeof value === 'boolean') return String(value);
  return renderNumber(value, bytes);
}

/** README's default and allowed cells for an option whose default and bounds are constants. */
export function renderReadmeCells(spec: OptionSpec): { default: string; allowed: string } {
  const bytes = spec.bytes === true;
  const byDefault =
    spec.readme?.default ??
    (typeof spec.default === 'function' ? undefined : renderValue(spec.default, bytes));
  const range = () =>
    `${renderNumber(spec.min as number, bytes)}–${renderNumber(spec.max as number, bytes)}`;
  const allowed =
    spec.readme?.allowed ??
    {
      integer: range,
      powerOfTwo: () => `power of two, ${range()}`,
      choice: () => (spec.choices ?? []).map((c) => `\`'${c}'\``).join(', '),
      boolean: () => 'boolean',
      ip: () => 'an IP literal',
    }[spec.kind]();
  return { default: byDefault ?? '', allowed };
}
