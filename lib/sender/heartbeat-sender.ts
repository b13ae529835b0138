import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import { inspect } from 'node:util';
import { checkAuthKeys } from '../auth/keys.js';
import { HeartwatchError } from '../errors.js';
import { hostIdFromName } from '../protocol/host-id.js';
import { encodeHeartbeat } from '../protocol/wire-v1.js';
import { TcpLink } from './tcp-link.js';
import { formatUdpAddress, parseUdpAddress, type UdpAddress } from './udp-address.js';

/** Options for {@link HeartbeatSender}. Give exactly one of `hostId` and `name`. */
export interface HeartbeatSenderOptions {
  /**
   * Where to send: `udp://host:port` or `tcp://host:port` (a server started with `tcp`); IPv6 in
   * brackets (`udp://[::1]:7700`). Port defaults to 7700.
   */
  server: string;
  /**
   * `'udp'` (the default for `udp://`) or `'tcp'` (the default for `tcp://`): every heartbeat
   * goes that way. `'auto'`: UDP while the datagram fits a conservative MTU (1232 bytes, what
   * IPv6's 1280 leaves after its headers), TCP to the same host and port above it.
   */
  transport?: 'udp' | 'tcp' | 'auto';
  /** The host's id on the wire, 1 to 2^64-1. */
  hostId?: bigint;
  /** Derive the id from a name with {@link hostIdFromName} (SHA-256, first 8 bytes). */
  name?: string;
  /** Heartbeat period in milliseconds, 1 to 86 400 000. Default 1000. */
  intervalMs?: number;
  /**
   * Each period is drawn uniformly from `[intervalMs*(1-jitter), intervalMs*(1+jitter)]` so a
   * fleet started together does not beat in lock-step. 0 to 0.9; default 0.1.
   */
  jitter?: number;
  /**
   * Opaque bytes carried in every heartbeat: at most 65 479 over UDP (a datagram fits IPv4),
   * 65 535 over TCP. The server keeps them as the host's status; to change a status over time,
   * use {@link HeartbeatSender.setStatus} instead (it sends the bytes only when needed).
   */
  payload?: Uint8Array;
  /**
   * With a status set ({@link HeartbeatSender.setStatus}), a heartbeat carries it again at least
   * this often, so a server that restarted, or lost the beats of a change, learns it. 0 to
   * 86 400 000 ms; 0 puts it in every heartbeat. Default 30 000.
   */
  statusRefreshMs?: number;
  /** Put `intervalMs` in each heartbeat so the server can use it for the deadline. Default true. */
  announceInterval?: boolean;
  /**
   * Sign every heartbeat with this key (16 to 1024 bytes, 32 recommended; the server's signing
   * key). A signing sender's incarnation is its start time in Unix seconds (later senders in one
   * process count on from the last), because a server checking tags only accepts incarnations
   * that go up (docs/protocol.md, "Replay protection"). UDP only: with a key, `transport` must be
   * `'udp'` (a TCP server keeps no tag to check and drops AUTH frames).
   */
  key?: Uint8Array;
}

/** Events a {@link HeartbeatSender} emits. */
export interface HeartbeatSenderEvents {
  /** A socket or send error after `start()` resolved. Without a listener it is thrown, as in Node. */
  error: [Error];
}

const maxIntervalMs = 86_400_000;
const maxJitter = 0.9;
const maxPayload = 65_507 - 28;
const maxTcpPayload = 65_535;
/** The largest datagram `transport: 'auto'` sends over UDP: IPv6's minimum MTU less its headers. */
export const autoMtuBytes = 1280 - 40 - 8;
const maxHostId = (1n << 64n) - 1n;
const defaultPort = 7700;
const knownKeys = [
  'server',
  'hostId',
  'name',
  'intervalMs',
  'jitter',
  'payload',
  'announceInterval',
  'key',
  'transport',
  'statusRefreshMs',
] as const;
/** Beats that carry a status after it changes (the first at once), so one lost datagram loses nothing. */
const statusRepeats = 3;

function describe(value: unknown): string {
  return inspect(value, { depth: 0, breakLength: Number.POSITIVE_INFINITY, maxStringLength: 80 });
}

function invalid(option: string, expected: string, value: unknown): HeartwatchError {
  return new HeartwatchError(
    'ERR_HW_INVALID_OPTION',
    `Invalid option "${option}": expected ${expected}, got ${describe(value)}`,
  );
}

