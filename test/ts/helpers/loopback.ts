import { createSocket, type Socket } from 'node:dgram';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { connect, type Socket as TcpSocket } from 'node:net';
import type { HostEvent } from '../../../lib/events.js';
import { Heartwatch } from '../../../lib/heartwatch.js';
import type { HeartwatchOptions } from '../../../lib/options.js';
import { encodeHeartbeat } from '../../../lib/protocol/wire-v1.js';

/** The fields of a test heartbeat that a case may set. */
export interface BeatFields {
  incarnation?: number;
  seq?: number;
  intervalMs?: number;
  leave?: boolean;
  payload?: Uint8Array;
}

/** One v1 heartbeat; fields default to incarnation 1, seq 0, interval 0. */
function encodeBeat(hostId: bigint, fields: BeatFields): Uint8Array {
  return encodeHeartbeat({
    hostId,
    incarnation: fields.incarnation ?? 1,
    seq: fields.seq ?? 0,
    intervalMs: fields.intervalMs ?? 0,
    leave: fields.leave ?? false,
    ...(fields.payload === undefined ? {} : { payload: fields.payload }),
  });
}

/** What a case sends heartbeats with, whichever transport carries them. */
export interface HeartbeatClient {
  readonly host: string;
  /** The source port heartbeats come from, as the server sees it in an event's `address`. */
  readonly port: number;
  /** Sends raw bytes: one datagram, or one frame's bytes on the connection. */
  send(message: Uint8Array | string, port: number): Promise<void>;
  beat(port: number, hostId: bigint, fields?: BeatFields): Promise<void>;
  close(): Promise<void>;
}

/** A UDP client socket on loopback, for sending test datagrams from a known source port. */
export class LoopbackClient implements HeartbeatClient {
  readonly #socket: Socket;
  readonly host: string;

  private constructor(socket: Socket, host: string) {
    this.#socket = socket;
    this.host = host;
  }

  static open(host = '127.0.0.1'): Promise<LoopbackClient> {
    const socket = createSocket(host.includes(':') ? 'udp6' : 'udp4');
    return new Promise((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, host, () => {
        socket.off('error', reject);
        resolve(new LoopbackClient(socket, host));
      });
    });
  }

  /** The source port datagrams come from. */
  get port(): number {
    return this.#socket.address().port;
  }

  send(datagram: Uint8Array | string, port: number, to = this.host): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#socket.send(datagram, port, to, (err) => (err ? reject(err) : resolve()));
    });
  }

  /** Sends one v1 heartbeat; fields default to incarnation 1, seq 0, interval 0. */
  beat(port: number, hostId: bigint, fields: BeatFields = {}): Promise<void> {
    return this.send(encodeBeat(hostId, fields), port);
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.#socket.close(() => resolve()));
  }
}

/** Node's codes for a write on a connection the server has reset or ended. */
const goneCodes = new Set([
  'ECONNRESET',
  'EPIPE',
  'ERR_STREAM_DESTROYED',
  'ERR_STREAM_WRITE_AFTER_END',
]);

/**
 * One TCP connection on loopback to a server's TCP port, kept open: each heartbeat is one v1
 * frame written on it, back to back (docs/protocol.md "Over TCP"), so `port` is the connection's
 * local port, the source the server reports.
 */
export class TcpLoopbackClient implements HeartbeatClient {
  readonly #socket: TcpSocket;
  readonly #serverPort: number;
  readonly #closed: Promise<void>;
  readonly host: string;

  private constructor(socket: TcpSocket, serverPort: number, host: string) {
    this.#socket = socket;
    this.#serverPort = serverPort;
    this.host = host;
    // A reset by the server shows in the case's events; the socket must not throw it.
    socket.on('error', () => {});
    this.#closed = new Promise((resolve) => socket.once('close', () => resolve()));
  }

