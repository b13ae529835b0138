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
}

/** A host stopped: its deadline passed with no heartbeat, or it announced it was leaving. */
export interface DownEvent {
  type: 'down';
  id: string;
  address: string;
  /** When the host was declared down; for `timeout`, never earlier than `lastSeen + timeoutMs`. */
  at: number;
  /** When its last heartbeat was received. */
  lastSeen: number;
  /** `timeout`: no heartbeat before the deadline; `left`: a heartbeat with the LEAVE flag. */
  reason: 'timeout' | 'left';
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

export type HostEvent = UpEvent | DownEvent | RestartEvent;

/** One tracked host, as `hosts()` reports it. */
export interface HostSnapshot {
  id: string;
  address: string;
  state: 'up' | 'down';
  lastSeen: number;
  incarnation: number;
  /** The timeout applied to this host: its announced interval times `missedBeats`, or `timeoutMs`. */
  timeoutMs: number;
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
