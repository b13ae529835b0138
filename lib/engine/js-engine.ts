import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { isIPv4 } from 'node:net';
import { performance } from 'node:perf_hooks';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { allowsSource } from '../auth/allow-list.js';
import type { AuthKeys } from '../auth/keys.js';
import { ReplayWindow } from '../auth/replay-window.js';
import { errorCode, HeartwatchError } from '../errors.js';
import type {
  DownEvent,
  DownReason,
  HostEvent,
  HostSnapshot,
  HostsQuery,
  UpEvent,
} from '../events.js';
import { maxTimeoutMs, type ResolvedOptions } from '../options.js';
import { formatAddress, hostIdFromSource } from '../protocol/host-id.js';
import {
  type DecodedHeartbeat,
  type DecodeResult,
  decodeHeartbeat,
  headerBytes,
} from '../protocol/wire-v1.js';
import type { HeartwatchStats } from '../stats.js';
import type { Engine, EngineFactory, EngineSink, ListenInfo } from './engine.js';
import { JsTcpServer, type TcpCarried, type TcpFrameCounter } from './js-tcp-server.js';

/**
 * The pure-TS engine: one node:dgram socket on the JS thread, the same protocol, identity modes,
 * events and stats as the native engine, for where the addon cannot load.
 *
 * What it does not do as well: every datagram costs a JS callback and a few allocations, so one
 * core handles a few hundred thousand heartbeats per second at best; it has no kernel-drop
 * counter (kernelDrops stays 0), so it cannot tell whether its socket overflowed and treats a
 * backlog it cannot read to the end as a lossy window (see #awaitDrain).
 *
 * Receive watermark, as far as Node allows: when the loop wakes, timers run before I/O, so a
 * timer tick never expires anything itself. It notes the time T and lets one I/O poll run
 * (setImmediate runs right after it); libuv reads a socket until it is empty or it has read
 * `libuvReadsPerPoll` datagrams, so a poll that delivered fewer than that emptied the socket,
 * and every datagram that arrived before T has been handled. Only then are deadlines up to T
 * expired; while polls keep delivering full bursts (a backlog), expiry waits, up to
 * `maxDrainPolls` polls.
 */

/** Incarnation 0 means "not known" on the wire (docs/protocol.md): like a plain datagram's. */
function knownIncarnation(incarnation: number): number | null {
  return incarnation === 0 ? null : incarnation;
}

/** Expirations per timer tick at most, so a mass failure does not stall the event loop. */
const expireBudget = 65_536;

/**
 * Datagrams libuv reads from a UDP socket per poll at most (`uv__udp_recvmsg`: 32 reads; more
 * with recvmmsg). A poll that delivered fewer stopped because the socket was empty.
 */
const libuvReadsPerPoll = 32;

/**
 * Polls a tick waits for at most. A backlog that outlasts them (a saturated engine, or the
 * backlog of a long stall) is not waited out: its window is treated as lossy instead, so its
 * deadlines get one more timeout rather than a guess.
 */
const maxDrainPolls = 64;

/**
 * An upper bound on the buffer space one queued datagram of up to 2 KiB takes (its skb
 * truesize). A drain that read fewer than `recvBufferBytes / maxDatagramCharge` datagrams
 * found a socket that had room left: it cannot have dropped any.
 */
const maxDatagramCharge = 2048;

interface HostRecord {
  readonly id: string;
  /** Table key: the id in `id` identity, the source (ip or ip|port) otherwise. */
  readonly key: string;
  ip: string;
  port: number;
  address: string;
  up: boolean;
  /** Monotonic ms (performance.now()) of the last heartbeat. */
  lastSeen: number;
  timeoutMs: number;
  /** lastSeen + timeoutMs: down when now >= deadline. */
  deadline: number;
  incarnation: number;
  /** Monotonic ms when it went down. */
  downAt: number;
  /** Generation of this host's live heap entry; 0 when it has none. Older entries are stale. */
  heapGen: number;
  /** Key of the live heap entry, valid while heapGen != 0. */
  heapKey: number;
  removed: boolean;
  /** The latest status (a copy), absent when the host has none. */
  status: Buffer | undefined;
  /** Replay state, created when the host's first authenticated datagram arrives. */
  replay: ReplayWindow | null;
  /** Its deadline fell in a lossy window and was moved one timeout on (cleared by a heartbeat). */
  deferred: boolean;
}

/** What a datagram carries once the auth rules have let it through. */
interface Signature {
  incarnation: number;
  seq: number;
}

/**
 * Bytes the native StatusStore takes for a status of `size` bytes (status_store.h: an 8-byte
 * header, blocks of 32 << k bytes), so both engines count statuses against the budget alike.
 */
function statusBlockBytes(size: number): number {
  let block = 32;
  while (block < size + 8) block *= 2;
  return block;
}