  static open(serverPort: number, host = '127.0.0.1'): Promise<TcpLoopbackClient> {
    const socket = connect({ port: serverPort, host, noDelay: true });
    return new Promise((resolve, reject) => {
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(new TcpLoopbackClient(socket, serverPort, host));
      });
    });
  }

  get port(): number {
    return this.#socket.localPort ?? 0;
  }

  /**
   * Writes `message` on the connection. Like a datagram to a closed port, bytes for a server
   * that has reset or ended the connection are lost without an error; any other error rejects.
   */
  send(message: Uint8Array | string, port: number): Promise<void> {
    if (port !== this.#serverPort) {
      return Promise.reject(
        new Error(`this connection goes to port ${this.#serverPort}, not ${port}`),
      );
    }
    if (this.#socket.destroyed) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.#socket.write(message, (err) => {
        const code = (err as NodeJS.ErrnoException | null | undefined)?.code;
        if (err && !goneCodes.has(code ?? '')) reject(err);
        else resolve();
      });
    });
  }

  beat(port: number, hostId: bigint, fields: BeatFields = {}): Promise<void> {
    return this.send(encodeBeat(hostId, fields), port);
  }

  close(): Promise<void> {
    this.#socket.destroy();
    return this.#closed;
  }
}

/** Records every batch a Heartwatch delivers and waits for events matching a predicate. */
export class EventLog {
  readonly events: HostEvent[] = [];
  readonly batches: HostEvent[][] = [];
  readonly #waiters = new Set<() => void>();

  constructor(hw: Heartwatch) {
    hw.on('events', (batch) => {
      this.batches.push([...batch]);
      this.events.push(...batch);
      for (const wake of this.#waiters) wake();
    });
  }

  /** The events about one host, in delivery order. */
  of(id: string | bigint): HostEvent[] {
    const key = String(id);
    return this.events.filter((e) => e.id === key);
  }

  /** Resolves with the first logged event matching `match`, waiting up to `timeoutMs`. */
  waitFor<E extends HostEvent = HostEvent>(
    match: (e: HostEvent) => boolean,
    timeoutMs = 3000,
  ): Promise<E> {
    const found = this.events.find(match);
    if (found !== undefined) return Promise.resolve(found as E);
    return new Promise((resolve, reject) => {
      const wake = (): void => {
        const hit = this.events.find(match);
        if (hit === undefined) return;
        this.#waiters.delete(wake);
        clearTimeout(timer);
        resolve(hit as E);
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(wake);
        reject(
          new Error(`no matching event within ${timeoutMs} ms; got ${JSON.stringify(this.events)}`),
        );
      }, timeoutMs);
      this.#waiters.add(wake);
    });
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `check` until it returns true or `timeoutMs` passes; returns its last answer. */
export async function until(check: () => boolean, timeoutMs = 3000): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) return false;
    await sleep(5);
  }
  return true;
}

/** How a case's heartbeats reach the server. */
export type Transport = 'udp' | 'tcp';

/** A listening Heartwatch on an ephemeral loopback port, with an event log and a client. */
export interface Started {
  hw: Heartwatch;
  /** The port the fixture's clients send to: the UDP port, or over TCP the TCP port. */
  port: number;
  log: EventLog;
  client: HeartbeatClient;
  /** Heartbeats read so far over the case's transport: datagrams (`received`) or frames. */
  arrived(): number;
}

/** One suite variant: the options a Fixture starts every server with, and the transport. */
export interface Variant {
  engine: 'js' | 'native';
  receiveBackend: 'auto' | 'recvmmsg' | 'io_uring';
  transport: Transport;
}

/**
 * Each engine a suite runs on, over each transport asked for (UDP alone by default). Over UDP the
 * native engine runs once per receive backend, so both backends pass the same suite; over TCP,
 * which no receive backend reads, once. Use: `describe.each(engineVariants(engines))`, then
 * `new Fixture(variant)`.
 */
export function engineVariants(
  engines: readonly ('js' | 'native')[],
  { transports = ['udp'] }: { transports?: readonly Transport[] } = {},
): Variant[] {
  return transports.flatMap((transport) =>
    engines.flatMap((engine): Variant[] =>
      engine === 'native' && transport === 'udp'
        ? (['recvmmsg', 'io_uring'] as const).map((receiveBackend) => ({
            engine,
            receiveBackend,
            transport,
          }))
        : [{ engine, receiveBackend: 'auto' as const, transport }],
    ),
  );
}

