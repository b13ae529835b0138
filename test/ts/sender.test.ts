import { createHash } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { HeartwatchError } from '../../lib/errors.js';
import { HeartbeatSender, type HeartbeatSenderOptions } from '../../lib/sender/heartbeat-sender.js';

/** One datagram, decoded by hand from the spec table (not with lib/protocol), plus its arrival. */
interface Received {
  length: number;
  magic: string;
  version: number;
  flags: number;
  hostId: bigint;
  incarnation: number;
  seq: number;
  intervalMs: number;
  payloadLength: number;
  reserved: number;
  payload: Buffer;
  arrivedAt: number;
}

function decode(buf: Buffer): Received {
  return {
    length: buf.length,
    magic: buf.subarray(0, 2).toString('latin1'),
    version: buf.readUInt8(2),
    flags: buf.readUInt8(3),
    hostId: buf.readBigUInt64BE(4),
    incarnation: buf.readUInt32BE(12),
    seq: buf.readUInt32BE(16),
    intervalMs: buf.readUInt32BE(20),
    payloadLength: buf.readUInt16BE(24),
    reserved: buf.readUInt16BE(26),
    payload: buf.subarray(28),
    arrivedAt: performance.now(),
  };
}

/** A loopback UDP socket that records every datagram. */
class Collector {
  readonly datagrams: Received[] = [];
  readonly #socket: Socket;
  #waiters: (() => void)[] = [];

  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.on('message', (msg) => {
      this.datagrams.push(decode(msg));
      for (const wake of this.#waiters) wake();
    });
  }

  static async open(type: 'udp4' | 'udp6' = 'udp4'): Promise<Collector> {
    const socket = createSocket(type);
    await new Promise<void>((resolve) =>
      socket.bind(0, type === 'udp4' ? '127.0.0.1' : '::1', resolve),
    );
    return new Collector(socket);
  }

  get port(): number {
    return (this.#socket.address() as AddressInfo).port;
  }

  /** Resolves once `n` datagrams arrived; rejects after `timeoutMs`. */
  waitFor(n: number, timeoutMs = 5000): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`only ${this.datagrams.length} of ${n} datagrams arrived`)),
        timeoutMs,
      );
      const check = (): void => {
        if (this.datagrams.length >= n) {
          clearTimeout(timer);
          this.#waiters = this.#waiters.filter((w) => w !== check);
          resolve();
        }
      };
      this.#waiters.push(check);
      check();
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.#socket.close(() => resolve()));
  }
}

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

async function collector(type: 'udp4' | 'udp6' = 'udp4'): Promise<Collector> {
  const c = await Collector.open(type);
  cleanup.push(() => c.close());
  return c;
}