/**
 * A binary min-heap of (deadline, host) for per-host timeouts. Heartbeats do not touch it: a
 * popped entry whose host has since moved its deadline is pushed back with the new one, so each
 * host costs one pop and push per timeout period instead of a sift per heartbeat.
 */
class DeadlineHeap {
  private readonly keys: number[] = [];
  private readonly hosts: HostRecord[] = [];
  private readonly gens: number[] = [];
  private nextGen = 1;

  get size(): number {
    return this.keys.length;
  }

  /** The earliest key, or Infinity when empty. */
  peekKey(): number {
    return this.keys[0] ?? Number.POSITIVE_INFINITY;
  }

  /** Pushes a live entry for `host`, making any older entry of it stale. */
  push(host: HostRecord, key: number): void {
    const gen = this.nextGen++;
    host.heapGen = gen;
    host.heapKey = key;
    let i = this.keys.length;
    this.keys.push(key);
    this.hosts.push(host);
    this.gens.push(gen);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if ((this.keys[parent] as number) <= key) break;
      this.move(parent, i);
      i = parent;
    }
    this.place(i, key, host, gen);
  }

  /** Removes the earliest entry; returns its host if the entry is still live, else null. */
  pop(): HostRecord | null {
    const topHost = this.hosts[0] as HostRecord;
    const topGen = this.gens[0] as number;
    const lastKey = this.keys.pop() as number;
    const lastHost = this.hosts.pop() as HostRecord;
    const lastGen = this.gens.pop() as number;
    const n = this.keys.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        let child = 2 * i + 1;
        if (child >= n) break;
        if (child + 1 < n && (this.keys[child + 1] as number) < (this.keys[child] as number)) {
          child++;
        }
        if ((this.keys[child] as number) >= lastKey) break;
        this.move(child, i);
        i = child;
      }
      this.place(i, lastKey, lastHost, lastGen);
    }
    if (topHost.heapGen !== topGen) return null;
    topHost.heapGen = 0;
    return topHost;
  }

  private move(from: number, to: number): void {
    this.keys[to] = this.keys[from] as number;
    this.hosts[to] = this.hosts[from] as HostRecord;
    this.gens[to] = this.gens[from] as number;
  }

  private place(i: number, key: number, host: HostRecord, gen: number): void {
    this.keys[i] = key;
    this.hosts[i] = host;
    this.gens[i] = gen;
  }
}

/** One host as hosts() and host(id) report it; the status copied, and only when asked for. */
function snapshotOf(rec: HostRecord, withStatus: boolean): HostSnapshot {
  const host: HostSnapshot = {
    id: rec.id,
    address: rec.address,
    state: rec.up ? 'up' : 'down',
    lastSeen: toEpoch(rec.lastSeen),
    incarnation: rec.incarnation,
    timeoutMs: rec.timeoutMs,
  };
  if (withStatus && rec.status !== undefined) host.status = Buffer.from(rec.status);
  return host;
}

/** `up` with a copy of the host's status when it has one. */
function withStatus(up: UpEvent, rec: HostRecord): UpEvent {
  if (rec.status !== undefined) up.status = Buffer.from(rec.status);
  return up;
}

function toEpoch(monotonic: number): number {
  return performance.timeOrigin + monotonic;
}

class JsEngine implements Engine {
  readonly kind = 'js' as const;

  readonly #options: ResolvedOptions;
  readonly #sink: EngineSink;
  /** Hosts by table key (the C++ HostTable); in `id` identity this is also the by-id table. */
  readonly #byKey = new Map<string, HostRecord>();
  readonly #byId: Map<string, HostRecord>;
  /** `fifo` expiry: up hosts in deadline order, because every host has the same timeout. */
  readonly #upFifo = new Map<string, HostRecord>();
  /** `wheel` expiry: per-host deadlines. */
  readonly #heap = new DeadlineHeap();
  /**
   * Down hosts in the order they went down: forgotten from the front after forgetAfterMs (the
   * same delay for all), and the front makes room for a new host when the table is full.
   */
  readonly #downFifo = new Map<string, HostRecord>();

  #socket: Socket | undefined;
  #tcp: JsTcpServer | undefined;
  #listening: Promise<ListenInfo> | undefined;
  #abortListen: ((error: HeartwatchError) => void) | undefined;
  #closing: Promise<void> | undefined;
  #closed = false;
  #recvBufferBytes = 0;

