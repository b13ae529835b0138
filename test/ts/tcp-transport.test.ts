// The TCP transport's behaviour, which both engines must share: real loopback TCP, ephemeral
// ports, short deadlines. Framing, caps, deadlines and counters are those of docs/protocol.md.
import { spawn } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { nativeEngineAvailable } from '../../lib/engine/native-engine.js';
import type { DownEvent, HostEvent, UpEvent } from '../../lib/events.js';
import { Heartwatch } from '../../lib/heartwatch.js';
import { registerMetrics } from '../../lib/metrics/prometheus.js';
import type { HeartwatchOptions } from '../../lib/options.js';
import { hostIdFromSource } from '../../lib/protocol/host-id.js';
import { encodeHeartbeat } from '../../lib/protocol/wire-v1.js';
import { HeartbeatSender } from '../../lib/sender/heartbeat-sender.js';
import { fleetSimulatorAvailable, simulateFleet } from '../../lib/simulator.js';
import type { TcpStats } from '../../lib/stats.js';
import type { TcpOptions } from '../../lib/tcp-options.js';
import { EventLog, sleep, until } from './helpers/loopback.js';

const engines: ('js' | 'native')[] = nativeEngineAvailable() ? ['js', 'native'] : ['js'];

const isUp = (id: bigint | string) => (e: HostEvent) => e.type === 'up' && e.id === String(id);
const isDown = (id: bigint | string) => (e: HostEvent) => e.type === 'down' && e.id === String(id);

function frame(hostId: bigint, fields: { payload?: number; seq?: number; leave?: boolean } = {}) {
  return encodeHeartbeat({
    hostId,
    incarnation: 5,
    seq: fields.seq ?? 0,
    intervalMs: 0,
    leave: fields.leave ?? false,
    payload: new Uint8Array(fields.payload ?? 0).fill(0x61),
  });
}

/** A TCP client; `closed` resolves when the server ends or resets the connection. */
class TcpClient {
  readonly socket: Socket;
  readonly closed: Promise<void>;
  constructor(socket: Socket) {
    this.socket = socket;
    socket.on('error', () => {});
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
  }
  /** Resolves once connected, or once closed: a server at its cap may reset before 'connect'. */
  static open(port: number): Promise<TcpClient> {
    const client = new TcpClient(connect({ port, host: '127.0.0.1', noDelay: true }));
    return new Promise((resolve) => {
      client.socket.once('connect', () => resolve(client));
      client.closed.then(() => resolve(client));
    });
  }
  get localPort(): number {
    return this.socket.localPort ?? 0;
  }
  write(bytes: Uint8Array): Promise<void> {
    return new Promise((resolve, reject) =>
      this.socket.write(bytes, (e) => (e ? reject(e) : resolve())),
    );
  }
  close(): Promise<void> {
    this.socket.destroy();
    return this.closed;
  }
}

/** Whether `client` is closed by the server within `ms`. */
async function closedWithin(client: TcpClient, ms: number): Promise<boolean> {
  return Promise.race([client.closed.then(() => true), sleep(ms).then(() => false)]);
}

