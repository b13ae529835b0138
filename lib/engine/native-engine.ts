import { constants as osConstants } from 'node:os';
import type { AuthKeys } from '../auth/keys.js';
import { errorCode, HeartwatchError } from '../errors.js';
import type {
  DownEvent,
  DownReason,
  HostEvent,
  HostSnapshot,
  HostsQuery,
  RestartEvent,
  UpdateEvent,
  UpEvent,
} from '../events.js';
import { loadNative, type NativeBinding } from '../native/binding.js';
import { counterNames, type NativeContract } from '../native/contract.js';
import type { ResolvedOptions } from '../options.js';
import { type OptionSpec, optionTable } from '../options-table.js';
import type {
  HeartwatchStats,
  ReceiverStats,
  StatusStats,
  TcpReactorStats,
  TcpStats,
  WorkerStats,
} from '../stats.js';
import type { ResolvedTcpOptions } from '../tcp-options.js';
import { formatAddressBytes } from './address-format.js';
import type { Engine, EngineFactory, EngineSink, ListenInfo } from './engine.js';

/** The addon's NativeEngineHandle (native/addon/engine_wrap.h documents it). */
export interface NativeEngineHandle {
  start(): void;
  readonly port: number;
  /** 0 with TCP off. */
  readonly tcpPort: number;
  readonly tcpReactorCount: number;
  readonly receiverCount: number;
  /** Each receiver's backend, resolved ('auto' never appears). */
  readonly receiveBackends: ('recvmmsg' | 'io_uring')[];
  /** Each receiver's reason for recvmmsg where 'auto' would have used io_uring; '' where none. */
  readonly receiveBackendFallbacks: string[];
  readonly workerCount: number;
  readonly cpus: number[];
  readonly statsBuffer: ArrayBuffer;
  drain(into: Uint8Array): number;
  post(
    kind: number,
    key: bigint,
    requestId: number,
    worker: number,
    withStatuses?: boolean,
  ): boolean;
  drainResults(): Array<[requestId: number, value: number, worker: number]>;
  takeSnapshot(worker: number): ArrayBuffer;
  takeSnapshotStatuses(worker: number): ArrayBuffer;
  /** The worker's event status ring; undefined with statuses off. */
  statusBytes(worker: number): ArrayBuffer | undefined;
  foreignSockets(): number;
  close(): void;
  /** Replaces every receiver's key ring; datagrams sent after it returns see only these keys. */
  setKeys(keys: Uint8Array[]): void;
}

/** The engine configuration native code takes: ResolvedOptions with enums as numbers. */
export interface NativeEngineConfig {
  host: string;
  port: number;
  receivers: number;
  workers: number;
  cpus: number[];
  identity: number;
  timeoutMs: number;
  missedBeats: number;
  maxHosts: number;
  forgetAfterMs: number;
  maxStatusBytes: number;
  statusBudgetBytes: number;
  expiry: number;
  batchSize: number;
  recvBufferBytes: number;
  /** The contract's value of option receiveBackend. */
  receiveBackend: number;
  ringCapacity: number;
  eventRingCapacity: number;
  spin: boolean;
  /** The key ring, signing key first; empty: no authentication. */
  authKeys: Uint8Array[];
  authRequired: boolean;
  allow: Array<{ family: number; bits: number; address: Uint8Array }>;
  /** Absent: TCP off. */
  tcp?: ResolvedTcpOptions;
}

/**
 * The options-table options native code takes (lib/options-table.ts, field `native`), enums as
 * the contract's numbers.
 */
function nativeTableConfig(o: ResolvedOptions, contract: NativeContract) {
  const config: Record<string, unknown> = {};
  for (const spec of optionTable as readonly OptionSpec[]) {
    const value = o[spec.name as keyof ResolvedOptions];
    if (spec.native === 'value') config[spec.name] = value;
    if (spec.native === 'enum') {
      const numbers = contract[spec.name as 'identity' | 'expiry' | 'receiveBackend'];
      config[spec.name] = numbers[value as keyof typeof numbers];
    }
  }
  return config as Omit<NativeEngineConfig, 'cpus' | 'authKeys' | 'authRequired' | 'allow' | 'tcp'>;
}