  #timer: NodeJS.Timeout | undefined;
  #timerAt = Number.POSITIVE_INFINITY;
  /** Monotonic ms up to which every datagram that reached the socket has been handled. */
  #watermark = 0;
  /** While a tick waits for I/O polls to empty the socket: the time it noted; else Infinity. */
  #drainingSince = Number.POSITIVE_INFINITY;
  #mayHaveLost = false;
  /** Deadlines in (from, until] may have lost their heartbeat. */
  #lossyFrom = 0;
  #lossyUntil = 0;
  #expiryWaits = 0;
  #lossyDeferred = 0;
  #uncertainDowns = 0;
  #addressChanges = 0;
  #lastAddressChangeId: string | null = null;
  #pending: HostEvent[] = [];
  #flushScheduled = false;
  #flushing = false;
  /** pause(): events wait in #pending. */
  #paused = false;
  /** Paused with eventRingCapacity events waiting: expiry holds until resume(). */
  #expiryHeld = false;

  #received = 0;
  #malformed = 0;
  #authUnsupported = 0;
  #authFailed = 0;
  #unauthenticated = 0;
  #notAllowed = 0;
  #replayed = 0;
  /** The key ring; null when the server has none. hw.setKeys() replaces it. */
  #keys: AuthKeys | null;
  #receiveErrors = 0;
  #processed = 0;
  #refused = 0;
  #hostsUp = 0;
  #hostsDown = 0;
  #eventsDelivered = 0;
  #statusHosts = 0;
  #statusBytes = 0;
  #statusOversize = 0;
  #statusOverBudget = 0;

  constructor(options: ResolvedOptions, sink: EngineSink) {
    this.#options = options;
    this.#sink = sink;
    this.#byId = options.identity === 'id' ? this.#byKey : new Map();
    this.#keys = options.auth?.keys ?? null;
  }

