/**
 * Counters, identical in shape for both engines. Every count is cumulative since `listen()`
 * except the gauges `hostsUp`, `hostsDown`, `trackedHosts` and `eventsPending`. The pure-TS
 * engine reports one receiver and one worker, both named `js`.
 */

/** One receiver thread (for the pure-TS engine: its single socket). */
export interface ReceiverStats {
  /** Thread name, e.g. `hw-rx-0`; `js` for the pure-TS engine. */
  thread: string;
  /** CPU the thread is pinned to, or `null` when unpinned. */
  cpu: number | null;
  /** How it reads its socket: option `receiveBackend` as resolved; `'node:dgram'` for the pure-TS engine. */
  backend: 'recvmmsg' | 'io_uring' | 'node:dgram';
  /** Datagrams received, valid or not. */
  received: number;
  /** Datagrams dropped because they are not valid wire-protocol v1. */
  malformed: number;
  /** Valid v1 datagrams with the AUTH flag, dropped because this server has no key. */
  authUnsupported: number;
  /** Datagrams dropped because their tag was wrong, truncated, or the datagram was altered. */
  authFailed: number;
  /** Datagrams without a tag while the server has keys: dropped when `auth.required`, else accepted. */
  unauthenticated: number;
  /** Datagrams dropped before parsing because their source is outside `allow`. */
  notAllowed: number;
  /** Datagrams the kernel dropped because the socket buffer was full (0 when unknown). */
  kernelDrops: number;
  /** Heartbeats dropped because a receiver-to-worker ring was full. */
  ringDrops: number;
  /** Receive buffer size the kernel granted. */
  recvBufferBytes: number;
  /**
   * Milliseconds between now and this receiver's watermark: every datagram that reached its
   * socket before the watermark has been read. Expiry never passes the oldest watermark, so a
   * receiver that falls behind delays downs instead of causing false ones. An idle socket is
   * looked at every 100 ms or when a deadline is due, so up to about 100 is normal.
   */
  watermarkLagMs: number;
  /**
   * Socket reads that failed with an error other than "nothing to read" (EAGAIN, EINTR), such as
   * ENOMEM or an error the kernel queued on the socket; the receiver goes on after each.
   */
  receiveErrors: number;
}

/** One worker thread, owning one shard of the hosts. */
export interface WorkerStats {
  thread: string;
  cpu: number | null;
  /** Heartbeats applied to the host table. */
  processed: number;
  hostsUp: number;
  hostsDown: number;
  /** Hosts in the table, up or down (down hosts stay until `forgetAfterMs` or `remove()`). */
  trackedHosts: number;
  /** Heartbeats from new hosts turned away because `maxHosts` were already tracked. */
  refused: number;
  /** Authenticated heartbeats and leaves dropped as replays (an old seq or incarnation). */
  replayed: number;
  /** Events produced but not yet handed to JavaScript. */
  eventsPending: number;
  /** Times expiry found a deadline due and waited for the receive watermark to pass it. */
  expiryWaits: number;
  /** Deadlines that fell where datagrams were lost, and got one more timeout. */
  lossyDeferred: number;
  /** Downs after such a deferral: delivered with `uncertain: true`. */
  uncertainDowns: number;
  /**
   * Heartbeats from another source (`ip:port`) than their host's previous one. A host that moved
   * once adds one; one that keeps adding is most likely two senders sharing a host id.
   */
  addressChanges: number;
  /** The id of the latest host whose source changed (a sample, read without a lock); `null` before any. */
  lastAddressChangeId: string | null;
}

/** Totals over all threads, and the per-thread figures they sum. */
export interface HeartwatchStats {
  engine: 'native' | 'js';
  received: number;
  malformed: number;
  authUnsupported: number;
  authFailed: number;
  unauthenticated: number;
  notAllowed: number;
  /** Summed over workers: replay state lives with each host, in the worker that owns it. */
  replayed: number;
  kernelDrops: number;
  ringDrops: number;
  receiveErrors: number;
  hostsUp: number;
  hostsDown: number;
  trackedHosts: number;
  refused: number;
  eventsPending: number;
  /** Events handed to JavaScript so far. */
  eventsDelivered: number;
  /** The largest receiver `watermarkLagMs`: how far behind the clock expiry is held. */
  watermarkLagMs: number;
  expiryWaits: number;
  lossyDeferred: number;
  uncertainDowns: number;
  /** Summed over workers: see {@link WorkerStats.addressChanges}. */
  addressChanges: number;
  receivers: ReceiverStats[];
  workers: WorkerStats[];
  /** The TCP transport's counters; `null` when TCP is off. */
  tcp: TcpStats | null;
  /** Host statuses (README "Statuses"). */
  statuses: StatusStats;
}