/** A status as bytes: Uint8Array as is, string as UTF-8, anything else as JSON. */
function statusToBytes(status: unknown, limit: number): Buffer {
  let bytes: Buffer;
  if (status instanceof Uint8Array) {
    bytes = Buffer.from(status);
  } else if (typeof status === 'string') {
    bytes = Buffer.from(status, 'utf8');
  } else {
    const json = typeof status === 'undefined' ? undefined : JSON.stringify(status);
    if (json === undefined) {
      throw new HeartwatchError(
        'ERR_HW_INVALID_ARGUMENT',
        `setStatus(): expected a Buffer, a string or a JSON-serializable value, got ${describe(status)}`,
      );
    }
    bytes = Buffer.from(json, 'utf8');
  }
  if (bytes.length === 0 || bytes.length > limit) {
    throw new HeartwatchError(
      'ERR_HW_INVALID_ARGUMENT',
      `setStatus(): expected 1 to ${limit} bytes, got ${bytes.length}${bytes.length === 0 ? ' (null stops sending a status)' : ''}`,
    );
  }
  return bytes;
}

interface ResolvedSenderOptions {
  address: UdpAddress;
  transport: 'udp' | 'tcp' | 'auto';
  hostId: bigint;
  intervalMs: number;
  jitter: number;
  payload: Uint8Array | undefined;
  announceInterval: boolean;
  statusRefreshMs: number;
  key: Buffer | undefined;
}

