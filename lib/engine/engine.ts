import type { AuthKeys } from '../auth/keys.js';
import type { HostEvent, HostSnapshot, HostsQuery } from '../events.js';
import type { ResolvedOptions } from '../options.js';
import type { HeartwatchStats } from '../stats.js';

/** Where an engine delivers what it produces; always called on the JS thread. */
export interface EngineSink {
  /** A batch of events, at most `eventBatchSize` long, in order per host. */
  events(batch: HostEvent[]): void;
  /** Something the user should know that is not an error, e.g. a socket error after listen(). */
  warning(message: string): void;
  /** The engine lost part of itself for good (a receiver thread stopped); it keeps running. */
  error(error: Error): void;
}

/** What `listen()` resolves with. */
export interface ListenInfo {
  /** The bound port: the one asked for, or the one the kernel picked for port 0. */
  port: number;
  host: string;
  /** Receive buffer the kernel granted (Linux reports twice the requested size, capped by rmem_max). */
  recvBufferBytes: number;
  /**
   * How the UDP socket is read: the native engine's `receiveBackend` as resolved (receiver 0's;
   * each receiver's in `stats().receivers[i].backend`), `'node:dgram'` for the pure-TS engine.
   */
  receiveBackend: 'recvmmsg' | 'io_uring' | 'node:dgram';
  /**
   * Why the native engine reads with recvmmsg where `receiveBackend: 'auto'` would have used
   * io_uring: the refused call and its errno (`'io_uring_setup: EPERM'` under a seccomp policy
   * that forbids it); `null` where nothing was refused.
   */
  receiveBackendFallback: string | null;
  /** The bound TCP port, or `null` when TCP is off. */
  tcpPort: number | null;
}

/** A detection engine: the C++ pipeline or the pure-TS fallback, with identical behaviour. */
export interface Engine {
  readonly kind: 'native' | 'js';
  /**
   * Resolves when every socket is bound and every thread runs. Rejects with a `HeartwatchError`
   * whose code is the errno name (`EADDRINUSE`, ...) and `syscall` says which call failed.
   */
  listen(): Promise<ListenInfo>;
  /** Cheap and synchronous. */
  stats(): HeartwatchStats;
  /** The tracked hosts, streamed in batches; with statuses when `query.statuses`. */
  hosts(query?: HostsQuery): AsyncIterable<HostSnapshot[]>;
  /** One tracked host with its status, or `undefined` when it is not tracked. */
  host(id: string): Promise<HostSnapshot | undefined>;
  /**
   * Forgets a host now, without an event; resolves `false` when it was not tracked. Asynchronous
   * because the native engine's tables belong to worker threads, which take the request in turn.
   */
  remove(id: string): Promise<boolean>;
  /**
   * Replaces the key ring (null: no keys) without a restart; every datagram sent after this
   * returns is checked with the new keys only. Already checked by the caller.
   */
  setKeys(keys: AuthKeys | null): void;
  /**
   * Backpressure: hands no more events to the sink until `resume()`. The engine holds them in
   * order and keeps expiring only while fewer than `eventRingCapacity` events wait (per worker for
   * the native engine), so memory stays bounded and none is lost. Heartbeats are still applied.
   */
  pause(): void;
  /** Hands the held events over again, from the next turn of the event loop. */
  resume(): void;
  /** Stops receiving and delivers what is pending, paused or not; idempotent. */
  close(): Promise<void>;
}

export type EngineFactory = (options: ResolvedOptions, sink: EngineSink) => Engine;