export type NativeEngineConstructor = new (
  config: NativeEngineConfig,
  onWake: () => void,
) => NativeEngineHandle;

/** How often a port shared by several receivers is checked for sockets not ours. */
const PORT_CHECK_MS = 1000;
/** Hosts per chunk that hosts() yields. */
const SNAPSHOT_CHUNK = 8192;

/** The counters stats() shows per thread, as the contract names them. */
const RECEIVER_SHOWN = [
  'received',
  'malformed',
  'authUnsupported',
  'kernelDrops',
  'ringDrops',
  'recvBufferBytes',
  'receiveErrors',
  'authFailed',
  'unauthenticated',
  'notAllowed',
] as const satisfies readonly (keyof ReceiverStats &
  keyof NativeContract['counters']['receiver'])[];
const WORKER_SHOWN = [
  'processed',
  'hostsUp',
  'hostsDown',
  'trackedHosts',
  'refused',
  'replayed',
  'expiryWaits',
  'lossyDeferred',
  'uncertainDowns',
  'addressChanges',
] as const satisfies readonly (keyof WorkerStats & keyof NativeContract['counters']['worker'])[];
const TCP_ACCEPTOR_SHOWN = counterNames.tcpAcceptor satisfies readonly (keyof TcpStats)[];
const TCP_REACTOR_SHOWN = counterNames.tcpReactor satisfies readonly (keyof TcpReactorStats)[];
const STATUS_SHOWN = counterNames.status satisfies readonly (keyof StatusStats)[];

function loadedBinding(): NativeBinding | undefined {
  const load = loadNative();
  return load.ok ? load.binding : undefined;
}

function nativeConstructor(): NativeEngineConstructor | undefined {
  const ctor = (
    loadedBinding() as unknown as { NativeEngineHandle?: NativeEngineConstructor } | undefined
  )?.NativeEngineHandle;
  return typeof ctor === 'function' ? ctor : undefined;
}

/** Whether the native engine can run here. */
export function nativeEngineAvailable(): boolean {
  return nativeConstructor() !== undefined;
}

/** A down record's reason byte (event_record.h); only downs are decoded with it. */
function downReasonOf(value: number, reasons: NativeContract['downReason']): DownReason {
  if (value === reasons.left) return 'left';
  return value === reasons.disconnected ? 'disconnected' : 'timeout';
}

/** The IP version (as `net.isIP` numbers it) of a record's family byte; 0: unknown. */
function ipVersion(family: NativeContract['family'], value: number): 0 | 4 | 6 {
  if (value === family.ipv4) return 4;
  return value === family.ipv6 ? 6 : 0;
}

/**
 * Copies a record's status bytes (and the previous status's after them) out of its worker's
 * status ring, where they end at `end` (event_record.h): copies, because the next drain frees them.
 */
function statusBytes(
  rings: readonly (Uint8Array | undefined)[],
  worker: number,
  end: number,
  size: number,
  previousSize: number,
): [Buffer, Buffer | undefined] {
  const ring = rings[worker] as Uint8Array;
  const start = (end - size - previousSize) & (ring.byteLength - 1);
  const status = Buffer.from(ring.subarray(start, start + size));
  const previous =
    previousSize === 0
      ? undefined
      : Buffer.from(ring.subarray(start + size, start + size + previousSize));
  return [status, previous];
}

/**
 * Decodes `count` event records (native/core/engine/event_record.h) from `bytes`; `rings[w]` is
 * worker w's status ring (statusBytes()).
 */