function resolveSenderOptions(input: unknown): ResolvedSenderOptions {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new HeartwatchError(
      'ERR_HW_INVALID_OPTION',
      `HeartbeatSender options must be an object like { server: 'udp://127.0.0.1:7700', hostId: 42n }, got ${describe(input)}`,
    );
  }
  const options = input as Record<string, unknown>;
  for (const key of Object.keys(options)) {
    if (!(knownKeys as readonly string[]).includes(key)) {
      const near = knownKeys.find((k) => k.toLowerCase().startsWith(key.toLowerCase()));
      throw new HeartwatchError(
        'ERR_HW_INVALID_OPTION',
        `Unknown option "${key}" for HeartbeatSender${near === undefined ? '' : ` (did you mean "${near}"?)`}; known options are ${knownKeys.join(', ')}`,
      );
    }
  }

  const { server } = options;
  if (typeof server !== 'string') {
    throw invalid('server', "a string like 'udp://127.0.0.1:7700'", server);
  }
  if (server.includes('://') && !server.startsWith('udp://') && !server.startsWith('tcp://')) {
    throw invalid('server', "a udp:// or tcp:// address like 'udp://127.0.0.1:7700'", server);
  }
  const scheme = server.startsWith('tcp://') ? 'tcp' : 'udp';
  const address = parseUdpAddress(server.replace(/^tcp:\/\//, ''), defaultPort);
  if ('error' in address) {
    throw invalid('server', `'${scheme}://host:port' (${address.error})`, server);
  }
  const transport = options.transport ?? scheme;
  if (transport !== 'udp' && transport !== 'tcp' && transport !== 'auto') {
    throw invalid('transport', '"udp", "tcp" or "auto"', transport);
  }

  let hostId: bigint;
  if (options.hostId !== undefined && options.name !== undefined) {
    throw new HeartwatchError(
      'ERR_HW_INVALID_OPTION',
      'Invalid options "hostId" and "name": give one of them, not both',
    );
  } else if (options.hostId !== undefined) {
    const id = options.hostId;
    if (typeof id !== 'bigint' || id < 1n || id > maxHostId) {
      throw invalid('hostId', `a bigint from 1n to ${maxHostId}n`, id);
    }
    hostId = id;
  } else if (options.name !== undefined) {
    if (typeof options.name !== 'string' || options.name.length === 0) {
      throw invalid('name', 'a non-empty string', options.name);
    }
    hostId = hostIdFromName(options.name);
  } else {
    throw new HeartwatchError(
      'ERR_HW_INVALID_OPTION',
      'Missing option "hostId" or "name": give the host id as a bigint (hostId: 42n) or a name to derive it from',
    );
  }

  const intervalMs = options.intervalMs ?? 1000;
  if (
    typeof intervalMs !== 'number' ||
    !Number.isInteger(intervalMs) ||
    intervalMs < 1 ||
    intervalMs > maxIntervalMs
  ) {
    throw invalid('intervalMs', `an integer from 1 to ${maxIntervalMs} (milliseconds)`, intervalMs);
  }
  const jitter = options.jitter ?? 0.1;
  if (typeof jitter !== 'number' || !(jitter >= 0 && jitter <= maxJitter)) {
    throw invalid('jitter', `a fraction from 0 to ${maxJitter}`, jitter);
  }
  const { payload } = options;
  const payloadLimit = transport === 'udp' ? maxPayload : maxTcpPayload;
  if (
    payload !== undefined &&
    (!(payload instanceof Uint8Array) || payload.length > payloadLimit)
  ) {
    throw invalid(
      'payload',
      `a Uint8Array of at most ${payloadLimit} bytes over ${transport}`,
      payload,
    );
  }
  const announceInterval = options.announceInterval ?? true;
  if (typeof announceInterval !== 'boolean') {
    throw invalid('announceInterval', 'a boolean', announceInterval);
  }
  const statusRefreshMs = options.statusRefreshMs ?? 30_000;
  if (
    typeof statusRefreshMs !== 'number' ||
    !Number.isInteger(statusRefreshMs) ||
    statusRefreshMs < 0 ||
    statusRefreshMs > maxIntervalMs
  ) {
    throw invalid('statusRefreshMs', `an integer from 0 to ${maxIntervalMs} (ms)`, statusRefreshMs);
  }
  let key: Buffer | undefined;
  if (options.key !== undefined) key = checkAuthKeys('key', [options.key]).keys[0];
  if (key !== undefined && transport !== 'udp') {
    // A TCP server keeps no tag to check, so it drops AUTH frames: signing works over UDP only.
    throw invalid('transport', '"udp" with a key (signed heartbeats go over UDP only)', transport);
  }
  if (
    key !== undefined &&
    payload !== undefined &&
    (payload as Uint8Array).length > maxPayload - 16
  ) {
    throw invalid(
      'payload',
      `at most ${maxPayload - 16} bytes with a key (the tag takes 16)`,
      payload,
    );
  }
  return {
    address,
    transport,
    hostId,
    intervalMs,
    jitter,
    payload,
    announceInterval,
    statusRefreshMs,
    key,
  };
}

/** The last incarnation a signing sender of this process took (see the `key` option). */
let lastSignedIncarnation = 0;

function signedIncarnation(): number {
  const now = Math.floor(Date.now() / 1000) >>> 0;
  lastSignedIncarnation = Math.max(now, lastSignedIncarnation + 1) >>> 0;
  return lastSignedIncarnation;
}

function asHeartwatchError(err: unknown, syscall: string): Error {
  if (err instanceof HeartwatchError) return err;
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    if (typeof code === 'string') {
      return new HeartwatchError(code, err.message, {
        cause: err,
        syscall: (err as NodeJS.ErrnoException).syscall ?? syscall,
      });
    }
    return err;
  }
  return new Error(String(err));
}

/**
 * Sends wire-protocol v1 heartbeats for one host over UDP (node:dgram) or TCP (node:net; see
 * `transport`). Over TCP the connection is kept up in the background: `start()` resolves after
 * the first attempt whether it connected or not, and a heartbeat sent while the connection is
 * down is dropped and counted in `dropped` rather than queued or awaited.
 *
 * Each sender picks a random 32-bit incarnation when it is constructed, so a restarted process
 * is recognised as a restart. `seq` increases by one per datagram and wraps at 2^32. `close()`
 * sends a LEAVE datagram so the server marks the host down at once (reason `left`).
 *
 * ```ts
 * const sender = new HeartbeatSender({ server: 'udp://127.0.0.1:7700', name: 'web-1' });
 * await sender.start();
 * // ...
 * await sender.close();
 * ```
 */
export class HeartbeatSender extends EventEmitter<HeartbeatSenderEvents> {
  /** The id carried by every heartbeat. */
  readonly hostId: bigint;
  /** The destination, as `udp://ip:port`. */
  readonly server: string;
  /** The nominal period in milliseconds. */
  readonly intervalMs: number;
  /** The jitter fraction applied to each period. */
  readonly jitter: number;

