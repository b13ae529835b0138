/**
 * Host events, as both engines deliver them. Times are milliseconds since the Unix epoch
 * (fractional where the clock gives sub-millisecond precision); ids are decimal u64 strings,
 * because a u64 does not fit a JS number.
 *
 * `address` is the datagram's source as `ip:port`, IPv6 as `[::1]:port`; IPv4 datagrams that
 * reach a dual-stack socket are shown as plain IPv4 (`127.0.0.1:port`), not `::ffff:`-mapped.
 */

/** A host started sending heartbeats: first seen, or back after being down. */
export interface UpEvent {
  type: 'up';
  id: string;
  address: string;
  /** When the heartbeat that brought the host up was received. */
  at: number;
  /** `false` for a host seen for the first time, `true` for a host that was down. */
  recovered: boolean;
  /** The incarnation that heartbeat carried (0 for plain datagrams in address/ip identity). */
  incarnation: number;
  /**
   * The host's status (README "Statuses") after that heartbeat: the one it carried, or for a
   * recovered host that sent none, the one it had. Absent when the host has none.
   */
  status?: Buffer;
}

/** Why a host went down (DownEvent `reason`); the native engine's codes are in its contract. */
export type DownReason = 'timeout' | 'left' | 'disconnected';

/** A host stopped: its deadline passed with no heartbeat, it announced it was leaving, or its TCP connection closed. */
export interface DownEvent {
  type: 'down';
  id: string;
  address: string;
  /** When the host was declared down; for `timeout`, never earlier than `lastSeen + timeoutMs`. */
  at: number;
  /** When its last heartbeat was received. */
  lastSeen: number;
  /**
   * The timeout that applied to the host: its announced interval times `missedBeats`, or the
   * server's `timeoutMs` (what `hosts()` reports as its `timeoutMs`). For `timeout`, `at` is
   * never earlier than `lastSeen + timeoutMs`; `at - (lastSeen + timeoutMs)` is how late the
   * down was detected.
   */
  timeoutMs: number;
  /**
   * `timeout`: no heartbeat before the deadline; `left`: a heartbeat with the LEAVE flag;
   * `disconnected`: with `tcp.closeMeansDown`, the TCP connection its latest heartbeat came over
   * closed without a LEAVE (README "TCP transport"). For `disconnected`, `lastSeen` is that
   * heartbeat's time; `hosts()` then reports the close as the host's `lastSeen`, as it reports a
   * LEAVE's.
   */
  reason: DownReason;
  /**
   * Present (true) when the host's deadline fell in a lossy window (the kernel or a full ring
   * dropped datagrams around it), so it was given one more timeout and stayed silent through
   * it: most likely down, but a heartbeat may have been lost. See README "What a down means".
   */
  uncertain?: true;
  /** Present (true) when it went down during a mass-failure storm (see {@link StormEvent}). */
  storm?: true;
}

/** An up host's incarnation changed: it restarted between two heartbeats, without missing its deadline. */
export interface RestartEvent {
  type: 'restart';
  id: string;
  address: string;
  at: number;
  incarnation: number;
  previousIncarnation: number;
}

/**
 * An up host's status changed: a heartbeat carried bytes that differ from the status it had.
 * Never for an unchanged status, and never for the heartbeat that brings a host up (its `up`
 * carries the status). In order with the host's other events.
 */
export interface UpdateEvent {
  type: 'update';
  id: string;
  address: string;
  /** When the heartbeat that carried the new status was received. */
  at: number;
  /** The new status bytes (a copy the listener owns). */
  status: Buffer;
  /** The status it replaced; absent when the host had none. */
  previous?: Buffer;
}

export type HostEvent = UpEvent | DownEvent | RestartEvent | UpdateEvent;

/** One tracked host, as `hosts()` reports it. */
export interface HostSnapshot {
  id: string;
  address: string;
  state: 'up' | 'down';
  lastSeen: number;
  incarnation: number;
  /** The timeout applied to this host: its announced interval times `missedBeats`, or `timeoutMs`. */
  timeoutMs: number;
  /** The host's latest status: by `host(id)` always, by `hosts()` when asked for; absent when it has none. */
  status?: Buffer;
}

/** What `hosts()` and `hostsIterator()` include. */
export interface HostsQuery {
  /** Include each host's status (copies its bytes: costs memory for large fleets). Default false. */
  statuses?: boolean;
}

/**
 * A mass failure: more than `storm.fraction` of the up hosts went down by timeout within one
 * window (a switch died, or heartwatch's own network did). `start` comes before the first down
 * of the storm is delivered; `end` once a whole window passed without a timeout.
 */
export interface StormEvent {
  phase: 'start' | 'end';
  /** Epoch ms. */
  at: number;
  /** Downs by timeout: in the window that started it (start), during the whole storm (end). */
  downs: number;
  /** Hosts up when the window began: the base of the fraction. */
  hosts: number;
  /** End only, policy `hold`: downs held and delivered now. */
  held?: number;
  /** End only, policy `hold`: held hosts heard again, never reported down. */
  recovered?: number;
}