describe.each(engines)('%s engine over TCP', (engine) => {
  const open: { close(): Promise<void> }[] = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((thing) => thing.close()));
  });

  async function start(options: HeartwatchOptions = {}, tcp: TcpOptions = {}) {
    const hw = new Heartwatch({
      host: '127.0.0.1',
      port: 0,
      engine,
      timeoutMs: 5000,
      receivers: 1,
      workers: 2,
      ...options,
      tcp: { port: 0, reactors: 2, ...tcp },
    });
    open.push(hw);
    const log = new EventLog(hw);
    const info = await hw.listen();
    const tcpPort = info.tcpPort as number;
    const client = async (): Promise<TcpClient> => {
      const c = await TcpClient.open(tcpPort);
      open.push(c);
      return c;
    };
    const tcpStats = (): TcpStats => hw.stats().tcp as TcpStats;
    return { hw, log, info, tcpPort, client, tcpStats };
  }

  it('is off by default and reports no TCP port or stats', async () => {
    const hw = new Heartwatch({ host: '127.0.0.1', port: 0, engine });
    open.push(hw);
    const info = await hw.listen();
    expect(info.tcpPort).toBeNull();
    expect(hw.stats().tcp).toBeNull();
  });

  it('turns frames from a connection into heartbeats: up, then down when they stop', async () => {
    const { log, info, client, tcpStats } = await start({ timeoutMs: 200 });
    expect(info.tcpPort).toBeGreaterThan(0);
    const c = await client();
    await c.write(frame(42n));
    const up = await log.waitFor<UpEvent>(isUp(42n));
    expect(up).toMatchObject({
      address: `127.0.0.1:${c.localPort}`,
      incarnation: 5,
      recovered: false,
    });
    await log.waitFor(isDown(42n), 5000);
    expect(tcpStats()).toMatchObject({
      accepted: 1,
      frames: 1,
      openConnections: 1,
      protocolErrors: 0,
    });
  });

  it('reads frames split at every byte boundary and many coalesced in one write', async () => {
    const { log, client, tcpStats } = await start();
    const three = [frame(1n), frame(2n, { payload: 5 }), frame(3n, { payload: 1 })];
    const stream = Buffer.concat(three);
    const c = await client();
    // Each cut gets its own three hosts: the pieces are written apart so the server reads them apart.
    for (let cut = 1; cut < stream.length; cut++) {
      const base = BigInt(cut * 10);
      const renumbered = Buffer.concat([
        frame(base + 1n),
        frame(base + 2n, { payload: 5 }),
        frame(base + 3n, { payload: 1 }),
      ]);
      await c.write(renumbered.subarray(0, cut));
      await sleep(2);
      await c.write(renumbered.subarray(cut));
    }
    const many = Buffer.concat(
      Array.from({ length: 500 }, (_, i) => frame(BigInt(100_000 + i), { payload: i % 7 })),
    );
    await c.write(many);
    const expected = (stream.length - 1) * 3 + 500;
    expect(await until(() => tcpStats().frames === expected, 10_000)).toBe(true);
    expect(
      await until(() => log.events.filter((e) => e.type === 'up').length === expected, 10_000),
    ).toBe(true);
    expect(tcpStats().protocolErrors).toBe(0);
  });

  it('takes a frame with a 65,479-byte payload', async () => {
    const { log, client, tcpStats } = await start();
    const c = await client();
    await c.write(Buffer.concat([frame(7n, { payload: 65_479 }), frame(8n)]));
    await log.waitFor(isUp(7n));
    await log.waitFor(isUp(8n));
    expect(tcpStats().frames).toBe(2);
  });

  it('keeps every beat whose status spans reads; a status past the native pool is refused and counted', async () => {
    const { hw, log, client, tcpStats } = await start({}, { reactors: 1, maxConnections: 1000 });
    // More statuses in flight at once than a native reactor has slots for (256).
    const hosts = 300;
    const status = (id: number) => Buffer.from(`host ${id} `.padEnd(1000, 's'));
    const frames = Array.from({ length: hosts }, (_, i) =>
      Buffer.from(
        encodeHeartbeat({
          hostId: BigInt(i + 1),
          incarnation: 5,
          seq: 0,
          intervalMs: 0,
          payload: status(i + 1),
        }),
      ),
    );
    // Each client with the rest of its frame, written once every client has sent the first part.
    const halfSent: { c: TcpClient; rest: Buffer }[] = [];
    for (const f of frames) {
      const c = await client();
      halfSent.push({ c, rest: f.subarray(500) });
      await c.write(f.subarray(0, 500));
    }
    if (engine === 'native') {
      expect(await until(() => tcpStats().statusSlotsFull > 0, 10_000)).toBe(true);
    }
    for (const { c, rest } of halfSent) await c.write(rest);
    const ups = () => log.events.filter((e): e is UpEvent => e.type === 'up');
    expect(await until(() => ups().length === hosts, 10_000)).toBe(true);
    const kept = ups().filter((e) => e.status !== undefined);
    for (const up of kept) expect(up.status).toEqual(status(Number(up.id)));
    // Each status is delivered exactly or refused and counted; none is lost otherwise.
    const refused = tcpStats().statusSlotsFull;
    expect(kept.length + refused).toBe(hosts);
    if (engine === 'js') expect(refused).toBe(0);
    const metrics = registerMetrics(hw);
    const text = await metrics.registry.metrics();
    metrics.dispose();
    expect(text).toMatch(new RegExp(`^heartwatch_tcp_status_slots_full_total ${refused}$`, 'm'));
  });

  it('closes only the connection whose frame breaks the protocol, and counts it', async () => {
    const { log, client, tcpStats } = await start();
    const good = await client();
    const bad = await client();
    const garbage = await client();
    await good.write(frame(1n));
    const broken = frame(2n);
    broken[2] = 9; // version 9
    await bad.write(Buffer.concat([frame(3n), broken, frame(4n)]));
    await garbage.write(Buffer.from('GET / HTTP/1.1\r\nHost: example.org\r\n\r\n'));
    expect(await closedWithin(bad, 5000)).toBe(true);
    expect(await closedWithin(garbage, 5000)).toBe(true);
    await good.write(frame(5n));
    await log.waitFor(isUp(5n));
    await log.waitFor(isUp(3n));
    expect(log.of(2n)).toEqual([]);
    expect(log.of(4n)).toEqual([]);
    expect(tcpStats().protocolErrors).toBe(2);
    expect(await closedWithin(good, 50)).toBe(false);
  });

  it('closes silent, stalled and idle connections by their deadlines, counted by reason', async () => {
    const { log, client, tcpStats } = await start(
      {},
      { handshakeTimeoutMs: 300, frameTimeoutMs: 300, idleTimeoutMs: 600 },
    );
    const silent = await client();
    const halfHeader = await client();
    const idle = await client();
    const slow = await client();
    const bigStall = await client();
    await halfHeader.write(frame(1n).subarray(0, 14));
    await idle.write(frame(2n));
    await slow.write(frame(3n));
    await log.waitFor(isUp(3n));
    await slow.write(frame(4n).subarray(0, 1)); // a second frame begins, and stalls
    // A header claiming the largest payload, 100 bytes of it, then nothing: no buffer is kept
    // for the claim, and the frame deadline ends it.
    await bigStall.write(frame(5n));
    await log.waitFor(isUp(5n));
    await bigStall.write(frame(6n, { payload: 65_535 }).subarray(0, 128));
    for (const c of [silent, halfHeader, idle, slow, bigStall]) {
      expect(await closedWithin(c, 5000)).toBe(true);
    }
    expect(tcpStats()).toMatchObject({ handshakeTimeouts: 2, idleTimeouts: 1, slowFrames: 2 });
    expect(await until(() => tcpStats().openConnections === 0)).toBe(true);
    expect(tcpStats().closedByPeer).toBe(0);
  });

  it('keeps a connection that sends a frame more often than the idle timeout', async () => {
    const { client, tcpStats } = await start({}, { idleTimeoutMs: 300 });
    const c = await client();
    for (let seq = 0; seq < 8; seq++) {
      await c.write(frame(9n, { seq }));
      await sleep(100);
    }
    expect(await closedWithin(c, 10)).toBe(false);
    expect(tcpStats().idleTimeouts).toBe(0);
  });

  it('resets connections past maxConnections and per IP, counts them, and admits again after a close', async () => {
    const { client, tcpStats } = await start({}, { maxConnections: 3 });
    const kept = [await client(), await client(), await client()];
    const refused = [await client(), await client()];
    for (const c of refused) expect(await closedWithin(c, 5000)).toBe(true);
    expect(tcpStats()).toMatchObject({ accepted: 3, refusedMaxConnections: 2 });
    await kept[0]?.close();
    expect(await until(() => tcpStats().closedByPeer === 1)).toBe(true);
    const again = await client();
    expect(await until(() => tcpStats().accepted === 4)).toBe(true);
    expect(await closedWithin(again, 100)).toBe(false);

    const perIp = await start({}, { maxConnectionsPerIp: 2 });
    await perIp.client();
    await perIp.client();
    const third = await perIp.client();
    expect(await closedWithin(third, 5000)).toBe(true);
    expect(perIp.tcpStats()).toMatchObject({ accepted: 2, refusedPerIp: 1 });
  });

  it('identity address: the host is the connection peer ip:port', async () => {
    const { log, client } = await start({ identity: 'address' });
    const c = await client();
    await c.write(frame(77n));
    const id = hostIdFromSource('127.0.0.1', c.localPort, 'address');
    const up = await log.waitFor<UpEvent>(isUp(id));
    expect(up.address).toBe(`127.0.0.1:${c.localPort}`);
  });

  it('holds 1,000 connections that never send, then reaps them all', async () => {
    const { client, tcpStats } = await start({}, { handshakeTimeoutMs: 1500 });
    const clients = await Promise.all(Array.from({ length: 1000 }, () => client()));
    expect(await until(() => tcpStats().accepted === 1000, 10_000)).toBe(true);
    expect(await until(() => tcpStats().handshakeTimeouts === 1000, 15_000)).toBe(true);
    expect(await until(() => tcpStats().openConnections === 0)).toBe(true);
    const stillOpen = await Promise.all(clients.map((c) => closedWithin(c, 1000)));
    expect(stillOpen.every(Boolean)).toBe(true);
  }, 30_000);

  it('survives a reconnect storm with no false down', async () => {
    const { log, client } = await start({ timeoutMs: 3000 });
    const hosts = 200;
    for (let round = 0; round < 3; round++) {
      const clients = await Promise.all(Array.from({ length: hosts }, () => client()));
      await Promise.all(clients.map((c, i) => c.write(frame(BigInt(i + 1), { seq: round }))));
      await Promise.all(clients.map((c) => c.close()));
    }
    expect(
      await until(() => log.events.filter((e) => e.type === 'up').length === hosts, 10_000),
    ).toBe(true);
    expect(log.events.filter((e) => e.type === 'down')).toEqual([]);
  }, 30_000);

  it('close() under load ends every connection and resolves', async () => {
    const { hw, client } = await start();
    const clients = await Promise.all(Array.from({ length: 20 }, () => client()));
    const writing = clients.map(async (c, i) => {
      for (let seq = 0; seq < 200; seq++) {
        if (c.socket.destroyed) return;
        c.socket.write(frame(BigInt(i + 1), { seq }));
        if (seq % 20 === 0) await sleep(1);
      }
    });
    await sleep(20);
    await hw.close();
    await Promise.all(writing);
    const ended = await Promise.all(clients.map((c) => closedWithin(c, 5000)));
    expect(ended.every(Boolean)).toBe(true);
  });

  describe('tcp.closeMeansDown', () => {
    const key = Buffer.alloc(32, 0x11);
    const isDisconnected = (id: bigint) => (e: HostEvent) =>
      e.type === 'down' && e.id === String(id) && e.reason === 'disconnected';
    const downs = (log: EventLog) => log.events.filter((e) => e.type === 'down');
    /** Waits until the server has closed its side of every connection, and a little more. */
    async function allClosed(tcpStats: () => TcpStats): Promise<void> {
      expect(await until(() => tcpStats().openConnections === 0, 5000)).toBe(true);
      await sleep(300);
    }

    it('off (the default), a close says nothing about the host', async () => {
      const { log, client, tcpStats } = await start({ timeoutMs: 5000 });
      const c = await client();
      await c.write(frame(31n));
      await log.waitFor(isUp(31n));
      await c.close();
      await allClosed(tcpStats);
      expect(downs(log)).toEqual([]);
    });

    it('on, a close after beats downs the host at once, reason disconnected', async () => {
      const { hw, log, client } = await start({ timeoutMs: 5000 }, { closeMeansDown: true });
      const c = await client();
      await c.write(frame(32n, { seq: 0 }));
      await c.write(frame(32n, { seq: 1 }));
      await log.waitFor(isUp(32n));
      const address = `127.0.0.1:${c.localPort}`;
      await sleep(50);
      const closedAt = Date.now();
      await c.close();
      const down = await log.waitFor<DownEvent>(isDisconnected(32n), 2000);
      expect(down).toMatchObject({ address, timeoutMs: 5000 });
      expect(down.uncertain).toBeUndefined();
      // Well before the timeout: the close, not the silence, took it down.
      expect(down.at - closedAt).toBeLessThan(1000);
      expect(down.at - down.lastSeen).toBeGreaterThanOrEqual(40);
      expect(down.at - down.lastSeen).toBeLessThan(1500);
      expect(await hw.host('32')).toMatchObject({ state: 'down' });
      expect(downs(log)).toHaveLength(1);
    });

    it("on, heartwatch's own resets count: a protocol error, an idle timeout", async () => {
      const { log, client, tcpStats } = await start(
        { timeoutMs: 10_000 },
        { closeMeansDown: true, idleTimeoutMs: 200 },
      );
      const broken = await client();
      await broken.write(frame(33n));
      await log.waitFor(isUp(33n));
      await broken.write(Buffer.alloc(28, 0x78)); // a whole header, and no v1 magic
      await log.waitFor(isDisconnected(33n), 2000);
      const idle = await client();
      await idle.write(frame(34n));
      await log.waitFor(isUp(34n));
      const down = await log.waitFor<DownEvent>(isDisconnected(34n), 3000);
      expect(down.at - down.lastSeen).toBeLessThan(3000);
      expect(tcpStats()).toMatchObject({ protocolErrors: 1, idleTimeouts: 1 });
    });

    it('on, a host that reconnected and beat on a new connection stays up when the old one closes', async () => {
      const { hw, log, client, tcpStats } = await start(
        { timeoutMs: 5000 },
        { closeMeansDown: true },
      );
      const old = await client();
      await old.write(frame(35n, { seq: 0 }));
      await log.waitFor(isUp(35n));
      const fresh = await client();
      await fresh.write(frame(35n, { seq: 1 }));
      const moved = `127.0.0.1:${fresh.localPort}`;
      // The new connection's beat has reached the detector before the old one closes.
      expect(await until(() => hw.stats().addressChanges === 1, 5000)).toBe(true);
      await old.close();
      expect(await until(() => tcpStats().openConnections === 1, 5000)).toBe(true);
      await sleep(300);
      expect(downs(log)).toEqual([]);
      await fresh.close();
      const down = await log.waitFor<DownEvent>(isDisconnected(35n), 2000);
      expect(down.address).toBe(moved);
    });

    it('on, LEAVE then close gives left alone', async () => {
      const { log, client, tcpStats } = await start({ timeoutMs: 5000 }, { closeMeansDown: true });
      const c = await client();
      await c.write(frame(36n, { seq: 0 }));
      await log.waitFor(isUp(36n));
      await c.write(frame(36n, { seq: 1, leave: true }));
      await c.close();
      await log.waitFor(isDown(36n), 2000);
      await allClosed(tcpStats);
      expect(downs(log).map((e) => (e as DownEvent).reason)).toEqual(['left']);
    });

    it('on, with keys, an unauthenticated connection cannot down a host; an authenticated one does', async () => {
      const { log, client, tcpStats } = await start(
        { timeoutMs: 5000, auth: { keys: [key], required: false } },
        { closeMeansDown: true },
      );
      const plain = await client();
      await plain.write(frame(37n));
      await log.waitFor(isUp(37n));
      await plain.close();
      await allClosed(tcpStats);
      expect(downs(log)).toEqual([]);
      const signed = await client();
      await signed.write(
        encodeHeartbeat({ hostId: 38n, incarnation: 1, seq: 0, intervalMs: 0, key }),
      );
      await log.waitFor(isUp(38n));
      await signed.close();
      await log.waitFor(isDisconnected(38n), 2000);
      expect(downs(log).map((e) => e.id)).toEqual(['38']);
    });

    it('on, close() ends every connection without a down', async () => {
      const { hw, log, client } = await start({ timeoutMs: 5000 }, { closeMeansDown: true });
      const clients = await Promise.all(Array.from({ length: 10 }, () => client()));
      await Promise.all(clients.map((c, i) => c.write(frame(BigInt(100 + i)))));
      expect(await until(() => log.events.filter((e) => e.type === 'up').length === 10, 5000)).toBe(
        true,
      );
      await hw.close();
      const ended = await Promise.all(clients.map((c) => closedWithin(c, 5000)));
      expect(ended.every(Boolean)).toBe(true);
      await sleep(100);
      expect(downs(log)).toEqual([]);
    });
  });

  it('rejects bad tcp options naming the option', () => {
    expect(() => new Heartwatch({ engine, tcp: { port: 70_000 } })).toThrow(/"tcp.port"/);
    expect(() => new Heartwatch({ engine, tcp: { idelTimeoutMs: 5 } as TcpOptions })).toThrow(
      /Unknown option "tcp.idelTimeoutMs"/,
    );
    expect(() => new Heartwatch({ engine, tcp: { recvBufferBytes: 100 } })).toThrow(
      /"tcp.recvBufferBytes"/,
    );
    expect(
      () => new Heartwatch({ engine, tcp: { closeMeansDown: 'yes' as unknown as boolean } }),
    ).toThrow(/Invalid option "tcp.closeMeansDown": expected a boolean, got "yes"/);
  });
});