function decodeEventRecords(
  c: NativeContract,
  bytes: Uint8Array,
  count: number,
  rings: readonly (Uint8Array | undefined)[],
): HostEvent[] {
  const r = c.eventRecord;
  const view = new DataView(bytes.buffer, bytes.byteOffset, count * r.bytes);
  const events: HostEvent[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const base = i * r.bytes;
    const id = view.getBigUint64(base + r.key, true).toString();
    const at = view.getFloat64(base + r.at, true);
    const type = view.getUint8(base + r.type);
    const address = formatAddressBytes(
      ipVersion(c.family, view.getUint8(base + r.family)),
      bytes.subarray(base + r.ip, base + r.ip + r.ipBytes),
      view.getUint16(base + r.port, true),
    );
    const statusSize = view.getUint16(base + r.statusSize, true);
    const [status, previous] =
      statusSize === 0
        ? [undefined, undefined]
        : statusBytes(
            rings,
            view.getUint8(base + r.worker),
            view.getUint32(base + r.statusEnd, true),
            statusSize,
            view.getUint16(base + r.previousSize, true),
          );
    if (type === c.eventType.up) {
      const up: UpEvent = {
        type: 'up',
        id,
        address,
        at,
        recovered: view.getUint8(base + r.recovered) === 1,
        incarnation: view.getUint32(base + r.incarnation, true),
      };
      if (status !== undefined) up.status = status;
      events[i] = up;
    } else if (type === c.eventType.update) {
      const update: UpdateEvent = {
        type: 'update',
        id,
        address,
        at,
        status: status ?? Buffer.alloc(0),
      };
      if (previous !== undefined) update.previous = previous;
      events[i] = update;
    } else if (type === c.eventType.down) {
      const down: DownEvent = {
        type: 'down',
        id,
        address,
        at,
        lastSeen: view.getFloat64(base + r.lastSeen, true),
        timeoutMs: view.getUint32(base + r.timeoutMs, true),
        reason: downReasonOf(view.getUint8(base + r.reason), c.downReason),
      };
      if (view.getUint8(base + r.uncertain) === 1) down.uncertain = true;
      events[i] = down;
    } else {
      const restart: RestartEvent = {
        type: 'restart',
        id,
        address,
        at,
        incarnation: view.getUint32(base + r.incarnation, true),
        previousIncarnation: view.getUint32(base + r.previousIncarnation, true),
      };
      events[i] = restart;
    }
  }
  return events;
}

/**
 * Decodes `count` host snapshot records (HostSnapshotRecord, native/core/engine/shard_message.h);
 * `statuses` holds their status bytes one after another from `statusOffset`. Returns the hosts and
 * where the next record's status starts.
 */
function decodeHostSnapshots(
  c: NativeContract,
  bytes: Uint8Array,
  count: number,
  statuses: Uint8Array,
  statusOffset: number,
): [HostSnapshot[], number] {
  const r = c.hostSnapshotRecord;
  const view = new DataView(bytes.buffer, bytes.byteOffset, count * r.bytes);
  const hosts: HostSnapshot[] = new Array(count);
  let offset = statusOffset;
  for (let i = 0; i < count; i++) {
    const base = i * r.bytes;
    const statusSize = view.getUint32(base + r.statusSize, true);
    const host: HostSnapshot = {
      id: view.getBigUint64(base + r.key, true).toString(),
      address: formatAddressBytes(
        ipVersion(c.family, view.getUint8(base + r.family)),
        bytes.subarray(base + r.ip, base + r.ip + r.ipBytes),
        view.getUint16(base + r.port, true),
      ),
      state: view.getUint8(base + r.state) === c.hostSnapshotState.up ? 'up' : 'down',
      lastSeen: view.getFloat64(base + r.lastSeen, true),
      incarnation: view.getUint32(base + r.incarnation, true),
      timeoutMs: view.getUint32(base + r.timeoutMs, true),
    };
    if (statusSize > 0) {
      host.status = Buffer.from(statuses.subarray(offset, offset + statusSize));
      offset += statusSize;
    }
    hosts[i] = host;
  }
  return [hosts, offset];
}

/** Maps a native error (Error with errno `code` and `syscall`) to a HeartwatchError. */
function toHeartwatchError(error: unknown): HeartwatchError {
  const native = error as { code?: unknown; syscall?: unknown; message?: unknown };
  const code = errorCode(native.code, 'ERR_HW_NATIVE');
  const options: { cause: unknown; syscall?: string } = { cause: error };
  if (typeof native.syscall === 'string') options.syscall = native.syscall;
  return new HeartwatchError(code, `heartwatch: ${String(native.message ?? error)}`, options);
}

/** A worker's answer to a command; a snapshot's carries its host records, already out of the worker. */
interface Answer {
  value: number;
  worker: number;
  records: ArrayBuffer | undefined;
  statuses: ArrayBuffer | undefined;
}