  readonly #options: ResolvedSenderOptions;
  readonly #incarnation: number;
  #seq = 0;
  #sent = 0;
  #socket: Socket | undefined;
  #link: TcpLink | undefined;
  #target: { host: string; port: number } | undefined;
  #timer: NodeJS.Timeout | undefined;
  #starting: Promise<void> | undefined;
  #closing: Promise<void> | undefined;
  #status: Buffer | undefined;
  /** Beats that still carry the status because it changed. */
  #statusBeatsLeft = 0;
  #statusSentAt = Number.NEGATIVE_INFINITY;

  /** Validates `options` (a `HeartwatchError` with code `ERR_HW_INVALID_OPTION` when wrong). */
  constructor(options: HeartbeatSenderOptions) {
    super();
    this.#options = resolveSenderOptions(options);
    this.hostId = this.#options.hostId;
    const scheme = this.#options.transport === 'tcp' ? 'tcp' : 'udp';
    this.server = `${scheme}://${formatUdpAddress(this.#options.address)}`;
    this.intervalMs = this.#options.intervalMs;
    this.jitter = this.#options.jitter;
    // 0 means "not known" on the wire, so it is never picked.
    this.#incarnation =
      this.#options.key === undefined ? randomBytes(4).readUInt32BE(0) || 1 : signedIncarnation();
  }

  /**
   * Chosen at construction: a random u32, or with `key` the start time in Unix seconds. The
   * server reports a change as a restart.
   */
  get incarnation(): number {
    return this.#incarnation;
  }

  /** The sequence number of the last datagram sent (0 before the first). */
  get seq(): number {
    return this.#seq;
  }

  /** How many heartbeats the socket accepted, LEAVE included. */
  get sent(): number {
    return this.#sent;
  }

  /**
   * Heartbeats not sent because the TCP connection was down (it reconnects with backoff) or its
   * buffer full; 0 over UDP.
   */
  get dropped(): number {
    return this.#link?.dropped ?? 0;
  }

  /**
   * Opens the socket (resolving a host name first if one was given), sends the first heartbeat,
   * and keeps sending every period. Resolves once the first heartbeat is sent; rejects if it
   * could not be. Calling it again returns the same promise.
   */
  start(): Promise<void> {
    if (this.#starting === undefined) {
      this.#starting =
        this.#closing === undefined
          ? this.#open()
          : Promise.reject(
              new HeartwatchError('ERR_HW_CLOSED', 'HeartbeatSender: start() after close()'),
            );
    }
    return this.#starting;
  }

  /**
   * Stops the heartbeats, sends one LEAVE datagram (unless `leave: false`, which looks like a
   * crash to the server), and closes the socket. Idempotent; a sender that never started sends
   * nothing.
   */
  close(options?: { leave?: boolean }): Promise<void> {
    if (this.#closing === undefined) {
      const leave = options?.leave ?? true;
      if (typeof leave !== 'boolean') return Promise.reject(invalid('leave', 'a boolean', leave));
      this.#closing = this.#shutdown(leave);
    }
    return this.#closing;
  }

  /**
   * Sets the status this host reports (README "Statuses"): a Buffer or Uint8Array as is, a string
   * as UTF-8, anything else as JSON. A new status goes out at once (when started) and on the
   * next beats; after that a heartbeat carries it every `statusRefreshMs`, and the others stay
   * 28 bytes. Setting the same bytes again sends nothing. `null` stops sending a status: the
   * server keeps the last one until the host leaves or is forgotten. Throws
   * `ERR_HW_INVALID_ARGUMENT` for an empty or too large status (the `payload` limits), and when
   * the sender was made with a fixed `payload`.
   */
  setStatus(status: Uint8Array | string | object | null): void {
    if (this.#closing !== undefined) {
      throw new HeartwatchError('ERR_HW_CLOSED', 'HeartbeatSender: setStatus() after close()');
    }
    if (this.#options.payload !== undefined) {
      throw new HeartwatchError(
        'ERR_HW_INVALID_ARGUMENT',
        'setStatus(): this sender carries a fixed "payload" in every heartbeat; use one or the other',
      );
    }
    if (status === null) {
      this.#status = undefined;
      return;
    }
    const { transport, key } = this.#options;
    // The payload limits: a signed datagram leaves 16 bytes for its tag.
    const limit =
      transport !== 'udp' ? maxTcpPayload : key === undefined ? maxPayload : maxPayload - 16;
    const bytes = statusToBytes(status, limit);
    if (this.#status?.equals(bytes) === true) return;
    this.#status = bytes;
    this.#statusBeatsLeft = statusRepeats;
    if (this.#target !== undefined && this.#closing === undefined) {
      this.#send(false).catch((err: Error) => this.emit('error', err));
    }
  }

  /** The status this sender reports, or `undefined`. */
  get status(): Buffer | undefined {
    return this.#status;
  }

  /** The status when this beat should carry it: after a change, or when a refresh is due. */
  #statusForBeat(): Buffer | undefined {
    const status = this.#status;
    if (status === undefined) return undefined;
    const now = performance.now();
    if (this.#statusBeatsLeft === 0 && now - this.#statusSentAt < this.#options.statusRefreshMs) {
      return undefined;
    }
    this.#statusBeatsLeft = Math.max(0, this.#statusBeatsLeft - 1);
    this.#statusSentAt = now;
    return status;
  }