/** Host statuses, summed over the workers. */
export interface StatusStats {
  /** Hosts that have a status. */
  hosts: number;
  /** Bytes of the blocks holding them (8-byte header and power-of-two rounding included). */
  bytes: number;
  /** Statuses refused: longer than `maxStatusBytes`. */
  oversize: number;
  /** Statuses refused: `statusBudgetBytes` reached. */
  overBudget: number;
  /** Statuses that could not be passed from a receiver to a worker (native engine: the status byte ring between them was full); the heartbeats still counted. */
  lost: number;
  /** Update events dropped because JavaScript fell too far behind (native engine; the statuses are still kept). */
  eventsDropped: number;
}

/** One TCP reactor thread (for the pure-TS engine: its node:net server, named `js`). */
export interface TcpReactorStats {
  /** Thread name, e.g. `hw-tcp-0`; `js` for the pure-TS engine. */
  thread: string;
  cpu: number | null;
  /** Complete frames read. */
  frames: number;
  /** Connections closed because a frame broke the v1 rules. */
  protocolErrors: number;
  /** Frames with the AUTH flag while the server has no key, dropped. */
  authUnsupported: number;
  /** Frames without a tag while the server has keys: dropped when `auth.required`, else accepted. */
  unauthenticated: number;
  /** Frames dropped: the AUTH tag matched no key (wrong key, or the frame was altered). */
  authFailed: number;
  /**
   * Connections closed because a signed frame spanned reads and the reactor's bounded pool of
   * hashing slots (256 per reactor) was in use; always 0 in the pure-TS engine.
   */
  authSlotsFull: number;
  /**
   * Statuses refused, their heartbeats kept (the host keeps its previous status): a status that
   * spanned reads found the reactor's bounded pool of status slots (256 per reactor) in use;
   * always 0 in the pure-TS engine.
   */
  statusSlotsFull: number;
  /** Frames dropped because the peer's address is outside `allow`. */
  notAllowed: number;
  /** Frames dropped because a reactor-to-worker ring was full. */
  ringDrops: number;
  /** Connections closed: no complete first frame within `tcp.handshakeTimeoutMs`. */
  handshakeTimeouts: number;
  /** Connections closed: no frame within `tcp.idleTimeoutMs`. */
  idleTimeouts: number;
  /** Connections closed: a frame took longer than `tcp.frameTimeoutMs` to arrive. */
  slowFrames: number;
  /** Connections the peer closed or reset. */
  closedByPeer: number;
}

/** The TCP transport: the accept thread's counters, then totals over the reactors. */
export interface TcpStats {
  /** The bound TCP port. */
  port: number;
  /** Connections accepted and admitted (past the caps), each handed to a reactor. */
  accepted: number;
  /** Connections closed at once because `tcp.maxConnections` were open. */
  refusedMaxConnections: number;
  /** Connections closed at once because `tcp.maxConnectionsPerIp` were open from that IP. */
  refusedPerIp: number;
  /** Times accept() found no file descriptor left and paused 100 ms (the backlog holds the rest). */
  acceptPaused: number;
  /** Times accept() waited 1 ms because a reactor's hand-off ring was full (the connection waited too; none is dropped). */
  handoffWaits: number;
  /** Connections open now (a gauge). */
  openConnections: number;
  /** The process's file-descriptor limit (soft RLIMIT_NOFILE, raised to the hard limit on listen); 0 in the pure-TS engine, which cannot read it. */
  descriptorLimit: number;
  /** Other accept() failures. */
  acceptErrors: number;
  frames: number;
  protocolErrors: number;
  authUnsupported: number;
  unauthenticated: number;
  authFailed: number;
  authSlotsFull: number;
  statusSlotsFull: number;
  notAllowed: number;
  ringDrops: number;
  handshakeTimeouts: number;
  idleTimeouts: number;
  slowFrames: number;
  closedByPeer: number;
  reactors: TcpReactorStats[];
}