class NativeEngine implements Engine {
  readonly kind = 'native' as const;
  readonly #options: ResolvedOptions;
  readonly #sink: EngineSink;
  #contract: NativeContract | undefined;
  #eventBytes = new Uint8Array(0);
  #handle: NativeEngineHandle | undefined;
  #counters: BigUint64Array | undefined;
  #statusRings: (Uint8Array | undefined)[] = [];
  /** The key ring to start with, and the one setKeys() last handed over. */
  #keys: AuthKeys | null;
  #threadCpus: number[] = [];
  #receiveBackends: ('recvmmsg' | 'io_uring')[] = [];
  #delivered = 0;
  #nextRequest = 1;
  /** Open commands: their kind, how many workers will answer, the answers so far, who waits. */
  readonly #requests = new Map<
    number,
    {
      kind: number;
      expected: number;
      answers: Answer[];
      resolve: (answers: Answer[]) => void;
    }
  >();
  #closed = false;
  /** Receivers whose failure was reported. */
  readonly #failedReported = new Set<number>();
  #portCheck: NodeJS.Timeout | undefined;
  #foreignSockets = 0;
  #paused = false;

  constructor(options: ResolvedOptions, sink: EngineSink) {
    this.#options = options;
    this.#keys = options.auth?.keys ?? null;
    this.#sink = sink;
  }