  listen(): Promise<ListenInfo> {
    this.#listening ??= new Promise<ListenInfo>((resolve, reject) => {
      if (this.#closed) {
        reject(new HeartwatchError('ERR_HW_CLOSED', 'heartwatch: listen() after close()'));
        return;
      }
      const { host, port, recvBufferBytes } = this.#options;
      const socket = isIPv4(host)
        ? createSocket({ type: 'udp4', recvBufferSize: recvBufferBytes })
        : createSocket({ type: 'udp6', ipv6Only: false, recvBufferSize: recvBufferBytes });
      this.#socket = socket;
      this.#abortListen = reject;
      const onBindError = (cause: NodeJS.ErrnoException): void => {
        this.#abortListen = undefined;
        try {
          socket.close();
        } catch {
          // close() already released it.
        }
        reject(
          new HeartwatchError(
            errorCode(cause.code, 'ERR_HW_SOCKET'),
            `heartwatch: cannot listen on UDP ${formatAddress(host, port)}: ${cause.message}`,
            { cause, syscall: cause.syscall ?? 'bind' },
          ),
        );
      };
      socket.once('error', onBindError);
      socket.on('message', (msg, rinfo) => this.#onMessage(msg, rinfo));
      socket.bind({ port, address: host, exclusive: true }, () => {
        // close() won the race and has already rejected this promise.
        if (this.#closed) return;
        socket.off('error', onBindError);
        socket.on('error', (err) => {
          // After bind, node:dgram reports only failed reads here.
          this.#receiveErrors++;
          this.#sink.warning(`heartwatch: socket error: ${err.message}`);
        });
        this.#abortListen = undefined;
        this.#recvBufferBytes = socket.getRecvBufferSize();
        const info = {
          port: socket.address().port,
          host,
          recvBufferBytes: this.#recvBufferBytes,
          receiveBackend: 'node:dgram' as const,
          receiveBackendFallback: null,
        };
        const tcp = this.#options.tcp;
        if (tcp === null) {
          resolve({ ...info, tcpPort: null });
          return;
        }
        this.#tcp = new JsTcpServer(
          tcp,
          (frame, address, port, payload, authentic, carried) =>
            this.#onFrame(frame, address, port, payload, authentic, carried),
          (carried, address, port) => this.#onClose(carried, address, port),
          this.#options.maxStatusBytes,
          () => this.#keys,
        );
        this.#tcp.listen().then((tcpPort) => resolve({ ...info, tcpPort }), reject);
      });
    });
    return this.#listening;
  }

  stats(): HeartwatchStats {
    const tracked = this.#byId.size;
    const pending = this.#pending.length;
    return {
      engine: 'js',
      received: this.#received,
      malformed: this.#malformed,
      authUnsupported: this.#authUnsupported,
      authFailed: this.#authFailed,
      unauthenticated: this.#unauthenticated,
      notAllowed: this.#notAllowed,
      replayed: this.#replayed,
      kernelDrops: 0,
      ringDrops: 0,
      receiveErrors: this.#receiveErrors,
      hostsUp: this.#hostsUp,
      hostsDown: this.#hostsDown,
      trackedHosts: tracked,
      refused: this.#refused,
      eventsPending: pending,
      eventsDelivered: this.#eventsDelivered,
      watermarkLagMs: this.#watermarkLag(),
      expiryWaits: this.#expiryWaits,
      lossyDeferred: this.#lossyDeferred,
      uncertainDowns: this.#uncertainDowns,
      addressChanges: this.#addressChanges,
      receivers: [
        {
          thread: 'js',
          cpu: null,
          backend: 'node:dgram',
          received: this.#received,
          malformed: this.#malformed,
          authUnsupported: this.#authUnsupported,
          authFailed: this.#authFailed,
          unauthenticated: this.#unauthenticated,
          notAllowed: this.#notAllowed,
          kernelDrops: 0,
          ringDrops: 0,
          recvBufferBytes: this.#recvBufferBytes,
          watermarkLagMs: this.#watermarkLag(),
          receiveErrors: this.#receiveErrors,
        },
      ],
      tcp: this.#tcp?.stats() ?? null,
      statuses: {
        hosts: this.#statusHosts,
        bytes: this.#statusBytes,
        oversize: this.#statusOversize,
        overBudget: this.#statusOverBudget,
        lost: 0,
        eventsDropped: 0,
      },
      workers: [
        {
          thread: 'js',
          cpu: null,
          processed: this.#processed,
          hostsUp: this.#hostsUp,
          hostsDown: this.#hostsDown,
          trackedHosts: tracked,
          refused: this.#refused,
          replayed: this.#replayed,
          eventsPending: pending,
          expiryWaits: this.#expiryWaits,
          lossyDeferred: this.#lossyDeferred,
          uncertainDowns: this.#uncertainDowns,
          addressChanges: this.#addressChanges,
          lastAddressChangeId: this.#lastAddressChangeId,
        },
      ],
    };
  }

  /**
   * Membership is fixed when called; each host's fields are read when its batch is built.
   * Yields to the event loop between batches so millions of hosts do not stall heartbeats.
   */
  async *hosts(query: HostsQuery = {}): AsyncGenerator<HostSnapshot[]> {
    const records = [...this.#byId.values()];
    const size = this.#options.eventBatchSize;
    for (let start = 0; start < records.length; start += size) {
      if (start > 0) await nextTurn();
      const batch: HostSnapshot[] = [];
      for (let i = start; i < Math.min(start + size, records.length); i++) {
        const rec = records[i] as HostRecord;
        if (rec.removed) continue;
        batch.push(snapshotOf(rec, query.statuses === true));
      }
      if (batch.length > 0) yield batch;
    }
  }

  host(id: string): Promise<HostSnapshot | undefined> {
    const rec = this.#byId.get(id);
    return Promise.resolve(rec === undefined ? undefined : snapshotOf(rec, true));
  }

  remove(id: string): Promise<boolean> {
    const rec = this.#byId.get(id);
    if (rec === undefined) return Promise.resolve(false);
    this.#forget(rec);
    return Promise.resolve(true);
  }

  close(): Promise<void> {
    this.#closing ??= new Promise<void>((resolve) => {
      this.#closed = true;
      this.#paused = false;
      this.#abortListen?.(
        new HeartwatchError('ERR_HW_CLOSED', 'heartwatch: closed while listening'),
      );
      this.#abortListen = undefined;
      if (this.#timer !== undefined) clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#flush();
      const tcpClosed = this.#tcp?.close();
      const socket = this.#socket;
      if (socket === undefined) {
        resolve();
        return;
      }
      try {
        socket.close(() => {
          if (tcpClosed === undefined) resolve();
          else tcpClosed.then(() => resolve());
        });
      } catch {
        // Already closed by a failed bind: nothing left to release.
        resolve();
      }
    });
    return this.#closing;
  }

  setKeys(keys: AuthKeys | null): void {
    this.#keys = keys;
  }

  #onMessage(msg: Buffer, rinfo: RemoteInfo): void {
    if (this.#closed) return;
    this.#received++;
    if (!allowsSource(this.#options.allow, rinfo.address)) {
      this.#notAllowed++;
      return;
    }
    const now = performance.now();
    const decoded = decodeHeartbeat(msg);
    const verdict = this.#judge(decoded, msg);
    if (verdict === null) return;
    const signature = verdict === 'authenticated' && decoded.status === 'ok' ? decoded : null;
    if (this.#options.identity === 'id') {
      if (decoded.status !== 'ok') return;
      this.#apply(
        decoded.hostId.toString(),
        rinfo,
        now,
        knownIncarnation(decoded.incarnation),
        decoded.intervalMs,
        decoded.leave,
        signature,
        decoded.payloadLength,
        msg.subarray(headerBytes, headerBytes + decoded.payloadLength),
      );
      return;
    }
    // Address identities: any datagram is a heartbeat of its source; v1 fields are used when present.
    const key = this.#options.identity === 'ip' ? rinfo.address : `${rinfo.address}|${rinfo.port}`;
    if (decoded.status === 'ok') {
      this.#apply(
        key,
        rinfo,
        now,
        knownIncarnation(decoded.incarnation),
        decoded.intervalMs,
        decoded.leave,
        signature,
        decoded.payloadLength,
        msg.subarray(headerBytes, headerBytes + decoded.payloadLength),
      );
    } else {
      this.#apply(key, rinfo, now, null, 0, false, null);
    }
  }

  /**
   * The auth rules (AuthGate in native/core/auth/auth_gate.h): 'authenticated' when the tag
   * matched a key, 'unsigned' when a datagram without a tag may pass, null when it is dropped
   * (and counted here).
   */
  #judge(decoded: DecodeResult, msg: Buffer): 'authenticated' | 'unsigned' | null {
    const keys = this.#keys;
    if (decoded.status === 'tagTruncated' && keys !== null) {
      this.#authFailed++;
      return null;
    }
    if (decoded.status !== 'ok') {
      if (this.#options.identity !== 'id') return this.#unsigned();
      this.#malformed++;
      return null;
    }
    if (!decoded.auth) return this.#unsigned();
    if (keys === null) {
      this.#authUnsupported++;
      return null;
    }
    const signedLength = headerBytes + decoded.payloadLength;
    if (!keys.verify(msg.subarray(0, signedLength), msg.subarray(signedLength))) {
      this.#authFailed++;
      return null;
    }
    return 'authenticated';
  }

  #unsigned(): 'unsigned' | null {
    if (this.#keys === null) return 'unsigned';
    this.#unauthenticated++;
    return this.#options.auth?.required === true ? null : 'unsigned';
  }

  /**
   * A valid frame from a TCP connection: a heartbeat of the connection's peer, past the same
   * `allow` list and auth rules as a datagram (#judge). `authentic`: whether its tag matched a
   * key (undefined: unsigned, or no key when its header arrived). Records the frame's host in
   * `carried`, its connection's. Returns the TCP counter to add one to.
   */
  #onFrame(
    frame: DecodedHeartbeat,
    address: string,
    port: number,
    payload: Uint8Array | undefined,
    authentic: boolean | undefined,
    carried: TcpCarried,
  ): TcpFrameCounter | null {
    if (this.#closed) return null;
    if (!allowsSource(this.#options.allow, address)) return 'notAllowed';
    if (frame.auth && authentic === undefined) return 'authUnsupported';
    if (authentic === false) return 'authFailed';
    const unauthenticated = !frame.auth && this.#keys !== null;
    if (unauthenticated && this.#options.auth?.required === true) return 'unauthenticated';
    const identity = this.#options.identity;
    const key =
      identity === 'id'
        ? frame.hostId.toString()
        : identity === 'ip'
          ? address
          : `${address}|${port}`;
    carried.key = key;
    carried.authenticated = authentic === true;
    const incarnation = knownIncarnation(frame.incarnation);
    this.#apply(
      key,
      { address, port },
      performance.now(),
      incarnation,
      frame.intervalMs,
      frame.leave,
      authentic === true ? frame : null,
      frame.payloadLength,
      payload,
    );
    return unauthenticated ? 'unauthenticated' : null;
  }

  /**
   * A TCP connection that carried host `carried.key` closed (`tcp.closeMeansDown`): the host goes
   * down (reason disconnected) if it is up and its latest heartbeat came from this connection's
   * peer, so a host that reconnected and beat on a new connection stays up. With keys, only a
   * connection whose last frame was authenticated may down a host: else any peer could send one
   * forged beat for it (accepted without auth.required) and hang up. As Detector::disconnect.
   */
  #onClose(carried: TcpCarried, address: string, port: number): void {
    if (this.#closed || this.#options.tcp?.closeMeansDown !== true) return;
    if (carried.key === undefined || (this.#keys !== null && !carried.authenticated)) return;
    const rec = this.#byKey.get(carried.key);
    if (rec === undefined || !rec.up || rec.ip !== address || rec.port !== port) return;
    const now = performance.now();
    this.#upFifo.delete(rec.key);
    this.#clearStatus(rec);
    this.#goDown(rec, 'disconnected', now);
    // The event reports the last heartbeat; from now on the close is the last heard of it.
    rec.lastSeen = now;
  }

  /**
   * `incarnation` null: a plain datagram that carries none, so the host's stays as it was.
   * `statusLength` > 0: the heartbeat carried a status, whose bytes are `status` when it was
   * kept (at most maxStatusBytes).
   */
  #apply(
    key: string,
    rinfo: Pick<RemoteInfo, 'address' | 'port'>,
    now: number,
    incarnation: number | null,
    intervalMs: number,
    leave: boolean,
    signature: Signature | null,
    statusLength = 0,
    status?: Uint8Array,
  ): void {
    const { missedBeats, timeoutMs } = this.#options;
    // Announced timeouts are capped where the native detector caps them.
    const timeout =
      missedBeats > 0 && intervalMs > 0
        ? Math.min(intervalMs * missedBeats, maxTimeoutMs)
        : timeoutMs;
    let rec = this.#byKey.get(key);
    if (rec === undefined) {
      // A LEAVE from a host we do not track changes nothing.
      if (leave) return;
      if (this.#byId.size >= this.#options.maxHosts && !this.#makeRoom()) {
        this.#refused++;
        return;
      }
      const identity = this.#options.identity;
      const id =
        identity === 'id' ? key : hostIdFromSource(rinfo.address, rinfo.port, identity).toString();
      rec = {
        id,
        key,
        ip: rinfo.address,
        port: rinfo.port,
        address: formatAddress(rinfo.address, rinfo.port),
        up: true,
        lastSeen: now,
        timeoutMs: timeout,
        deadline: now + timeout,
        incarnation: incarnation ?? 0,
        downAt: 0,
        heapGen: 0,
        heapKey: 0,
        removed: false,
        status: undefined,
        replay: signature === null ? null : new ReplayWindow(signature.incarnation, signature.seq),
        deferred: false,
      };
      this.#byKey.set(key, rec);
      if (this.#byId !== this.#byKey) this.#byId.set(id, rec);
      this.#processed++;
      this.#hostsUp++;
      this.#storeStatus(rec, statusLength, status);
      this.#emit(
        withStatus(
          {
            type: 'up',
            id,
            address: rec.address,
            at: toEpoch(now),
            recovered: false,
            incarnation: rec.incarnation,
          },
          rec,
        ),
      );
      this.#insertExpiry(rec);
      return;
    }
    if (signature !== null && !this.#fresh(rec, signature)) return;
    if (leave && !rec.up) return;
    this.#processed++;
    if (rec.ip !== rinfo.address || rec.port !== rinfo.port) {
      this.#addressChanges++;
      this.#lastAddressChangeId = rec.id;
      rec.ip = rinfo.address;
      rec.port = rinfo.port;
      rec.address = formatAddress(rinfo.address, rinfo.port);
    }
    rec.lastSeen = now;
    if (leave) {
      this.#upFifo.delete(key);
      this.#clearStatus(rec);
      this.#goDown(rec, 'left', now);
      return;
    }
    rec.timeoutMs = timeout;
    rec.deadline = now + timeout;
    rec.deferred = false;
    if (!rec.up) {
      rec.up = true;
      this.#hostsUp++;
      this.#hostsDown--;
      this.#downFifo.delete(key);
      if (incarnation !== null) rec.incarnation = incarnation;
      this.#storeStatus(rec, statusLength, status);
      this.#emit(
        withStatus(
          {
            type: 'up',
            id: rec.id,
            address: rec.address,
            at: toEpoch(now),
            recovered: true,
            incarnation: rec.incarnation,
          },
          rec,
        ),
      );
    } else {
      if (incarnation !== null && incarnation !== rec.incarnation) {
        this.#emit({
          type: 'restart',
          id: rec.id,
          address: rec.address,
          at: toEpoch(now),
          incarnation,
          previousIncarnation: rec.incarnation,
        });
        rec.incarnation = incarnation;
      }
      const previous = this.#storeStatus(rec, statusLength, status);
      if (previous !== undefined && rec.status !== undefined) {
        this.#emit({
          type: 'update',
          id: rec.id,
          address: rec.address,
          at: toEpoch(now),
          status: Buffer.from(rec.status),
          ...(previous === null ? {} : { previous }),
        });
      }
    }
    this.#insertExpiry(rec);
  }

  /**
   * Keeps `status` as the host's status when it differs (the rules of the native detector:
   * detector.h "Statuses"). Returns the status it replaced (`null`: it had none) when it changed,
   * `undefined` when nothing changed: no status, the same bytes, or refused and counted.
   */
  #storeStatus(
    rec: HostRecord,
    length: number,
    status: Uint8Array | undefined,
  ): Buffer | null | undefined {
    const max = this.#options.maxStatusBytes;
    if (length === 0 || max === 0) return undefined;
    if (length > max || status === undefined) {
      this.#statusOversize++;
      return undefined;
    }
    const old = rec.status;
    if (old !== undefined && old.byteLength === length && old.equals(status)) return undefined;
    const freed = old === undefined ? 0 : statusBlockBytes(old.byteLength);
    const taken = statusBlockBytes(length);
    if (this.#statusBytes - freed + taken > this.#options.statusBudgetBytes) {
      this.#statusOverBudget++;
      return undefined;
    }
    this.#statusBytes += taken - freed;
    if (old === undefined) this.#statusHosts++;
    rec.status = Buffer.from(status);
    return old ?? null;
  }

  #clearStatus(rec: HostRecord): void {
    if (rec.status === undefined) return;
    this.#statusBytes -= statusBlockBytes(rec.status.byteLength);
    this.#statusHosts--;
    rec.status = undefined;
  }

  /** The replay check of an authenticated datagram (docs/protocol.md, "Replay protection"). */
  #fresh(rec: HostRecord, signature: Signature): boolean {
    if (rec.replay === null) {
      rec.replay = new ReplayWindow(signature.incarnation, signature.seq);
      return true;
    }
    if (rec.replay.fresh(signature.incarnation, signature.seq)) return true;
    this.#replayed++;
    return false;
  }

  /**
   * Files an up host in the expiry index under its new deadline (the C++ ExpiryIndex's insert or
   * rearm) and makes sure the timer fires by then.
   */
  #insertExpiry(rec: HostRecord): void {
    if (this.#options.expiry === 'fifo') {
      // Every host has the same timeout, so the tail is always the latest deadline.
      this.#upFifo.delete(rec.key);
      this.#upFifo.set(rec.key, rec);
    } else if (rec.heapGen === 0 || rec.deadline < rec.heapKey) {
      // A later deadline keeps the old entry, which is re-filed when it pops.
      this.#heap.push(rec, rec.deadline);
    }
    if (rec.deadline < this.#timerAt) this.#arm(rec.deadline);
  }

  #goDown(rec: HostRecord, reason: DownReason, now: number): void {
    rec.up = false;
    rec.downAt = now;
    this.#hostsUp--;
    this.#hostsDown++;
    const down: DownEvent = {
      type: 'down',
      id: rec.id,
      address: rec.address,
      at: toEpoch(now),
      lastSeen: toEpoch(rec.lastSeen),
      timeoutMs: rec.timeoutMs,
      reason,
    };
    if (rec.deferred && reason === 'timeout') {
      down.uncertain = true;
      this.#uncertainDowns++;
    }
    rec.deferred = false;
    this.#emit(down);
    const forgetAfterMs = this.#options.forgetAfterMs;
    this.#downFifo.delete(rec.key);
    this.#downFifo.set(rec.key, rec);
    if (forgetAfterMs > 0 && now + forgetAfterMs < this.#timerAt) this.#arm(now + forgetAfterMs);
  }

  /**
   * A full table takes a new host in place of the host down longest, forgotten without an event,
   * so hosts that stopped (a flood of made-up ids among them) cannot keep new hosts out; up
   * hosts never lose their place. False when every tracked host is up.
   */
  #makeRoom(): boolean {
    const oldest = this.#downFifo.values().next();
    if (oldest.done === true) return false;
    this.#forget(oldest.value);
    return true;
  }

  #forget(rec: HostRecord): void {
    this.#clearStatus(rec);
    rec.removed = true;
    rec.heapGen = 0;
    this.#byKey.delete(rec.key);
    this.#byId.delete(rec.id);
    this.#upFifo.delete(rec.key);
    this.#downFifo.delete(rec.key);
    if (rec.up) this.#hostsUp--;
    else this.#hostsDown--;
  }

  #arm(at: number): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = at;
    if (this.#closed || this.#expiryHeld || at === Number.POSITIVE_INFINITY) return;
    // Node's timers can fire up to a millisecond before performance.now() reaches `at`; the
    // tick re-checks every deadline, so an early wake-up only re-arms.
    const delay = Math.max(1, Math.ceil(at - performance.now()));
    this.#timer = setTimeout(() => this.#tick(), delay);
    // The socket keeps the process alive while listening; the timer alone should not.
    this.#timer.unref();
  }

  /** Timers run before I/O when the loop wakes: note the time and let the socket be read first. */
  #tick(): void {
    this.#timer = undefined;
    this.#timerAt = Number.POSITIVE_INFINITY;
    if (this.#closed || this.#drainingSince !== Number.POSITIVE_INFINITY) return;
    this.#awaitDrain(performance.now(), this.#received, 1);
  }

  /**
   * Runs `#expire(since)` once an I/O poll after `since` has emptied the socket, or after
   * `maxDrainPolls` polls, with the window treated as lossy when the socket may have been full.
   */
  #awaitDrain(since: number, receivedAtSince: number, poll: number): void {
    this.#drainingSince = since;
    const received = this.#received;
    setImmediate(() => {
      if (this.#closed) return;
      const burst = this.#received - received >= libuvReadsPerPoll;
      if (burst && poll < maxDrainPolls) {
        // A full burst: the socket may hold more that arrived before `since`. Read on.
        this.#expiryWaits++;
        this.#awaitDrain(since, receivedAtSince, poll + 1);
        return;
      }
      this.#drainingSince = Number.POSITIVE_INFINITY;
      // Node reports no kernel drops: a backlog not read to the end, or as large as the socket
      // could hold, may have overflowed it.
      const backlog = this.#received - receivedAtSince;
      this.#mayHaveLost = burst || backlog >= this.#recvBufferBytes / maxDatagramCharge;
      this.#expire(since);
    });
  }

  #watermarkLag(): number {
    return Math.max(0, performance.now() - this.#drainingSince);
  }

  /** Expires every deadline up to `horizon`, a time before which the socket has been read. */
  #expire(horizon: number): void {
    if (this.#mayHaveLost) {
      // Deadlines between the last watermark and this one may have lost their heartbeat.
      this.#lossyFrom = this.#lossyUntil > this.#watermark ? this.#lossyFrom : this.#watermark;
      this.#lossyUntil = horizon;
      this.#mayHaveLost = false;
    }
    this.#watermark = horizon;
    const now = performance.now();
    const { eventRingCapacity } = this.#options;
    // Paused: expire only while fewer than eventRingCapacity events wait, as a native worker does.
    let budget = this.#paused
      ? Math.max(0, Math.min(expireBudget, eventRingCapacity - this.#pending.length))
      : expireBudget;
    if (this.#options.expiry === 'fifo') {
      for (const rec of this.#upFifo.values()) {
        if (rec.deadline > horizon || budget === 0) break;
        this.#upFifo.delete(rec.key);
        if (!this.#deferIfLossy(rec)) this.#goDown(rec, 'timeout', now);
        budget--;
      }
    } else {
      while (budget > 0 && this.#heap.peekKey() <= horizon) {
        const rec = this.#heap.pop();
        if (rec === null || !rec.up) continue;
        if (rec.deadline <= horizon) {
          if (!this.#deferIfLossy(rec)) this.#goDown(rec, 'timeout', now);
          budget--;
        } else {
          this.#heap.push(rec, rec.deadline);
        }
      }
    }
    const forgetAfterMs = this.#options.forgetAfterMs;
    for (const rec of this.#downFifo.values()) {
      if (forgetAfterMs === 0 || rec.downAt + forgetAfterMs > now || budget === 0) break;
      this.#forget(rec);
      budget--;
    }
    this.#expiryHeld = this.#paused && this.#pending.length >= eventRingCapacity;
    this.#arm(budget === 0 ? now : this.#nextDue());
  }

  /** Moves a deadline in the lossy window to one timeout after it (once); true when it did. */
  #deferIfLossy(rec: HostRecord): boolean {
    if (rec.deferred || rec.deadline <= this.#lossyFrom || rec.deadline > this.#lossyUntil) {
      return false;
    }
    rec.deferred = true;
    // One more timeout from the end of the window: a live host is heard again by then.
    rec.deadline = Math.max(rec.deadline, this.#lossyUntil) + rec.timeoutMs;
    this.#lossyDeferred++;
    this.#insertExpiry(rec);
    return true;
  }

  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#expiryHeld = false;
    if (this.#closed) return;
    this.#scheduleFlush();
    this.#arm(Math.min(this.#timerAt, this.#nextDue()));
  }

  #nextDue(): number {
    let next = this.#heap.peekKey();
    const up = this.#upFifo.values().next();
    if (!up.done) next = Math.min(next, up.value.deadline);
    const down = this.#downFifo.values().next();
    if (!down.done && this.#options.forgetAfterMs > 0) {
      next = Math.min(next, down.value.downAt + this.#options.forgetAfterMs);
    }
    return next;
  }

  #emit(event: HostEvent): void {
    this.#pending.push(event);
    this.#scheduleFlush();
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled || this.#paused) return;
    this.#flushScheduled = true;
    // One flush per loop turn gathers every event the datagrams and timers of that turn made.
    setImmediate(() => {
      this.#flushScheduled = false;
      this.#flush();
    });
  }

  #flush(): void {
    // The sink may call back into remove() or close(); a nested flush would reorder batches.
    if (this.#flushing) return;
    this.#flushing = true;
    try {
      const size = this.#options.eventBatchSize;
      // A listener may pause() between batches: the rest stays pending, in order.
      while (this.#pending.length > 0 && !this.#paused) {
        const all = this.#pending;
        const batch = all.length <= size ? all : all.slice(0, size);
        this.#pending = all.length <= size ? [] : all.slice(size);
        this.#eventsDelivered += batch.length;
        this.#sink.events(batch);
      }
    } finally {
      this.#flushing = false;
    }
  }
}

/** Creates the pure-TS engine; nothing is bound until `listen()`. */
export const createJsEngine: EngineFactory = (options, sink) => new JsEngine(options, sink);