describe('tcp options', () => {
  it('fills every tcp option in, and accepts every bound', async () => {
    const { resolveOptions } = await import('../../lib/options.js');
    expect(resolveOptions({ host: '127.0.0.2', tcp: {} }).tcp).toEqual({
      port: 7700,
      host: '127.0.0.2',
      reactors: 1,
      maxConnections: 65_536,
      maxConnectionsPerIp: 0,
      handshakeTimeoutMs: 10_000,
      idleTimeoutMs: 60_000,
      frameTimeoutMs: 10_000,
      backlog: 4096,
      deferAcceptS: 0,
      recvBufferBytes: 0,
      keepAliveIdleS: 30,
      keepAliveIntervalS: 10,
      keepAliveCount: 3,
      closeMeansDown: false,
    });
    const low = {
      port: 0,
      host: '::1',
      reactors: 1,
      maxConnections: 1,
      maxConnectionsPerIp: 0,
      handshakeTimeoutMs: 1,
      idleTimeoutMs: 1,
      frameTimeoutMs: 1,
      backlog: 1,
      deferAcceptS: 0,
      recvBufferBytes: 0,
      keepAliveIdleS: 0,
      keepAliveIntervalS: 1,
      keepAliveCount: 1,
      closeMeansDown: false,
    };
    expect(resolveOptions({ tcp: low }).tcp).toEqual(low);
    const high = {
      ...low,
      port: 65_535,
      maxConnections: 2 ** 24,
      maxConnectionsPerIp: 2 ** 24,
      handshakeTimeoutMs: 16_777_214,
      idleTimeoutMs: 16_777_214,
      frameTimeoutMs: 16_777_214,
      backlog: 65_535,
      deferAcceptS: 3600,
      recvBufferBytes: 2 ** 31 - 1,
      keepAliveIdleS: 32_767,
      keepAliveIntervalS: 32_767,
      keepAliveCount: 127,
      closeMeansDown: true,
    };
    expect(resolveOptions({ tcp: high }).tcp).toEqual(high);
    expect(() => resolveOptions({ tcp: { ...high, maxConnections: 2 ** 24 + 1 } })).toThrow(
      /"tcp.maxConnections": expected an integer from 1 to 16777216/,
    );
    expect(() => resolveOptions({ tcp: 7700 })).toThrow(/"tcp": expected null or an object/);
  });
});

