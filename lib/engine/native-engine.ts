import { constants as osConstants } from 'node:os';
import type { AuthKeys } from '../auth/keys.js';
import { HeartwatchError } from '../errors.js';
import type {
  DownEvent,
  HostEvent,
  HostSnapshot,
  HostsQuery,
  RestartEvent,
  UpdateEvent,
  UpEvent,
} from '../events.js';
import { loadNative } from '../native/binding.js';
import { RECEIVE_BACKENDS, type ResolvedOptions } from '../options.js';
import type {
  HeartwatchStats,
  ReceiverStats,
  StatusStats,
  TcpReactorStats,
  TcpStats,
  WorkerStats,
} from '../stats.js';
import type { ResolvedTcpOptions } from '../tcp-options.js';
import { formatAddress } from './address-format.js';
import type { Engine, EngineFactory, EngineSink, ListenInfo } from './engine.js';

/** The addon's NativeEngine handle (native/addon/engine_wrap.h documents it). */
export interface NativeEngineHandle {
  start(): void;
  readonly port: number;
  /** 0 with TCP off. */
  readonly tcpPort: number;
  readonly tcpReactorCount: number;
  readonly receiverCount: number;
  /** Each receiver's backend, resolved ('auto' never appears). */
  readonly receiveBackends: ('recvmmsg' | 'io_uring')[];
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
  /** Index into RECEIVE_BACKENDS. */
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

export type NativeEngineConstructor = new (
  config: NativeEngineConfig,
  onWake: () => void,
) => NativeEngineHandle;

// Layouts shared with native/core/engine/{event_record.h,shard_message.h,engine_stats.h}.
const EVENT_RECORD_BYTES = 64;
const HOST_RECORD_BYTES = 48;
const COUNTERS_PER_THREAD = 16;
/** Slot of each receiver counter in its line (ReceiverCounter in engine_stats.h; 6 is not shown). */
const RECEIVER_FIELD = {
  received: 0,
  malformed: 1,
  authUnsupported: 2,
  kernelDrops: 3,
  ringDrops: 4,
  recvBufferBytes: 5,
  receiveErrors: 7,
  authFailed: 8,
  unauthenticated: 9,
  notAllowed: 10,
} as const;
/** Slot of the receiver's watermark, monotonic ms (ReceiverCounter::kWatermarkMs). */
const RECEIVER_WATERMARK = 11;
/** Slot of the errno that stopped a receiver, 0 while it runs (ReceiverCounter::kFailedErrno). */
const RECEIVER_FAILED_ERRNO = 12;
/** Slot of each worker counter in its line (WorkerCounter in engine_stats.h). */
const WORKER_FIELD = {
  processed: 0,
  hostsUp: 1,
  hostsDown: 2,
  trackedHosts: 3,
  refused: 4,
  eventsTaken: 5,
  eventsPublished: 6,
  forgotten: 7,
  replayed: 8,
  expiryWaits: 9,
  lossyDeferred: 10,
  uncertainDowns: 11,
} as const;
/** TcpAcceptorCounter in engine_stats.h, in order. */
const TCP_ACCEPTOR_FIELDS = [
  'accepted',
  'refusedMaxConnections',
  'refusedPerIp',
  'acceptPaused',
  'handoffWaits',
  'openConnections',
  'descriptorLimit',
  'acceptErrors',
] as const;
/** TcpReactorCounter in engine_stats.h, in order. */
const TCP_REACTOR_FIELDS = [
  'frames',
  'protocolErrors',
  'authUnsupported',
  'ringDrops',
  'handshakeTimeouts',
  'idleTimeouts',
  'slowFrames',
  'closedByPeer',
  'unauthenticated',
  'notAllowed',
] as const;
/** StatusCounter in engine_stats.h, in order: one line per worker after every other line. */
const STATUS_FIELDS = [
  'hosts',
  'bytes',
  'oversize',
  'overBudget',
  'lost',
  'eventsDropped',
] as const;
const COMMAND_REMOVE = 1;
const COMMAND_SNAPSHOT = 2;
const COMMAND_HOST = 3;
const SNAPSHOT_CHUNK = 8192;
/** How often a port shared by several receivers is checked for sockets not ours. */
const PORT_CHECK_MS = 1000;
const IDENTITY = { id: 0, address: 1, ip: 2 } as const;
const EXPIRY = { fifo: 0, wheel: 1 } as const;

function nativeConstructor(): NativeEngineConstructor | undefined {
  const load = loadNative();
  if (!load.ok) return undefined;
  const ctor = (load.binding as unknown as { NativeEngine?: NativeEngineConstructor }).NativeEngine;
  return typeof ctor === 'function' ? ctor : undefined;
}

/** Whether the native engine can run here. */
export function nativeEngineAvailable(): boolean {
  return nativeConstructor() !== undefined;
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
 * Decodes `count` 64-byte event records (event_record.h) from `bytes`; `rings[w]` is worker w's
 * status ring (statusBytes()).
 */
export function decodeEventRecords(
  bytes: Uint8Array,
  count: number,
  rings: readonly (Uint8Array | undefined)[] = [],
): HostEvent[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, count * EVENT_RECORD_BYTES);
  const events: HostEvent[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const base = i * EVENT_RECORD_BYTES;
    const id = view.getBigUint64(base, true).toString();
    const at = view.getFloat64(base + 8, true);
    const type = view.getUint8(base + 32);
    const address = formatAddress(
      view.getUint8(base + 35),
      bytes.subarray(base + 40, base + 56),
      view.getUint16(base + 36, true),
    );
    const statusSize = view.getUint16(base + 60, true);
    const [status, previous] =
      statusSize === 0
        ? [undefined, undefined]
        : statusBytes(
            rings,
            view.getUint8(base + 39),
            view.getUint32(base + 56, true),
            statusSize,
            view.getUint16(base + 62, true),
          );
    if (type === 1) {
      const up: UpEvent = {
        type: 'up',
        id,
        address,
        at,
        recovered: view.getUint8(base + 34) === 1,
        incarnation: view.getUint32(base + 24, true),
      };
      if (status !== undefined) up.status = status;
      events[i] = up;
    } else if (type === 4) {
      const update: UpdateEvent = {
        type: 'update',
        id,
        address,
        at,
        status: status ?? Buffer.alloc(0),
      };
      if (previous !== undefined) update.previous = previous;
      events[i] = update;
    } else if (type === 2) {
      const down: DownEvent = {
        type: 'down',
        id,
        address,
        at,
        lastSeen: view.getFloat64(base + 16, true),
        reason: view.getUint8(base + 33) === 2 ? 'left' : 'timeout',
      };
      if (view.getUint8(base + 38) === 1) down.uncertain = true;
      events[i] = down;
    } else {
      const restart: RestartEvent = {
        type: 'restart',
        id,
        address,
        at,
        incarnation: view.getUint32(base + 24, true),
        previousIncarnation: view.getUint32(base + 28, true),
      };
      events[i] = restart;
    }
  }
  return events;
}

/**
 * Decodes `count` 48-byte host records (shard_message.h); `statuses` holds their status bytes
 * one after another from `statusOffset`. Returns the hosts and where the next record's status starts.
 */
function decodeHostRecords(
  bytes: Uint8Array,
  count: number,
  statuses: Uint8Array,
  statusOffset: number,
): [HostSnapshot[], number] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, count * HOST_RECORD_BYTES);
  const hosts: HostSnapshot[] = new Array(count);
  let offset = statusOffset;
  for (let i = 0; i < count; i++) {
    const base = i * HOST_RECORD_BYTES;
    const statusSize = view.getUint32(base + 44, true);
    const host: HostSnapshot = {
      id: view.getBigUint64(base, true).toString(),
      address: formatAddress(
        view.getUint8(base + 25),
        bytes.subarray(base + 28, base + 44),
        view.getUint16(base + 26, true),
      ),
      state: view.getUint8(base + 24) === 1 ? 'up' : 'down',
      lastSeen: view.getFloat64(base + 8, true),
      incarnation: view.getUint32(base + 16, true),
      timeoutMs: view.getUint32(base + 20, true),
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
  const code = typeof native.code === 'string' ? native.code : 'ERR_HW_NATIVE';
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
  readonly #eventBytes: Uint8Array;
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
    this.#eventBytes = new Uint8Array(options.eventBatchSize * EVENT_RECORD_BYTES);
  }

  async listen(): Promise<ListenInfo> {
    const Ctor = nativeConstructor();
    if (Ctor === undefined) {
      const load = loadNative();
      throw load.ok
        ? new HeartwatchError(
            'ERR_HW_NATIVE_UNAVAILABLE',
            'heartwatch: the addon has no NativeEngine',
          )
        : load.error;
    }
    const o = this.#options;
    const config: NativeEngineConfig = {
      host: o.host,
      port: o.port,
      receivers: o.receivers,
      workers: o.workers,
      cpus: o.cpus === null ? [] : [...o.cpus],
      identity: IDENTITY[o.identity],
      timeoutMs: o.timeoutMs,
      missedBeats: o.missedBeats,
      maxHosts: o.maxHosts,
      forgetAfterMs: o.forgetAfterMs,
      maxStatusBytes: o.maxStatusBytes,
      statusBudgetBytes: o.statusBudgetBytes,
      expiry: EXPIRY[o.expiry],
      batchSize: o.batchSize,
      recvBufferBytes: o.recvBufferBytes,
      receiveBackend: RECEIVE_BACKENDS.indexOf(o.receiveBackend),
      ringCapacity: o.ringCapacity,
      eventRingCapacity: o.eventRingCapacity,
      spin: o.spin,
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
      const snapshot = request.kind === COMMAND_SNAPSHOT || request.kind === COMMAND_HOST;
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
    const capacity = this.#options.eventBatchSize;
    let count: number;
    do {
      count = handle.drain(this.#eventBytes);
      if (count === 0) break;
      // Decode before handing over: a listener may run this engine's drain again re-entrantly.
      const batch = decodeEventRecords(this.#eventBytes, count, this.#statusRings);
      this.#delivered += count;
      this.#sink.events(batch);
    } while (count === capacity && !this.#paused);
  }

  /** A receiver that stopped for good wakes JS once; say so, once per receiver. */
  #reportFailedReceivers(handle: NativeEngineHandle): void {
    const counters = this.#counters;
    if (counters === undefined) return;
    for (let r = 0; r < handle.receiverCount; r++) {
      const errno = Number(counters[r * COUNTERS_PER_THREAD + RECEIVER_FAILED_ERRNO]);
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
    const handle = this.#handle;
    const receiverCount = handle?.receiverCount ?? 0;
    const workerCount = handle?.workerCount ?? 0;
    const read = (thread: number, field: number): number =>
      counters === undefined ? 0 : Number(counters[thread * COUNTERS_PER_THREAD + field]);
    const cpu = (thread: number): number | null => {
      const value = this.#threadCpus[thread];
      return value === undefined || value < 0 ? null : value;
    };
    // CLOCK_MONOTONIC, the clock the receivers stamp their watermarks with.
    const nowMs = Number(process.hrtime.bigint() / 1_000_000n);
    const receivers: ReceiverStats[] = [];
    for (let r = 0; r < receiverCount; r++) {
      const entry: ReceiverStats = {
        thread: `hw-rx-${r}`,
        cpu: cpu(r),
        backend: this.#receiveBackends[r] ?? 'recvmmsg',
        received: 0,
        malformed: 0,
        authUnsupported: 0,
        authFailed: 0,
        unauthenticated: 0,
        notAllowed: 0,
        kernelDrops: 0,
        ringDrops: 0,
        recvBufferBytes: 0,
        receiveErrors: 0,
        watermarkLagMs: 0,
      };
      for (const [name, field] of Object.entries(RECEIVER_FIELD)) {
        entry[name as keyof typeof RECEIVER_FIELD] = read(r, field);
      }
      const watermark = read(r, RECEIVER_WATERMARK);
      entry.watermarkLagMs = watermark === 0 ? 0 : Math.max(0, nowMs - watermark);
      receivers.push(entry);
    }
    const workers: WorkerStats[] = [];
    for (let w = 0; w < workerCount; w++) {
      const t = receiverCount + w;
      workers.push({
        thread: `hw-wk-${w}`,
        cpu: cpu(t),
        processed: read(t, WORKER_FIELD.processed),
        hostsUp: read(t, WORKER_FIELD.hostsUp),
        hostsDown: read(t, WORKER_FIELD.hostsDown),
        trackedHosts: read(t, WORKER_FIELD.trackedHosts),
        refused: read(t, WORKER_FIELD.refused),
        replayed: read(t, WORKER_FIELD.replayed),
        eventsPending: Math.max(
          0,
          read(t, WORKER_FIELD.eventsPublished) - read(t, WORKER_FIELD.eventsTaken),
        ),
        expiryWaits: read(t, WORKER_FIELD.expiryWaits),
        lossyDeferred: read(t, WORKER_FIELD.lossyDeferred),
        uncertainDowns: read(t, WORKER_FIELD.uncertainDowns),
      });
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
    if (handle === undefined) return stats;
    const tcpLines = this.#options.tcp === null ? 0 : 1 + handle.tcpReactorCount;
    const first = handle.receiverCount + handle.workerCount + tcpLines;
    for (let w = 0; w < handle.workerCount; w++) {
      STATUS_FIELDS.forEach((name, field) => {
        stats[name] += read(first + w, field);
      });
    }
    return stats;
  }

  /** The lines after the workers': the accept thread's, then one per reactor (engine_stats.h). */
  #tcpStats(
    read: (thread: number, field: number) => number,
    cpu: (thread: number) => number | null,
  ): TcpStats | null {
    const handle = this.#handle;
    if (handle === undefined || this.#options.tcp === null) return null;
    const acceptor = handle.receiverCount + handle.workerCount;
    const reactors: TcpReactorStats[] = [];
    for (let k = 0; k < handle.tcpReactorCount; k++) {
      const line = acceptor + 1 + k;
      const reactor = { thread: `hw-tcp-${k}`, cpu: cpu(line) } as TcpReactorStats;
      TCP_REACTOR_FIELDS.forEach((name, field) => {
        reactor[name] = read(line, field);
      });
      reactors.push(reactor);
    }
    const stats = { port: handle.tcpPort, reactors } as TcpStats;
    TCP_ACCEPTOR_FIELDS.forEach((name, field) => {
      stats[name] = read(acceptor, field);
    });
    for (const name of TCP_REACTOR_FIELDS) {
      stats[name] = reactors.reduce((total, reactor) => total + reactor[name], 0);
    }
    return stats;
  }

  async *hosts(query: HostsQuery = {}): AsyncIterable<HostSnapshot[]> {
    const handle = this.#handle;
    if (handle === undefined) return;
    const workers = Array.from({ length: handle.workerCount }, (_, w) => w);
    const answers = await this.#request(COMMAND_SNAPSHOT, 0n, workers, query.statuses === true);
    const chunkBytes = SNAPSHOT_CHUNK * HOST_RECORD_BYTES;
    // JS owns these records: a consumer that reads slowly, or stops, holds up no worker.
    for (const { records, statuses } of answers) {
      const bytes = new Uint8Array(records ?? new ArrayBuffer(0));
      const statusBytes = new Uint8Array(statuses ?? new ArrayBuffer(0));
      let statusOffset = 0;
      for (let offset = 0; offset < bytes.byteLength; offset += chunkBytes) {
        const chunk = bytes.subarray(offset, offset + chunkBytes);
        const [hosts, next] = decodeHostRecords(
          chunk,
          chunk.byteLength / HOST_RECORD_BYTES,
          statusBytes,
          statusOffset,
        );
        statusOffset = next;
        yield hosts;
      }
    }
  }

  async host(id: string): Promise<HostSnapshot | undefined> {
    const answers = await this.#request(COMMAND_HOST, BigInt(id), [0], true);
    const answer = answers[0];
    if (answer === undefined || answer.value !== 1 || answer.records === undefined)
      return undefined;
    const statuses = new Uint8Array(answer.statuses ?? new ArrayBuffer(0));
    return decodeHostRecords(new Uint8Array(answer.records), 1, statuses, 0)[0][0];
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
    const answers = await this.#request(COMMAND_REMOVE, BigInt(id), [0]);
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