/** Starts Heartwatch instances and clients and closes them all in `closeAll()`. */
export class Fixture {
  readonly #open: { close(): Promise<void> }[] = [];
  /** Options every server begins with (a suite's receiveBackend, say). */
  readonly #defaults: HeartwatchOptions;
  readonly transport: Transport;
  /** The last server start() began, to which client() connects over TCP. */
  #server: { hw: Heartwatch; port: number; connections: number } | undefined;

  constructor({
    transport = 'udp',
    ...defaults
  }: HeartwatchOptions & { transport?: Transport } = {}) {
    this.#defaults = defaults;
    this.transport = transport;
  }

  /** A server's options: loopback, ephemeral ports, the defaults, TCP on when the transport is. */
  options(options: HeartwatchOptions = {}): HeartwatchOptions {
    return {
      host: '127.0.0.1',
      port: 0,
      ...this.#defaults,
      ...(this.transport === 'tcp' ? { tcp: { port: 0 } } : {}),
      ...options,
    };
  }

  async start(options: HeartwatchOptions): Promise<Started> {
    const hw = new Heartwatch(this.options(options));
    this.#open.push(hw);
    const log = new EventLog(hw);
    const info = await hw.listen();
    const port = this.transport === 'tcp' ? (info.tcpPort as number) : info.port;
    this.#server = { hw, port, connections: 0 };
    const client = await this.client();
    const arrived = (): number => {
      const stats = hw.stats();
      return this.transport === 'tcp' ? (stats.tcp?.frames ?? 0) : stats.received;
    };
    return { hw, port, log, client, arrived };
  }

  /**
   * A new client: a UDP socket, or over TCP a connection to the last started server, returned
   * once that server has accepted it, so a case's timing starts with the connection in place.
   */
  async client(host = '127.0.0.1'): Promise<HeartbeatClient> {
    if (this.transport === 'udp') return this.track(await LoopbackClient.open(host));
    const server = this.#server;
    if (server === undefined) throw new Error('a TCP client needs a server: call start() first');
    const client = this.track(await TcpLoopbackClient.open(server.port, host));
    server.connections++;
    const accepted = () => (server.hw.stats().tcp?.accepted ?? 0) >= server.connections;
    if (!(await until(accepted, 10_000))) {
      throw new Error(`the server did not accept connection ${server.connections} in 10 s`);
    }
    return client;
  }

  track<T extends { close(): Promise<void> }>(thing: T): T {
    this.#open.push(thing);
    return thing;
  }

  async closeAll(): Promise<void> {
    const all = this.#open.splice(0);
    this.#server = undefined;
    await Promise.all(all.map((thing) => thing.close()));
  }
}

/** The inodes of this process's sockets, from the /proc/self/fd links (`socket:[inode]`). */
function ownSocketInodes(): Set<string> {
  const inodes = new Set<string>();
  for (const fd of readdirSync('/proc/self/fd')) {
    let target: string;
    try {
      target = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue; // closed between the listing and the read
    }
    const match = /^socket:\[(\d+)\]$/.exec(target);
    if (match?.[1] !== undefined) inodes.add(match[1]);
  }
  return inodes;
}

/**
 * The inodes of every UDP socket bound to local `port`, any process, from /proc/net/udp and
 * /proc/net/udp6 (columns: sl local_address rem_address st ... uid timeout inode).
 */
export function udpSocketsOnPort(port: number): Set<string> {
  const inodes = new Set<string>();
  for (const file of ['/proc/net/udp', '/proc/net/udp6']) {
    for (const line of readFileSync(file, 'utf8').split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      const local = fields[1];
      const inode = fields[9];
      if (local === undefined || inode === undefined) continue;
      if (Number.parseInt(local.slice(local.indexOf(':') + 1), 16) === port) inodes.add(inode);
    }
  }
  return inodes;
}

/** How many UDP sockets of this process are bound to local `port`. */
export function ownUdpSocketsOnPort(port: number): number {
  const own = ownSocketInodes();
  let count = 0;
  for (const inode of udpSocketsOnPort(port)) if (own.has(inode)) count++;
  return count;
}

/** How many sockets this process holds open, of any kind. */
export function ownSocketCount(): number {
  return ownSocketInodes().size;
}