describe('heartwatch serve --tcp-port', () => {
  const bin = path.join(__dirname, '..', '..', 'dist', 'cli', 'main.js');

  function serve(args: string[]) {
    const child = spawn(process.execPath, [bin, 'serve', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out = { stdout: '', stderr: '' };
    child.stdout.setEncoding('utf8').on('data', (s: string) => {
      out.stdout += s;
    });
    child.stderr.setEncoding('utf8').on('data', (s: string) => {
      out.stderr += s;
    });
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    return { child, out, exited };
  }

  it('listens on both transports and prints the hosts a TCP sender brings up', async () => {
    const server = serve(['--host', '127.0.0.1', '--port', '0', '--tcp-port', '0', '--json']);
    try {
      const listening = /listening on 127\.0\.0\.1:\d+, TCP 127\.0\.0\.1:(\d+) \(engine/;
      expect(await until(() => listening.test(server.out.stderr), 10_000)).toBe(true);
      const tcpPort = Number(server.out.stderr.match(listening)?.[1]);
      const client = await TcpClient.open(tcpPort);
      await client.write(frame(4242n));
      expect(await until(() => server.out.stdout.includes('"id":"4242"'), 5000)).toBe(true);
      await client.close();
    } finally {
      server.child.kill('SIGTERM');
      expect(await server.exited).toBe(0);
    }
  });

  it('heartwatch send --transport tcp beats over TCP and leaves', async () => {
    const hw = new Heartwatch({ host: '127.0.0.1', port: 0, engine: 'js', tcp: { port: 0 } });
    try {
      const log = new EventLog(hw);
      const { tcpPort } = await hw.listen();
      const sender = spawn(
        process.execPath,
        [bin, 'send', '--to', `127.0.0.1:${tcpPort}`, '--id', '77', '--transport', 'tcp'],
        { stdio: 'ignore' },
      );
      sender.unref();
      const exited = new Promise((resolve) => sender.on('close', resolve));
      await log.waitFor(isUp(77n), 5000);
      sender.kill('SIGTERM');
      expect(await exited).toBe(0);
      await log.waitFor((e) => e.type === 'down' && e.id === '77' && e.reason === 'left');
      expect(hw.stats().received).toBe(0);
    } finally {
      await hw.close();
    }
  });

  it("--tcp-close-means-down prints a closed connection's host as down, reason disconnected; stopping downs nobody", async () => {
    const server = serve([
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--tcp-port',
      '0',
      '--tcp-close-means-down',
      '--json',
    ]);
    try {
      const listening = /listening on 127\.0\.0\.1:\d+, TCP 127\.0\.0\.1:(\d+) \(engine/;
      expect(await until(() => listening.test(server.out.stderr), 10_000)).toBe(true);
      const tcpPort = Number(server.out.stderr.match(listening)?.[1]);
      const client = await TcpClient.open(tcpPort);
      const stays = await TcpClient.open(tcpPort);
      await client.write(frame(4343n));
      await stays.write(frame(4344n));
      expect(await until(() => server.out.stdout.includes('"id":"4344"'), 5000)).toBe(true);
      await client.close();
      const down =
        /"event":"down","id":"4343","address":"[^"]+","time":"[^"]+","reason":"disconnected"/;
      expect(await until(() => down.test(server.out.stdout), 5000)).toBe(true);
      server.child.kill('SIGTERM');
      expect(await server.exited).toBe(0);
      expect(await closedWithin(stays, 5000)).toBe(true);
      expect(server.out.stdout).not.toContain('"event":"down","id":"4344"');
    } finally {
      server.child.kill('SIGTERM');
      await server.exited;
    }
  });

  it('refuses TCP flags without --tcp-port, naming the flag', async () => {
    const server = serve(['--tcp-reactors', '2']);
    expect(await server.exited).toBe(2);
    expect(server.out.stderr).toContain('--tcp-reactors needs --tcp-port');
    const flag = serve(['--tcp-close-means-down']);
    expect(await flag.exited).toBe(2);
    expect(flag.out.stderr).toContain('--tcp-close-means-down needs --tcp-port');
  });
});

describe('HeartbeatSender over TCP', () => {
  const open: { close(): Promise<void> }[] = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((thing) => thing.close()));
  });

  async function server(tcp: TcpOptions = {}, port = 0) {
    const hw = new Heartwatch({ host: '127.0.0.1', port, engine: 'js', tcp: { port: 0, ...tcp } });
    open.push(hw);
    const log = new EventLog(hw);
    const info = await hw.listen();
    return { hw, log, info };
  }

  it('beats over tcp:// and leaves with LEAVE', async () => {
    const { hw, log, info } = await server();
    const sender = new HeartbeatSender({
      server: `tcp://127.0.0.1:${info.tcpPort}`,
      hostId: 31n,
      intervalMs: 20,
    });
    expect(sender.server).toBe(`tcp://127.0.0.1:${info.tcpPort}`);
    await sender.start();
    await log.waitFor(isUp(31n));
    expect(await until(() => (hw.stats().tcp?.frames ?? 0) >= 3)).toBe(true);
    await sender.close();
    const down = await log.waitFor(isDown(31n));
    expect(down).toMatchObject({ reason: 'left' });
    expect(hw.stats().received).toBe(0); // nothing came over UDP
  });

  it("transport 'auto' sends small beats over UDP and big ones over TCP", async () => {
    // One port number for both transports: find a free one, then serve UDP and TCP on it.
    const probe = await server();
    const udpPort = probe.info.tcpPort as number;
    await probe.hw.close();
    const both = await server({ port: udpPort }, udpPort);
    const small = new HeartbeatSender({
      server: `udp://127.0.0.1:${udpPort}`,
      hostId: 1n,
      transport: 'auto',
    });
    const big = new HeartbeatSender({
      server: `udp://127.0.0.1:${udpPort}`,
      hostId: 2n,
      transport: 'auto',
      payload: new Uint8Array(4000),
    });
    open.push(small, big);
    await small.start();
    await big.start();
    await both.log.waitFor(isUp(1n));
    await both.log.waitFor(isUp(2n));
    expect(both.hw.stats().received).toBe(1);
    expect(both.hw.stats().tcp?.frames).toBe(1);
  });

  it('never blocks on a dead server, drops while down, and reconnects when it is back', async () => {
    const probe = await server();
    const port = probe.info.tcpPort as number;
    await probe.hw.close();
    const sender = new HeartbeatSender({
      server: `tcp://127.0.0.1:${port}`,
      hostId: 9n,
      intervalMs: 20,
    });
    open.push(sender);
    await sender.start(); // resolves although nothing listens
    expect(await until(() => sender.dropped >= 3)).toBe(true);
    const back = await server({ port });
    await back.log.waitFor(isUp(9n), 10_000);
  });
});

describe.runIf(fleetSimulatorAvailable())('fleet simulator over TCP', () => {
  it.each(engines)(
    '%s engine: every simulated host up over its own connection, no false down',
    async (engine) => {
      const hw = new Heartwatch({
        host: '127.0.0.1',
        port: 0,
        engine,
        timeoutMs: 2000,
        missedBeats: 0,
        tcp: { port: 0 },
      });
      try {
        const log = new EventLog(hw);
        const { tcpPort } = await hw.listen();
        const report = await simulateFleet({
          server: `127.0.0.1:${tcpPort}`,
          transport: 'tcp',
          hosts: 500,
          packetsPerSecond: 2500,
          durationMs: 1500,
          payloadBytes: 100,
        });
        expect(report.sendErrors).toBe(0);
        expect(await until(() => hw.stats().tcp?.frames === report.packetsSent, 5000)).toBe(true);
        expect(log.events.filter((e) => e.type === 'up').length).toBe(500);
        expect(log.events.filter((e) => e.type === 'down')).toEqual([]);
        expect(hw.stats().tcp).toMatchObject({ accepted: 500, protocolErrors: 0 });
      } finally {
        await hw.close();
      }
    },
  );
});