function sender(options: HeartbeatSenderOptions): HeartbeatSender {
  const s = new HeartbeatSender(options);
  cleanup.push(() => s.close({ leave: false }));
  return s;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('HeartbeatSender', () => {
  it('sends v1 heartbeats with one incarnation and consecutive seq, then LEAVE on close', async () => {
    const server = await collector();
    const s = sender({ server: `udp://127.0.0.1:${server.port}`, hostId: 42n, intervalMs: 20 });
    expect(s.sent).toBe(0);
    expect(s.seq).toBe(0);
    await s.start();
    expect(s.sent).toBe(1);
    await server.waitFor(5);
    await s.close();
    const sentTotal = s.sent;
    await server.waitFor(sentTotal);
    await sleep(50);
    expect(server.datagrams).toHaveLength(sentTotal);

    const beats = server.datagrams;
    beats.forEach((d, i) => {
      expect(d.length).toBe(28);
      expect(d.magic).toBe('HW');
      expect(d.version).toBe(1);
      expect(d.hostId).toBe(42n);
      expect(d.incarnation).toBe(s.incarnation);
      expect(d.seq).toBe(i + 1);
      expect(d.intervalMs).toBe(20);
      expect(d.payloadLength).toBe(0);
      expect(d.reserved).toBe(0);
      expect(d.flags).toBe(i === beats.length - 1 ? 0x01 : 0x00);
    });
    expect(s.seq).toBe(sentTotal);
    // close() is idempotent and sends nothing more.
    await s.close();
    await sleep(30);
    expect(server.datagrams).toHaveLength(sentTotal);
  });

  it('keeps each period within interval*(1±jitter) and spreads them', async () => {
    const server = await collector();
    const s = sender({
      server: `udp://127.0.0.1:${server.port}`,
      hostId: 7n,
      intervalMs: 40,
      jitter: 0.5,
    });
    await s.start();
    await server.waitFor(16);
    await s.close({ leave: false });
    const gaps = server.datagrams
      .slice(1)
      .map((d, i) => d.arrivedAt - (server.datagrams[i] as Received).arrivedAt);
    // Timers never fire early (1 ms for rounding); late by a loaded machine's scheduling at most.
    for (const gap of gaps) {
      expect(gap).toBeGreaterThanOrEqual(20 - 1.5);
      expect(gap).toBeLessThanOrEqual(60 + 30);
    }
    // 15 draws from a 40 ms wide range: in lock-step they would all be equal.
    expect(Math.max(...gaps) - Math.min(...gaps)).toBeGreaterThan(8);
  });

  it('derives the host id from a name: first 8 bytes of SHA-256, big-endian', async () => {
    const server = await collector();
    const s = sender({ server: `udp://127.0.0.1:${server.port}`, name: 'web-1', intervalMs: 1000 });
    const expected = createHash('sha256').update('web-1', 'utf8').digest().readBigUInt64BE(0);
    expect(s.hostId).toBe(expected);
    await s.start();
    await server.waitFor(1);
    expect(server.datagrams[0]?.hostId).toBe(expected);
  });

  it('sends over IPv6 to udp://[::1]:port, with payload and without announcing the interval', async () => {
    const server = await collector('udp6');
    const payload = Buffer.from('status: ok');
    const s = sender({
      server: `udp://[::1]:${server.port}`,
      hostId: (1n << 64n) - 1n,
      intervalMs: 1000,
      payload,
      announceInterval: false,
    });
    expect(s.server).toBe(`udp://[::1]:${server.port}`);
    await s.start();
    await server.waitFor(1);
    const d = server.datagrams[0] as Received;
    expect(d.hostId).toBe((1n << 64n) - 1n);
    expect(d.intervalMs).toBe(0);
    expect(d.payloadLength).toBe(payload.length);
    expect(d.length).toBe(28 + payload.length);
    expect(d.payload.equals(payload)).toBe(true);
  });

  it('picks a random incarnation per sender', () => {
    const incarnations = new Set(
      Array.from(
        { length: 8 },
        () => new HeartbeatSender({ server: 'udp://127.0.0.1:9', hostId: 1n }).incarnation,
      ),
    );
    // Eight random u32 values collide with probability below 1e-8.
    expect(incarnations.size).toBe(8);
  });

  it('crashes quietly with close({ leave: false }) and sends nothing if never started', async () => {
    const server = await collector();
    const never = new HeartbeatSender({ server: `udp://127.0.0.1:${server.port}`, hostId: 3n });
    await never.close();
    await expect(never.start()).rejects.toMatchObject({ code: 'ERR_HW_CLOSED' });

    const s = sender({ server: `udp://127.0.0.1:${server.port}`, hostId: 4n, intervalMs: 1000 });
    await s.start();
    await s.close({ leave: false });
    await sleep(50);
    expect(server.datagrams.map((d) => [d.hostId, d.flags])).toEqual([[4n, 0]]);
    expect(s.sent).toBe(1);
  });

  it.each<[string, unknown, RegExp]>([
    ['server missing', { hostId: 1n }, /"server".*got undefined/],
    [
      'server scheme',
      { server: 'http://127.0.0.1:7700', hostId: 1n },
      /"server".*udp:\/\/ or tcp:\/\/.*'http:\/\/127\.0\.0\.1:7700'/,
    ],
    [
      'server port',
      { server: 'udp://127.0.0.1:70000', hostId: 1n },
      /"server".*70000.*outside 1\.\.65535/,
    ],
    ['server v6 brackets', { server: 'udp://::1:7700', hostId: 1n }, /"server".*brackets/],
    [
      'hostId zero',
      { server: 'udp://127.0.0.1:7700', hostId: 0n },
      /"hostId": expected a bigint from 1n to 18446744073709551615n, got 0n/,
    ],
    ['hostId number', { server: 'udp://127.0.0.1:7700', hostId: 42 }, /"hostId".*got 42$/],
    [
      'hostId too big',
      { server: 'udp://127.0.0.1:7700', hostId: 1n << 64n },
      /"hostId".*got 18446744073709551616n/,
    ],
    ['no identity', { server: 'udp://127.0.0.1:7700' }, /"hostId" or "name"/],
    [
      'both identities',
      { server: 'udp://127.0.0.1:7700', hostId: 1n, name: 'a' },
      /"hostId" and "name"/,
    ],
    [
      'empty name',
      { server: 'udp://127.0.0.1:7700', name: '' },
      /"name": expected a non-empty string, got ''/,
    ],
    [
      'key over tcp',
      { server: 'tcp://127.0.0.1:7700', hostId: 1n, key: Buffer.alloc(32, 1) },
      /"transport": expected "udp" with a key \(signed heartbeats go over UDP only\), got 'tcp'/,
    ],
    [
      'key with transport auto',
      { server: 'udp://127.0.0.1:7700', hostId: 1n, key: Buffer.alloc(32, 1), transport: 'auto' },
      /"transport": expected "udp" with a key.*got 'auto'/,
    ],
    [
      'interval zero',
      { server: 'udp://127.0.0.1:7700', hostId: 1n, intervalMs: 0 },
      /"intervalMs": expected an integer from 1 to 86400000 \(milliseconds\), got 0/,
    ],
    [
      'interval fraction',
      { server: 'udp://127.0.0.1:7700', hostId: 1n, intervalMs: 1.5 },
      /"intervalMs".*got 1\.5/,
    ],
    [
      'jitter',
      { server: 'udp://127.0.0.1:7700', hostId: 1n, jitter: 1 },
      /"jitter": expected a fraction from 0 to 0\.9, got 1/,
    ],
    [
      'jitter NaN',
      { server: 'udp://127.0.0.1:7700', hostId: 1n, jitter: Number.NaN },
      /"jitter".*got NaN/,
    ],
    [
      'payload type',
      { server: 'udp://127.0.0.1:7700', hostId: 1n, payload: 'x' },
      /"payload": expected a Uint8Array/,
    ],
    [
      'payload size',
      { server: 'udp://127.0.0.1:7700', hostId: 1n, payload: new Uint8Array(65_480) },
      /"payload".*at most 65479 bytes/,
    ],
    [
      'announce',
      { server: 'udp://127.0.0.1:7700', hostId: 1n, announceInterval: 'yes' },
      /"announceInterval": expected a boolean, got 'yes'/,
    ],
    [
      'unknown key',
      { server: 'udp://127.0.0.1:7700', hostId: 1n, interval: 5 },
      /Unknown option "interval"/,
    ],
    ['not an object', 'udp://127.0.0.1:7700', /must be an object/],
  ])('rejects bad options: %s', (_label, options, message) => {
    let error: unknown;
    try {
      new HeartbeatSender(options as HeartbeatSenderOptions);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(HeartwatchError);
    expect((error as HeartwatchError).code).toBe('ERR_HW_INVALID_OPTION');
    expect((error as HeartwatchError).message).toMatch(message);
  });
});