  async #open(): Promise<void> {
    let { host, family } = this.#options.address;
    if (family === 0) {
      try {
        const found = await lookup(host);
        host = found.address;
        family = found.family === 6 ? 6 : 4;
      } catch (err) {
        throw asHeartwatchError(err, 'getaddrinfo');
      }
    }
    if (this.#closing !== undefined) {
      throw new HeartwatchError('ERR_HW_CLOSED', 'HeartbeatSender: closed while starting');
    }
    const { transport, address } = this.#options;
    if (transport !== 'udp') {
      // Never blocks on a dead server: the first attempt settles, later ones run in the background.
      this.#link = new TcpLink(host, address.port);
      await this.#link.open();
    }
    if (transport !== 'tcp') {
      const socket = createSocket({ type: family === 6 ? 'udp6' : 'udp4' });
      socket.on('error', (err) => this.emit('error', asHeartwatchError(err, 'send')));
      this.#socket = socket;
    }
    this.#target = { host, port: address.port };
    await this.#send(false);
    if (this.#closing === undefined) this.#schedule();
  }

  #schedule(): void {
    const { intervalMs, jitter } = this.#options;
    const period = intervalMs * (1 - jitter + 2 * jitter * Math.random());
    this.#timer = setTimeout(() => this.#tick(), Math.max(1, Math.round(period)));
  }

  #tick(): void {
    this.#timer = undefined;
    if (this.#closing !== undefined) return;
    // Scheduling before sending keeps the period independent of how long the send takes.
    this.#schedule();
    this.#send(false).catch((err: Error) => this.emit('error', err));
  }

  #send(leave: boolean): Promise<void> {
    const datagram = this.#encode(leave);
    const link = this.#link;
    if (link !== undefined && (this.#socket === undefined || datagram.length > autoMtuBytes)) {
      if (link.send(datagram)) this.#sent += 1;
      return Promise.resolve();
    }
    const socket = this.#socket;
    const target = this.#target;
    if (socket === undefined || target === undefined) return Promise.resolve();
    return new Promise((resolve, reject) => {
      socket.send(datagram, target.port, target.host, (err) => {
        if (err) {
          reject(asHeartwatchError(err, 'send'));
        } else {
          this.#sent += 1;
          resolve();
        }
      });
    });
  }

  #encode(leave: boolean): Buffer {
    this.#seq = (this.#seq + 1) >>> 0;
    const { hostId, intervalMs, announceInterval, key } = this.#options;
    // A LEAVE clears the status on the server: no need to carry it.
    const payload = this.#options.payload ?? (leave ? undefined : this.#statusForBeat());
    return encodeHeartbeat({
      hostId,
      incarnation: this.#incarnation,
      seq: this.#seq,
      intervalMs: announceInterval ? intervalMs : 0,
      ...(payload === undefined ? {} : { payload }),
      leave,
      key,
    });
  }

  async #shutdown(leave: boolean): Promise<void> {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#starting !== undefined) {
      // A start that failed has already reported its error to its own caller.
      await this.#starting.catch(() => undefined);
    }
    const socket = this.#socket;
    const link = this.#link;
    if (socket === undefined && link === undefined) return;
    try {
      if (leave) await this.#send(true);
    } finally {
      this.#socket = undefined;
      this.#link = undefined;
      // A LEAVE written to the link goes out before its FIN.
      await link?.close();
      if (socket !== undefined) await new Promise<void>((resolve) => socket.close(() => resolve()));
    }
  }
}
