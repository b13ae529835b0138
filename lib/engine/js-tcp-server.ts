import { createServer, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { AuthKeys } from '../auth/keys.js';
import { errorCode, HeartwatchError } from '../errors.js';
import { FrameReader } from '../protocol/frame-reader.js';
import { formatAddress } from '../protocol/host-id.js';
import type { DecodedHeartbeat } from '../protocol/wire-v1.js';
import type { TcpReactorStats, TcpStats } from '../stats.js';
import type { ResolvedTcpOptions } from '../tcp-options.js';

/** The counters a frame handler may ask to add one to. */
export type TcpFrameCounter = 'notAllowed' | 'unauthenticated' | 'authFailed' | 'authUnsupported';

/**
 * Receives each valid frame with its connection's peer, which is the frame's source, and applies
 * it or drops it; returns the counter to add one to, if any: `notAllowed`, `authFailed`,
 * `authUnsupported` (dropped) or `unauthenticated` (an unsigned frame while the server has keys:
 * dropped under `auth.required`, applied otherwise).
 * `payload`: the frame's payload when it is at most the server's `keepPayloadBytes`.
 * `authentic`: whether a signed frame's tag matched a key; undefined for an unsigned frame, or
 * when the server had no key as the frame's header arrived.
 */
export type TcpFrameHandler = (
  frame: DecodedHeartbeat,
  address: string,
  port: number,
  payload: Uint8Array | undefined,
  authentic: boolean | undefined,
  carried: TcpCarried,
) => TcpFrameCounter | null;

/**
 * The host a connection carries (`tcp.closeMeansDown`): the frame handler records the key of
 * each frame it applies, and whether that frame was authenticated; the close handler reads it.
 */
export interface TcpCarried {
  key: string | undefined;
  authenticated: boolean;
}

/**
 * A connection closed (FIN, RST, error, or a close of this side's for a timeout or a protocol
 * error), after every frame of it went to the frame handler; not called for the connections
 * close() ends.
 */
export type TcpCloseHandler = (carried: TcpCarried, address: string, port: number) => void;

interface Connection {
  readonly socket: Socket;
  readonly ip: string;
  readonly port: number;
  readonly carried: TcpCarried;
  readonly reader: FrameReader;
  readonly openedAt: number;
  /** Monotonic ms of the last complete frame; 0 before the first. */
  lastFrameAt: number;
  frameStartedAt: number;
  timer: NodeJS.Timeout | undefined;
  timerAt: number;
  /** Set when this side closes it, so the 'close' is not counted as the peer's. */
  closing: boolean;
}

type Counter = Exclude<keyof TcpStats, 'port' | 'reactors'>;

/**
 * The pure-TS engine's TCP transport: a node:net server that applies the same framing, caps,
 * deadlines and counters as the native accept thread and reactors (docs/protocol.md, "Over
 * TCP"). Each connection has one timer, re-armed lazily: a frame only moves the deadline, and the
 * timer, when it fires early, sleeps again until the deadline it finds.
 *
 * Not available from node:net: SO_RCVBUF (`recvBufferBytes`), TCP_DEFER_ACCEPT (`deferAcceptS`),
 * and TCP_KEEPINTVL/KEEPCNT (the kernel defaults apply; `keepAliveIdleS` is honoured).
 */
export class JsTcpServer {
  readonly #options: ResolvedTcpOptions;
  readonly #onFrame: TcpFrameHandler;
  readonly #onClose: TcpCloseHandler;
  readonly #server: Server;
  readonly #connections = new Set<Connection>();
  readonly #perIp = new Map<string, number>();
  readonly #counters: Record<Counter, number> = {
    accepted: 0,
    refusedMaxConnections: 0,
    refusedPerIp: 0,
    acceptPaused: 0,
    handoffWaits: 0,
    openConnections: 0,
    descriptorLimit: 0,
    acceptErrors: 0,
    frames: 0,
    protocolErrors: 0,
    authUnsupported: 0,
    unauthenticated: 0,
    authFailed: 0,
    authSlotsFull: 0,
    statusSlotsFull: 0,
    notAllowed: 0,
    ringDrops: 0,
    handshakeTimeouts: 0,
    idleTimeouts: 0,
    slowFrames: 0,
    closedByPeer: 0,
  };
  #port = 0;
  /** close() was called: the connections it ends are not reported to the close handler. */
  #stopping = false;

  readonly #keepPayloadBytes: number;
  readonly #keys: () => AuthKeys | null;

  /**
   * `keepPayloadBytes`: payloads up to this size reach `onFrame` (statuses); 0: none.
   * `keys`: the server's keys now, which check each signed frame as it arrives (FrameReader).
   */
  constructor(
    options: ResolvedTcpOptions,
    onFrame: TcpFrameHandler,
    onClose: TcpCloseHandler,
    keepPayloadBytes = 0,
    keys: () => AuthKeys | null = () => null,
  ) {
    this.#options = options;
    this.#keepPayloadBytes = keepPayloadBytes;
    this.#keys = keys;
    this.#onFrame = onFrame;
    this.#onClose = onClose;
    this.#server = createServer({
      keepAlive: options.keepAliveIdleS > 0,
      keepAliveInitialDelay: options.keepAliveIdleS * 1000,
    });
    this.#server.on('connection', (socket) => this.#accept(socket));
  }

  /** Binds and listens; resolves with the bound port, rejects with a HeartwatchError. */
  listen(): Promise<number> {
    const { host, port, backlog } = this.#options;
    return new Promise((resolve, reject) => {
      const onError = (cause: NodeJS.ErrnoException): void => {
        reject(
          new HeartwatchError(
            errorCode(cause.code, 'ERR_HW_SOCKET'),
            `heartwatch: cannot listen on TCP ${formatAddress(host, port)}: ${cause.message}`,
            { cause, syscall: cause.syscall ?? 'listen' },
          ),
        );
      };
      this.#server.once('error', onError);
      this.#server.listen({ port, host, backlog, ipv6Only: false, exclusive: true }, () => {
        this.#server.off('error', onError);
        // Errors after listen (EMFILE on accept) are counted; the server keeps listening.
        this.#server.on('error', () => this.#counters.acceptErrors++);
        const address = this.#server.address();
        this.#port = typeof address === 'object' && address !== null ? address.port : port;
        resolve(this.#port);
      });
    });
  }

  stats(): TcpStats {
    const c = this.#counters;
    const reactor: TcpReactorStats = {
      thread: 'js',
      cpu: null,
      frames: c.frames,
      protocolErrors: c.protocolErrors,
      authUnsupported: c.authUnsupported,
      unauthenticated: c.unauthenticated,
      authFailed: c.authFailed,
      authSlotsFull: c.authSlotsFull,
      statusSlotsFull: c.statusSlotsFull,
      notAllowed: c.notAllowed,
      ringDrops: c.ringDrops,
      handshakeTimeouts: c.handshakeTimeouts,
      idleTimeouts: c.idleTimeouts,
      slowFrames: c.slowFrames,
      closedByPeer: c.closedByPeer,
    };
    return { port: this.#port, ...c, openConnections: this.#connections.size, reactors: [reactor] };
  }

  /** Stops accepting and closes every connection; resolves once the server is closed. */
  close(): Promise<void> {
    this.#stopping = true;
    return new Promise((resolve) => {
      for (const connection of this.#connections) this.#close(connection, false);
      if (!this.#server.listening) {
        resolve();
        return;
      }
      this.#server.close(() => resolve());
    });
  }

  #accept(socket: Socket): void {
    const ip = socket.remoteAddress ?? '';
    const { maxConnections, maxConnectionsPerIp } = this.#options;
    if (this.#connections.size >= maxConnections) {
      this.#counters.refusedMaxConnections++;
      socket.resetAndDestroy();
      return;
    }
    const fromIp = this.#perIp.get(ip) ?? 0;
    if (maxConnectionsPerIp > 0 && fromIp >= maxConnectionsPerIp) {
      this.#counters.refusedPerIp++;
      socket.resetAndDestroy();
      return;
    }
    this.#perIp.set(ip, fromIp + 1);
    this.#counters.accepted++;
    const now = performance.now();
    const connection: Connection = {
      socket,
      ip,
      port: socket.remotePort ?? 0,
      carried: { key: undefined, authenticated: false },
      reader: new FrameReader(this.#keepPayloadBytes, this.#keys),
      openedAt: now,
      lastFrameAt: 0,
      frameStartedAt: 0,
      timer: undefined,
      timerAt: Number.POSITIVE_INFINITY,
      closing: false,
    };
    this.#connections.add(connection);
    socket.on('data', (chunk: Buffer) => this.#data(connection, chunk));
    socket.on('error', () => {});
    socket.on('close', () => this.#closed(connection));
    this.#arm(connection, now);
  }

  #data(connection: Connection, chunk: Buffer): void {
    if (connection.closing) return;
    const now = performance.now();
    const wasMid = connection.reader.midFrame;
    const { ip, port, carried } = connection;
    let complete = 0;
    const ok = connection.reader.feed(chunk, (result, payload, authentic) => {
      complete++;
      this.#counters.frames++;
      const counted = this.#onFrame(result, ip, port, payload, authentic, carried);
      if (counted !== null) this.#counters[counted]++;
    });
    if (!ok) {
      this.#counters.protocolErrors++;
      this.#close(connection, true);
      return;
    }
    if (complete > 0) connection.lastFrameAt = now;
    if (connection.reader.midFrame && (complete > 0 || !wasMid)) connection.frameStartedAt = now;
    this.#arm(connection, now);
  }

  #deadline(connection: Connection): number {
    const o = this.#options;
    let deadline =
      connection.lastFrameAt === 0
        ? connection.openedAt + o.handshakeTimeoutMs
        : connection.lastFrameAt + o.idleTimeoutMs;
    if (connection.reader.midFrame) {
      deadline = Math.min(deadline, connection.frameStartedAt + o.frameTimeoutMs);
    }
    return deadline;
  }

  /** Makes sure the timer fires by the deadline; a later deadline keeps the timer (lazy). */
  #arm(connection: Connection, now: number): void {
    const deadline = this.#deadline(connection);
    if (connection.timer !== undefined && connection.timerAt <= deadline) return;
    if (connection.timer !== undefined) clearTimeout(connection.timer);
    connection.timerAt = deadline;
    connection.timer = setTimeout(() => this.#due(connection), Math.max(0, deadline - now));
    connection.timer.unref();
  }

  #due(connection: Connection): void {
    connection.timer = undefined;
    if (connection.closing) return;
    const now = performance.now();
    const o = this.#options;
    if (now < this.#deadline(connection)) {
      this.#arm(connection, now);
      return;
    }
    if (connection.lastFrameAt === 0 && now >= connection.openedAt + o.handshakeTimeoutMs) {
      this.#counters.handshakeTimeouts++;
    } else if (connection.reader.midFrame && now >= connection.frameStartedAt + o.frameTimeoutMs) {
      this.#counters.slowFrames++;
    } else {
      this.#counters.idleTimeouts++;
    }
    this.#close(connection, true);
  }

  /** `reset`: give up on the peer with an RST, as the native reactor does. */
  #close(connection: Connection, reset: boolean): void {
    if (connection.closing) return;
    connection.closing = true;
    if (reset) connection.socket.resetAndDestroy();
    else connection.socket.destroy();
  }

  #closed(connection: Connection): void {
    if (!this.#connections.delete(connection)) return;
    if (!connection.closing) this.#counters.closedByPeer++;
    connection.closing = true;
    if (connection.timer !== undefined) clearTimeout(connection.timer);
    const left = (this.#perIp.get(connection.ip) ?? 1) - 1;
    if (left === 0) this.#perIp.delete(connection.ip);
    else this.#perIp.set(connection.ip, left);
    if (!this.#stopping) this.#onClose(connection.carried, connection.ip, connection.port);
  }
}