  async listen(): Promise<ListenInfo> {
    const Ctor = nativeConstructor();
    const contract = loadedBinding()?.contract;
    if (Ctor === undefined || contract === undefined) {
      const load = loadNative();
      throw load.ok
        ? new HeartwatchError(
            'ERR_HW_NATIVE_UNAVAILABLE',
            'heartwatch: the addon has no NativeEngineHandle',
          )
        : load.error;
    }
    const o = this.#options;
    const config: NativeEngineConfig = {
      ...nativeTableConfig(o, contract),
      cpus: o.cpus === null ? [] : [...o.cpus],
      authKeys: this.#keys?.keys ?? [],
      authRequired: o.auth?.required === true,
      allow: o.allow.map(({ family, bits, address }) => ({ family, bits, address })),
      ...(o.tcp === null ? {} : { tcp: o.tcp }),
    };
    let handle: NativeEngineHandle;
    try {
      handle = new Ctor(config, () => this.#onWake());
      handle.start();
    } catch (error) {
      throw toHeartwatchError(error);
    }
    this.#contract = contract;
    this.#eventBytes = new Uint8Array(o.eventBatchSize * contract.eventRecord.bytes);
    this.#handle = handle;
    this.#counters = new BigUint64Array(handle.statsBuffer);
    this.#statusRings = Array.from({ length: handle.workerCount }, (_, w) => {
      const ring = handle.statusBytes(w);
      return ring === undefined ? undefined : new Uint8Array(ring);
    });
    this.#threadCpus = handle.cpus;
    this.#receiveBackends = handle.receiveBackends;
    if (handle.receiverCount > 1) {
      this.#portCheck = setInterval(() => this.#checkPort(handle), PORT_CHECK_MS);
      this.#portCheck.unref();
    }
    return {
      port: handle.port,
      host: o.host,
      recvBufferBytes: this.stats().receivers[0]?.recvBufferBytes ?? 0,
      receiveBackend: handle.receiveBackends[0] ?? 'recvmmsg',
      receiveBackendFallback: handle.receiveBackendFallbacks[0] || null,
      tcpPort: o.tcp === null ? null : handle.tcpPort,
    };
  }

  /**
   * Several receivers share the port with SO_REUSEPORT, so a later socket of this user that sets
   * it too can bind there (README "Ports"): say so each time more appear.
   */
  #checkPort(handle: NativeEngineHandle): void {
    const foreign = handle.foreignSockets();
    if (foreign > this.#foreignSockets) {
      this.#sink.warning(
        `heartwatch: ${foreign} UDP socket(s) of another owner joined port ${handle.port}, ` +
          `which this engine's ${handle.receiverCount} receivers share with SO_REUSEPORT; one ` +
          'bound to a narrower address takes the heartbeats sent to it (see README "Ports")',
      );
    }
    this.#foreignSockets = foreign;
  }

  /** Runs on the JS thread when a worker published events or command results. */
  #onWake(): void {
    const handle = this.#handle;
    if (handle === undefined) return;
    // While paused the events stay in the workers' rings; a full ring pauses their expiry.
    if (!this.#paused) this.#drainEvents(handle);
    this.#reportFailedReceivers(handle);
    for (const [requestId, value, worker] of handle.drainResults()) {
      const request = this.#requests.get(requestId);
      if (request === undefined) continue;
      // A snapshot leaves the worker as soon as it is answered, so the worker can take the next
      // one whether or not anyone reads this one.
      const { command } = this.#contract ?? { command: undefined };
      const snapshot = request.kind === command?.snapshot || request.kind === command?.host;
      const records = snapshot ? handle.takeSnapshot(worker) : undefined;
      const statuses = snapshot ? handle.takeSnapshotStatuses(worker) : undefined;
      request.answers.push({ value, worker, records, statuses });
      if (request.answers.length === request.expected) {
        this.#requests.delete(requestId);
        request.resolve(request.answers);
      }
    }
  }

  #drainEvents(handle: NativeEngineHandle): void {
    const contract = this.#contract;
    if (contract === undefined) return;
    const capacity = this.#options.eventBatchSize;
    let count: number;
    do {
      count = handle.drain(this.#eventBytes);
      if (count === 0) break;
      // Decode before handing over: a listener may run this engine's drain again re-entrantly.
      const batch = decodeEventRecords(contract, this.#eventBytes, count, this.#statusRings);
      this.#delivered += count;
      this.#sink.events(batch);
    } while (count === capacity && !this.#paused);
  }

  /** A receiver that stopped for good wakes JS once; say so, once per receiver. */
  #reportFailedReceivers(handle: NativeEngineHandle): void {
    const counters = this.#counters;
    const contract = this.#contract;
    if (counters === undefined || contract === undefined) return;
    const { slotsPerLine, receiver } = contract.counters;
    for (let r = 0; r < handle.receiverCount; r++) {
      const errno = Number(counters[r * slotsPerLine + receiver.failedErrno]);
      if (errno === 0 || this.#failedReported.has(r)) continue;
      this.#failedReported.add(r);
      const name = errnoName(errno);
      this.#sink.error(
        new HeartwatchError(
          'ERR_HW_RECEIVER_FAILED',
          `heartwatch: receiver hw-rx-${r} stopped: recvmmsg failed with ${name}; ` +
            'expiry is held from now on (downs wait rather than be false): close and restart',
          { syscall: 'recvmmsg' },
        ),
      );
    }
  }

  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    // Not from inside the caller (often a listener or a 'drain' handler): on the next turn.
    setImmediate(() => {
      const handle = this.#handle;
      if (handle !== undefined && !this.#paused && !this.#closed) this.#drainEvents(handle);
    });
  }

  /**
   * Sends a command to each of `workers` and resolves with their answers; a worker whose command
   * ring is full is asked again later, and only it. A remove goes to the key's owner, whichever
   * worker is named.
   */
  #request(kind: number, key: bigint, workers: number[], withStatuses = false): Promise<Answer[]> {
    const handle = this.#handle;
    if (handle === undefined || this.#closed) return Promise.resolve([]);
    const requestId = this.#nextRequest++;
    return new Promise((resolve) => {
      this.#requests.set(requestId, { kind, expected: workers.length, answers: [], resolve });
      let pending = workers;
      const attempt = (): void => {
        if (this.#closed) {
          this.#requests.delete(requestId);
          resolve([]);
          return;
        }
        pending = pending.filter(
          (worker) => !handle.post(kind, key, requestId, worker, withStatuses),
        );
        if (pending.length > 0) setTimeout(attempt, 1);
      };
      attempt();
    });
  }

  stats(): HeartwatchStats {
    const counters = this.#counters;
    const contract = this.#contract;
    const handle = this.#handle;
    const receiverCount = handle?.receiverCount ?? 0;
    const workerCount = handle?.workerCount ?? 0;
    const read = (thread: number, slot: number): number =>
      counters === undefined || contract === undefined
        ? 0
        : Number(counters[thread * contract.counters.slotsPerLine + slot]);
    const cpu = (thread: number): number | null => {
      const value = this.#threadCpus[thread];
      return value === undefined || value < 0 ? null : value;
    };
    // CLOCK_MONOTONIC, the clock the receivers stamp their watermarks with.
    const nowMs = Number(process.hrtime.bigint() / 1_000_000n);
    const receivers: ReceiverStats[] = [];
    const workers: WorkerStats[] = [];
    if (contract !== undefined) {
      const rx = contract.counters.receiver;
      for (let r = 0; r < receiverCount; r++) {
        const entry = {
          thread: `hw-rx-${r}`,
          cpu: cpu(r),
          backend: this.#receiveBackends[r] ?? 'recvmmsg',
        } as ReceiverStats;
        for (const name of RECEIVER_SHOWN) entry[name] = read(r, rx[name]);
        const watermark = read(r, rx.watermarkMs);
        entry.watermarkLagMs = watermark === 0 ? 0 : Math.max(0, nowMs - watermark);
        receivers.push(entry);
      }
      const wk = contract.counters.worker;
      for (let w = 0; w < workerCount; w++) {
        const t = receiverCount + w;
        const entry = { thread: `hw-wk-${w}`, cpu: cpu(t) } as WorkerStats;
        for (const name of WORKER_SHOWN) entry[name] = read(t, wk[name]);
        entry.eventsPending = Math.max(0, read(t, wk.eventsPublished) - read(t, wk.eventsTaken));
        entry.lastAddressChangeId =
          entry.addressChanges === 0 || counters === undefined
            ? null
            : String(counters[t * contract.counters.slotsPerLine + wk.lastMovedKey]);
        workers.push(entry);
      }
    }
    const sum = <T>(list: T[], pick: (item: T) => number): number =>
      list.reduce((total, item) => total + pick(item), 0);
    return {
      engine: 'native',
      received: sum(receivers, (r) => r.received),
      malformed: sum(receivers, (r) => r.malformed),
      authUnsupported: sum(receivers, (r) => r.authUnsupported),
      authFailed: sum(receivers, (r) => r.authFailed),
      unauthenticated: sum(receivers, (r) => r.unauthenticated),
      notAllowed: sum(receivers, (r) => r.notAllowed),
      replayed: sum(workers, (w) => w.replayed),
      kernelDrops: sum(receivers, (r) => r.kernelDrops),
      ringDrops: sum(receivers, (r) => r.ringDrops),
      receiveErrors: sum(receivers, (r) => r.receiveErrors),
      hostsUp: sum(workers, (w) => w.hostsUp),
      hostsDown: sum(workers, (w) => w.hostsDown),
      trackedHosts: sum(workers, (w) => w.trackedHosts),
      refused: sum(workers, (w) => w.refused),
      eventsPending: sum(workers, (w) => w.eventsPending),
      eventsDelivered: this.#delivered,
      watermarkLagMs: receivers.reduce((most, r) => Math.max(most, r.watermarkLagMs), 0),
      expiryWaits: sum(workers, (w) => w.expiryWaits),
      lossyDeferred: sum(workers, (w) => w.lossyDeferred),
      uncertainDowns: sum(workers, (w) => w.uncertainDowns),
      addressChanges: sum(workers, (w) => w.addressChanges),
      receivers,
      workers,
      tcp: this.#tcpStats(read, cpu),
      statuses: this.#statusStats(read),
    };
  }

  /** The workers' status lines, after every other line (engine_stats.h). */
  #statusStats(read: (thread: number, field: number) => number): StatusStats {
    const handle = this.#handle;
    const stats: StatusStats = {
      hosts: 0,
      bytes: 0,
      oversize: 0,
      overBudget: 0,
      lost: 0,
      eventsDropped: 0,
    };
    const contract = this.#contract;
    if (handle === undefined || contract === undefined) return stats;
    const tcpLines = this.#options.tcp === null ? 0 : 1 + handle.tcpReactorCount;
    const first = handle.receiverCount + handle.workerCount + tcpLines;
    for (let w = 0; w < handle.workerCount; w++) {
      for (const name of STATUS_SHOWN)
        stats[name] += read(first + w, contract.counters.status[name]);
    }
    return stats;
  }

  /** The lines after the workers': the accept thread's, then one per reactor (engine_stats.h). */
  #tcpStats(
    read: (thread: number, slot: number) => number,
    cpu: (thread: number) => number | null,
  ): TcpStats | null {
    const handle = this.#handle;
    const contract = this.#contract;
    if (handle === undefined || contract === undefined || this.#options.tcp === null) return null;
    const { tcpAcceptor, tcpReactor } = contract.counters;
    const acceptor = handle.receiverCount + handle.workerCount;
    const reactors: TcpReactorStats[] = [];
    for (let k = 0; k < handle.tcpReactorCount; k++) {
      const line = acceptor + 1 + k;
      const reactor = { thread: `hw-tcp-${k}`, cpu: cpu(line) } as TcpReactorStats;
      for (const name of TCP_REACTOR_SHOWN) reactor[name] = read(line, tcpReactor[name]);
      reactors.push(reactor);
    }
    const stats = { port: handle.tcpPort, reactors } as TcpStats;
    for (const name of TCP_ACCEPTOR_SHOWN) stats[name] = read(acceptor, tcpAcceptor[name]);
    for (const name of TCP_REACTOR_SHOWN) {
      stats[name] = reactors.reduce((total, reactor) => total + reactor[name], 0);
    }
    return stats;
  }

  async *hosts(query: HostsQuery = {}): AsyncIterable<HostSnapshot[]> {
    const handle = this.#handle;
    const contract = this.#contract;
    if (handle === undefined || contract === undefined) return;
    const workers = Array.from({ length: handle.workerCount }, (_, w) => w);
    const answers = await this.#request(
      contract.command.snapshot,
      0n,
      workers,
      query.statuses === true,
    );
    const recordBytes = contract.hostSnapshotRecord.bytes;
    const chunkBytes = SNAPSHOT_CHUNK * recordBytes;
    // JS owns these records: a consumer that reads slowly, or stops, holds up no worker.
    for (const { records, statuses } of answers) {
      const bytes = new Uint8Array(records ?? new ArrayBuffer(0));
      const statusBytes = new Uint8Array(statuses ?? new ArrayBuffer(0));
      let statusOffset = 0;
      for (let offset = 0; offset < bytes.byteLength; offset += chunkBytes) {
        const chunk = bytes.subarray(offset, offset + chunkBytes);
        const [hosts, next] = decodeHostSnapshots(
          contract,
          chunk,
          chunk.byteLength / recordBytes,
          statusBytes,
          statusOffset,
        );
        statusOffset = next;
        yield hosts;
      }
    }
  }

  async host(id: string): Promise<HostSnapshot | undefined> {
    const contract = this.#contract;
    if (contract === undefined) return undefined;
    const answers = await this.#request(contract.command.host, BigInt(id), [0], true);
    const answer = answers[0];
    if (answer === undefined || answer.value !== 1 || answer.records === undefined)
      return undefined;
    const statuses = new Uint8Array(answer.statuses ?? new ArrayBuffer(0));
    return decodeHostSnapshots(contract, new Uint8Array(answer.records), 1, statuses, 0)[0][0];
  }

  setKeys(keys: AuthKeys | null): void {
    this.#keys = keys;
    if (this.#handle === undefined || this.#closed) return;
    try {
      this.#handle.setKeys(keys?.keys ?? []);
    } catch (error) {
      throw toHeartwatchError(error);
    }
  }

  async remove(id: string): Promise<boolean> {
    const contract = this.#contract;
    if (contract === undefined) return false;
    const answers = await this.#request(contract.command.remove, BigInt(id), [0]);
    return answers[0]?.value === 1;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#portCheck);
    this.#paused = false;
    const handle = this.#handle;
    if (handle === undefined) return;
    handle.close();
    // The threads are joined: hand over every event they decided, then settle open requests.
    this.#drainEvents(handle);
    for (const request of this.#requests.values()) request.resolve([]);
    this.#requests.clear();
  }
}

/** Creates the native engine; listen() throws `ERR_HW_NATIVE_UNAVAILABLE` where it cannot run. */
export const createNativeEngine: EngineFactory = (options, sink) => new NativeEngine(options, sink);

/** `ENOTSOCK` for 88, or `errno 88` for a number this platform does not name. */
function errnoName(errno: number): string {
  const entry = Object.entries(osConstants.errno).find(([, value]) => value === errno);
  return entry?.[0] ?? `errno ${errno}`;
}
