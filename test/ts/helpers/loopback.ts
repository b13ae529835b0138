import { createSocket, type Socket } from 'node:dgram';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import type { HostEvent } from '../../../lib/events.js';
import { Heartwatch } from '../../../lib/heartwatch.js';
import type { HeartwatchOptions } from '../../../lib/options.js';
import { encodeHeartbeat } from '../../../lib/protocol/wire-v1.js';

/** A UDP client socket on loopback, for sending test datagrams from a known source port. */
export class LoopbackClient {
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
  beat(
    port: number,
    hostId: bigint,
    fields: {
      incarnation?: number;
      seq?: number;
      intervalMs?: number;
      leave?: boolean;
      payload?: Uint8Array;
    } = {},
  ): Promise<void> {
    return this.send(
      encodeHeartbeat({
        hostId,
        incarnation: fields.incarnation ?? 1,
        seq: fields.seq ?? 0,
        intervalMs: fields.intervalMs ?? 0,
        leave: fields.leave ?? false,
        ...(fields.payload === undefined ? {} : { payload: fields.payload }),
      }),
      port,
    );
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.#socket.close(() => resolve()));
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

/** A listening Heartwatch on an ephemeral loopback port, with an event log and a client. */
export interface Started {
  hw: Heartwatch;
  port: number;
  log: EventLog;
  client: LoopbackClient;
}

/** Starts Heartwatch instances and clients and closes them all in `closeAll()`. */
/**
 * Each engine a suite runs on, the native one once per UDP receive backend, so both backends pass
 * the same suite: `describe.each(engineVariants(engines))`, then `new Fixture({ receiveBackend })`.
 */
export function engineVariants(
  engines: readonly ('js' | 'native')[],
): { engine: 'js' | 'native'; receiveBackend: 'auto' | 'recvmmsg' | 'io_uring' }[] {
  return engines.flatMap((engine) =>
    engine === 'native'
      ? (['recvmmsg', 'io_uring'] as const).map((receiveBackend) => ({ engine, receiveBackend }))
      : [{ engine, receiveBackend: 'auto' as const }],
  );
}

export class Fixture {
  readonly #open: { close(): Promise<void> }[] = [];
  /** Options every start() begins with (a suite's receiveBackend, say). */
  readonly #defaults: HeartwatchOptions;

  constructor(defaults: HeartwatchOptions = {}) {
    this.#defaults = defaults;
  }

  async start(options: HeartwatchOptions): Promise<Started> {
    const hw = new Heartwatch({ host: '127.0.0.1', port: 0, ...this.#defaults, ...options });
    this.#open.push(hw);
    const log = new EventLog(hw);
    const { port } = await hw.listen();
    const client = await this.client();
    return { hw, port, log, client };
  }

  async client(host = '127.0.0.1'): Promise<LoopbackClient> {
    const client = await LoopbackClient.open(host);
    this.#open.push(client);
    return client;
  }

  track<T extends { close(): Promise<void> }>(thing: T): T {
    this.#open.push(thing);
    return thing;
  }

  async closeAll(): Promise<void> {
    const all = this.#open.splice(0);
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
