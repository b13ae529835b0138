// Authentication, replay protection and the source allow-list (docs/protocol.md), the same for
// both engines: real loopback UDP, ephemeral ports.
import { connect } from 'node:net';
import { inspect } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { nativeEngineAvailable } from '../../lib/engine/native-engine.js';
import type { HostEvent } from '../../lib/events.js';
import { registerMetrics } from '../../lib/metrics/prometheus.js';
import type { HeartwatchOptions } from '../../lib/options.js';
import { encodeHeartbeat, type HeartbeatFields } from '../../lib/protocol/wire-v1.js';
import { HeartbeatSender } from '../../lib/sender/heartbeat-sender.js';
import type { TcpStats } from '../../lib/stats.js';
import { engineVariants, Fixture, sleep, until } from './helpers/loopback.js';

const engines: ('js' | 'native')[] = nativeEngineAvailable() ? ['js', 'native'] : ['js'];
const variants = engineVariants(engines);
const key = Buffer.alloc(32, 0x11);
const otherKey = Buffer.alloc(32, 0x22);
const threads = { receivers: 1, workers: 1, cpus: null } as const;

const isUp = (id: bigint) => (e: HostEvent) => e.type === 'up' && e.id === String(id);
const signed = (fields: Partial<HeartbeatFields> & { hostId: bigint }, k: Buffer = key): Buffer =>
  encodeHeartbeat({ incarnation: 1000, seq: 0, intervalMs: 0, ...fields, key: k });

describe.each(variants)('$engine engine ($receiveBackend): authentication', (variant) => {
  const { engine } = variant;
  const fixture = new Fixture(variant);
  afterEach(() => fixture.closeAll());

  it('drops a wrong key, a truncated tag and a flipped payload bit, counted authFailed', async () => {
    const { hw, port, log, client } = await fixture.start({
      engine,
      ...threads,
      auth: { keys: [key], required: true },
    });
    const good = signed({ hostId: 5n, payload: Buffer.from('status') });
    const flipped = Buffer.from(good);
    flipped[30] = (flipped[30] as number) ^ 0x01;
    await client.send(signed({ hostId: 5n }, otherKey), port);
    await client.send(good.subarray(0, good.length - 1), port);
    await client.send(good.subarray(0, good.length - 16), port);
    await client.send(flipped, port);
    await client.send(good, port);
    await log.waitFor(isUp(5n));
    expect(await until(() => hw.stats().received === 5)).toBe(true);
    const s = hw.stats();
    expect(s).toMatchObject({ authFailed: 4, malformed: 0, unauthenticated: 0, trackedHosts: 1 });
    expect(s.receivers.reduce((a, r) => a + r.authFailed, 0)).toBe(4);
    expect(log.events).toHaveLength(1);
  });

  it('required: false accepts both, counting the unsigned ones; required: true drops them', async () => {
    const open = await fixture.start({ engine, ...threads, auth: { keys: [key] } });
    await open.client.beat(open.port, 1n);
    await open.client.send(signed({ hostId: 2n }), open.port);
    await open.log.waitFor(isUp(1n));
    await open.log.waitFor(isUp(2n));
    expect(open.hw.stats()).toMatchObject({ unauthenticated: 1, authFailed: 0, trackedHosts: 2 });

    const strict = await fixture.start({
      engine,
      ...threads,
      auth: { keys: [key], required: true },
    });
    await strict.client.beat(strict.port, 1n);
    await strict.client.send(signed({ hostId: 2n }), strict.port);
    await strict.log.waitFor(isUp(2n));
    expect(await until(() => strict.hw.stats().received === 2)).toBe(true);
    expect(strict.hw.stats()).toMatchObject({ unauthenticated: 1, trackedHosts: 1 });
  });

  it('a keyless server counts signed datagrams authUnsupported; a keyed one counts a cut tag authFailed', async () => {
    const { hw, port, client, log } = await fixture.start({ engine, ...threads });
    const good = signed({ hostId: 3n });
    await client.send(good, port);
    await client.send(good.subarray(0, good.length - 4), port);
    await client.beat(port, 4n);
    await log.waitFor(isUp(4n));
    expect(await until(() => hw.stats().received === 3)).toBe(true);
    expect(hw.stats()).toMatchObject({ authUnsupported: 1, malformed: 1, authFailed: 0 });
  });

  it('100 forged LEAVEs with guessed ids bring no host down when required is true', async () => {
    const { hw, port, log, client } = await fixture.start({
      engine,
      ...threads,
      timeoutMs: 60_000,
      auth: { keys: [key], required: true },
    });
    for (let id = 1n; id <= 100n; id++) await client.send(signed({ hostId: id, seq: 1 }), port);
    expect(await until(() => hw.stats().hostsUp === 100)).toBe(true);
    for (let id = 1n; id <= 100n; id++) {
      await client.beat(port, id, { incarnation: 1000, seq: 2, leave: true });
      await client.send(signed({ hostId: id, seq: 2, leave: true }, otherKey), port);
    }
    expect(await until(() => hw.stats().received === 300)).toBe(true);
    await sleep(100);
    const s = hw.stats();
    expect(s).toMatchObject({ hostsUp: 100, hostsDown: 0, unauthenticated: 100, authFailed: 100 });
    expect(log.events.filter((e) => e.type === 'down')).toEqual([]);
  });

  it('a heartbeat replayed 1 s later, and after the host died, has no effect', async () => {
    const { hw, port, log, client } = await fixture.start({
      engine,
      ...threads,
      timeoutMs: 600,
      missedBeats: 0,
      auth: { keys: [key], required: true },
    });
    const captured = signed({ hostId: 7n, seq: 1 });
    await client.send(captured, port);
    await log.waitFor(isUp(7n));
    for (let seq = 2; seq <= 5; seq++) {
      await sleep(250);
      await client.send(signed({ hostId: 7n, seq }), port);
    }
    await client.send(captured, port);
    expect(await until(() => hw.stats().replayed === 1)).toBe(true);
    // Only replays from now on: the host must still go down on time and stay down.
    const replaying = setInterval(() => void client.send(captured, port), 100);
    try {
      await log.waitFor((e) => e.type === 'down' && e.id === '7', 3000);
      await sleep(300);
    } finally {
      clearInterval(replaying);
    }
    expect(log.events.map((e) => e.type)).toEqual(['up', 'down']);
    expect(hw.stats().replayed).toBeGreaterThanOrEqual(5);
    expect(hw.stats().hostsDown).toBe(1);
  });

  it("an old incarnation's LEAVE and heartbeats after a restart have no effect", async () => {
    const { hw, port, log, client } = await fixture.start({
      engine,
      ...threads,
      timeoutMs: 60_000,
      auth: { keys: [key], required: true },
    });
    const oldLeave = signed({ hostId: 9n, incarnation: 1000, seq: 3, leave: true });
    const oldBeat = signed({ hostId: 9n, incarnation: 1000, seq: 2 });
    await client.send(signed({ hostId: 9n, incarnation: 1000, seq: 1 }), port);
    await client.send(oldBeat, port);
    await client.send(oldLeave, port);
    await log.waitFor((e) => e.type === 'down' && e.id === '9');
    await client.send(signed({ hostId: 9n, incarnation: 1001, seq: 0 }), port);
    await log.waitFor((e) => e.type === 'up' && e.id === '9' && e.incarnation === 1001);
    await client.send(oldLeave, port); // a captured LEAVE while the host lives
    await client.send(oldBeat, port); // an old incarnation's heartbeat
    expect(await until(() => hw.stats().replayed === 2)).toBe(true);
    await sleep(100);
    expect(log.events.map((e) => e.type)).toEqual(['up', 'down', 'up']);
    expect(hw.stats()).toMatchObject({ hostsUp: 1, hostsDown: 0 });
    const workers = hw.stats().workers.reduce((a, w) => a + w.replayed, 0);
    expect(workers).toBe(2);
  });

  it('a signing HeartbeatSender comes up, restarts and leaves; a second one in the process is a restart', async () => {
    const { port, log } = await fixture.start({
      engine,
      ...threads,
      timeoutMs: 60_000,
      auth: { keys: [key], required: true },
    });
    const options = { server: `udp://127.0.0.1:${port}`, hostId: 77n, intervalMs: 20, key };
    const first = new HeartbeatSender(options);
    await first.start();
    await log.waitFor(isUp(77n));
    const second = new HeartbeatSender(options);
    expect(second.incarnation).toBeGreaterThan(first.incarnation);
    expect(first.incarnation).toBeGreaterThanOrEqual(Math.floor(Date.now() / 1000) - 5);
    await first.close();
    await log.waitFor((e) => e.type === 'down' && e.id === '77' && e.reason === 'left');
    await second.start();
    await log.waitFor(
      (e) => e.type === 'up' && e.id === '77' && e.incarnation === second.incarnation,
    );
    await second.close();
    await log.waitFor(
      (e) => log.events.filter((x) => x.type === 'down').length === 2 && e.type === 'down',
    );
  });

  it('rotates keys with setKeys() and no restart', async () => {
    const { hw, port, log, client } = await fixture.start({
      engine,
      ...threads,
      timeoutMs: 60_000,
      auth: { keys: [key], required: true },
    });
    await client.send(signed({ hostId: 1n, seq: 1 }, key), port);
    await client.send(signed({ hostId: 2n, seq: 1 }, otherKey), port);
    await log.waitFor(isUp(1n));
    expect(await until(() => hw.stats().authFailed === 1)).toBe(true);
    hw.setKeys([otherKey, key]);
    await client.send(signed({ hostId: 1n, seq: 2 }, key), port);
    await client.send(signed({ hostId: 2n, seq: 2 }, otherKey), port);
    await log.waitFor(isUp(2n));
    expect(await until(() => hw.stats().received === 4)).toBe(true);
    expect(hw.stats().authFailed).toBe(1);
    hw.setKeys([otherKey]);
    await client.send(signed({ hostId: 1n, seq: 3 }, key), port);
    await client.send(signed({ hostId: 2n, seq: 3 }, otherKey), port);
    expect(await until(() => hw.stats().received === 6)).toBe(true);
    expect(await until(() => hw.stats().authFailed === 2)).toBe(true);
    expect(() => hw.setKeys([Buffer.alloc(4)])).toThrow(/setKeys\(keys\).*got 4 bytes at index 0/);
  });
});

describe.each(engines)('%s engine: authentication over TCP', (engine) => {
  const fixture = new Fixture();
  afterEach(() => fixture.closeAll());

  /** A server with TCP on; `frames` writes frames on one connection and waits until all are read. */
  async function startTcp(options: HeartwatchOptions) {
    const { hw, log } = await fixture.start({ engine, ...threads, tcp: { port: 0 }, ...options });
    const tcpPort = (hw.stats().tcp as TcpStats).port;
    const socket = connect({ port: tcpPort, host: '127.0.0.1' });
    socket.on('error', () => {});
    fixture.track({ close: async () => void socket.destroy() });
    await new Promise((resolve) => socket.once('connect', resolve));
    const tcp = (): TcpStats => hw.stats().tcp as TcpStats;
    const frames = async (...list: Buffer[]) => {
      const before = tcp().frames;
      socket.write(Buffer.concat(list));
      expect(await until(() => tcp().frames === before + list.length)).toBe(true);
    };
    const write = (bytes: Buffer) => socket.write(bytes);
    socket.setNoDelay(true);
    return { hw, log, tcp, frames, write };
  }
  const plain = (hostId: bigint) =>
    encodeHeartbeat({ hostId, incarnation: 1, seq: 0, intervalMs: 0 });

  it('verifies signed TCP frames; a forged tag, an altered frame and an unsigned one under required: true are dropped and counted', async () => {
    const { hw, log, tcp, frames } = await startTcp({ auth: { keys: [key], required: true } });
    const altered = signed({ hostId: 10n, payload: Buffer.from('status') });
    altered[30] = (altered[30] as number) ^ 0x01;
    await frames(plain(7n), signed({ hostId: 8n }), signed({ hostId: 9n }, otherKey), altered);
    await log.waitFor(isUp(8n));
    await sleep(100);
    expect(tcp()).toMatchObject({
      authFailed: 2,
      unauthenticated: 1,
      authUnsupported: 0,
      protocolErrors: 0,
    });
    expect(hw.stats().trackedHosts).toBe(1);
    expect(log.events).toHaveLength(1);
  });

  it('a keyless server counts signed TCP frames authUnsupported', async () => {
    const { hw, tcp, frames } = await startTcp({});
    await frames(signed({ hostId: 8n }));
    expect(await until(() => tcp().authUnsupported === 1)).toBe(true);
    expect(tcp().authFailed).toBe(0);
    expect(hw.stats().trackedHosts).toBe(0);
  });

  it("a truncated tag takes the next frame's bytes: counted authFailed, then the stream breaks", async () => {
    const { hw, tcp, write } = await startTcp({ auth: { keys: [key], required: true } });
    const good = signed({ hostId: 8n });
    write(Buffer.concat([good.subarray(0, good.length - 8), good]));
    expect(await until(() => tcp().protocolErrors === 1)).toBe(true);
    expect(tcp()).toMatchObject({ authFailed: 1, frames: 1 });
    expect(hw.stats().trackedHosts).toBe(0);
  });

  it('verifies a signed frame split byte by byte, and rejects a forged one split the same way', async () => {
    const { log, tcp, write } = await startTcp({ auth: { keys: [key], required: true } });
    const bytewise = async (frame: Buffer) => {
      for (let i = 0; i < frame.length; i++) {
        write(frame.subarray(i, i + 1));
        await sleep(1);
      }
    };
    await bytewise(signed({ hostId: 8n, payload: Buffer.alloc(100, 7) }, otherKey));
    await bytewise(signed({ hostId: 9n, payload: Buffer.alloc(100, 7) }));
    await log.waitFor(isUp(9n));
    expect(tcp()).toMatchObject({ frames: 2, authFailed: 1, protocolErrors: 0 });
    expect(log.events).toHaveLength(1);
  });

  it('a replayed signed frame does not bring a down host back', async () => {
    const { hw, log, frames } = await startTcp({
      timeoutMs: 300,
      auth: { keys: [key], required: true },
    });
    const beat = signed({ hostId: 8n, seq: 5 });
    await frames(beat);
    await log.waitFor((e) => e.type === 'down' && e.id === '8');
    await frames(beat);
    const replayed = () => hw.stats().workers.reduce((a, w) => a + w.replayed, 0);
    expect(await until(() => replayed() === 1)).toBe(true);
    await sleep(100);
    expect(log.events.map((e) => e.type)).toEqual(['up', 'down']);
  });

  it('a signing HeartbeatSender over TCP, and over auto with a status too big for UDP, comes up', async () => {
    const { hw, log, tcp } = await startTcp({
      timeoutMs: 60_000,
      maxStatusBytes: 4096,
      auth: { keys: [key], required: true },
    });
    const server = `tcp://127.0.0.1:${tcp().port}`;
    const overTcp = new HeartbeatSender({ server, hostId: 77n, intervalMs: 20, key });
    const auto = new HeartbeatSender({
      server: `udp://127.0.0.1:${tcp().port}`,
      transport: 'auto',
      hostId: 78n,
      intervalMs: 20,
      key,
    });
    auto.setStatus(Buffer.alloc(3000, 0x61));
    fixture.track(overTcp);
    fixture.track(auto);
    await overTcp.start();
    await auto.start();
    await log.waitFor(isUp(77n));
    await log.waitFor(isUp(78n));
    expect(tcp()).toMatchObject({ authFailed: 0, unauthenticated: 0, authUnsupported: 0 });
    expect(hw.stats().replayed).toBe(0);
  });

  it('exports the TCP auth counters as Prometheus metrics', async () => {
    const { hw, tcp, frames } = await startTcp({ auth: { keys: [key], required: true } });
    await frames(signed({ hostId: 9n }, otherKey), signed({ hostId: 10n }, otherKey));
    expect(await until(() => tcp().authFailed === 2)).toBe(true);
    const metrics = registerMetrics(hw);
    const text = await metrics.registry.metrics();
    metrics.dispose();
    expect(text).toMatch(/^heartwatch_tcp_frames_rejected_total\{reason="auth_failed"\} 2$/m);
    expect(text).toMatch(/^heartwatch_tcp_frames_rejected_total\{reason="auth_unsupported"\} 0$/m);
    expect(text).toMatch(/^heartwatch_tcp_auth_slots_full_total 0$/m);
  });

  it('rotates keys over a live connection with setKeys()', async () => {
    const { hw, log, tcp, frames } = await startTcp({ auth: { keys: [key], required: true } });
    await frames(signed({ hostId: 8n, seq: 1 }, otherKey));
    expect(await until(() => tcp().authFailed === 1)).toBe(true);
    hw.setKeys([otherKey, key]);
    await frames(signed({ hostId: 8n, seq: 2 }, otherKey), signed({ hostId: 9n, seq: 1 }));
    await log.waitFor(isUp(8n));
    await log.waitFor(isUp(9n));
    hw.setKeys([otherKey]);
    await frames(signed({ hostId: 9n, seq: 2 }));
    expect(await until(() => tcp().authFailed === 2)).toBe(true);
  });

  it('required: false applies unsigned TCP frames, counted unauthenticated', async () => {
    const { hw, log, tcp, frames } = await startTcp({ auth: { keys: [key] } });
    await frames(plain(7n));
    await log.waitFor(isUp(7n));
    expect(tcp()).toMatchObject({ unauthenticated: 1, authUnsupported: 0 });
    expect(hw.stats().trackedHosts).toBe(1);
  });

  it('the allow list applies to TCP peers, counted notAllowed', async () => {
    const { hw, log, tcp, frames } = await startTcp({ allow: ['10.0.0.0/8'] });
    await frames(plain(7n), plain(8n));
    await sleep(100);
    expect(tcp()).toMatchObject({ notAllowed: 2, unauthenticated: 0 });
    expect(hw.stats().trackedHosts).toBe(0);
    expect(log.events).toHaveLength(0);

    const allowed = await startTcp({ allow: ['127.0.0.0/8'] });
    await allowed.frames(plain(9n));
    await allowed.log.waitFor(isUp(9n));
    expect(allowed.tcp().notAllowed).toBe(0);
  });
});

describe.each(variants)('$engine engine ($receiveBackend): large signed datagrams', (variant) => {
  const { engine } = variant;
  const fixture = new Fixture(variant);
  afterEach(() => fixture.closeAll());

  it('a burst of 16 signed 30 KB datagrams all verify (each keeps its own bytes past 2 KiB)', async () => {
    const { hw, port, log, client } = await fixture.start({
      engine,
      ...threads,
      auth: { keys: [key], required: true },
    });
    const hosts = Array.from({ length: 16 }, (_, i) => BigInt(i + 1));
    // Each payload differs, so a datagram checked against another's bytes fails its tag.
    const burst = hosts.map((hostId) =>
      signed({ hostId, payload: Buffer.alloc(30_000, Number(hostId)) }),
    );
    await Promise.all(burst.map((datagram) => client.send(datagram, port)));
    expect(await until(() => hw.stats().received === hosts.length, 10_000)).toBe(true);
    for (const id of hosts) await log.waitFor(isUp(id));
    expect(hw.stats()).toMatchObject({ authFailed: 0, trackedHosts: hosts.length });
  });
});

describe.each(variants)('$engine engine ($receiveBackend): source allow-list', (variant) => {
  const { engine } = variant;
  const fixture = new Fixture(variant);
  afterEach(() => fixture.closeAll());

  it.each([
    { allow: ['127.0.0.0/8'], allowed: true },
    { allow: ['10.0.0.0/8', 'fd00::/8'], allowed: false },
    { allow: ['::ffff:127.0.0.0/104'], allowed: true },
    { allow: ['127.0.0.2/32'], allowed: false },
  ])('IPv4 sources on a dual-stack socket against $allow', async ({ allow, allowed }) => {
    const { hw, port, log } = await fixture.start({ engine, ...threads, host: '::', allow });
    const client = await fixture.client('127.0.0.1');
    await client.send(encodeHeartbeat({ hostId: 1n, incarnation: 1, seq: 0, intervalMs: 0 }), port);
    expect(await until(() => hw.stats().received === 1)).toBe(true);
    if (allowed) await log.waitFor(isUp(1n));
    await sleep(50);
    expect(hw.stats()).toMatchObject({
      notAllowed: allowed ? 0 : 1,
      trackedHosts: allowed ? 1 : 0,
    });
  });

  it.each([
    { allow: ['::1/128'], allowed: true },
    { allow: ['fd00::/8', '127.0.0.0/8'], allowed: false },
  ])('IPv6 sources against $allow', async ({ allow, allowed }) => {
    const { hw, port, log } = await fixture.start({ engine, ...threads, host: '::1', allow });
    const client = await fixture.client('::1');
    await client.send(encodeHeartbeat({ hostId: 1n, incarnation: 1, seq: 0, intervalMs: 0 }), port);
    expect(await until(() => hw.stats().received === 1)).toBe(true);
    if (allowed) await log.waitFor(isUp(1n));
    await sleep(50);
    expect(hw.stats().notAllowed).toBe(allowed ? 0 : 1);
  });

  it('rejects bad prefixes and bad keys naming the option, and never shows a key', async () => {
    const { Heartwatch } = await import('../../lib/heartwatch.js');
    expect(() => new Heartwatch({ engine, allow: ['10.0.0.0/33'] })).toThrow(
      /"allow\[0\]".*10\.0\.0\.0\/33/,
    );
    expect(() => new Heartwatch({ engine, auth: { keys: [Buffer.alloc(8, 0xab)] } })).toThrow(
      /"auth\.keys".*got 8 bytes at index 0/,
    );
    try {
      new Heartwatch({ engine, auth: { keys: [Buffer.alloc(8, 0xab)] } });
    } catch (err) {
      expect(String((err as Error).message)).not.toMatch(/ab/);
    }
    const hw = fixture.track(new Heartwatch({ engine, port: 0, auth: { keys: [key] } }));
    expect(inspect(hw.options.auth)).not.toContain('11');
    expect(JSON.stringify(hw.options)).not.toContain('1111');
  });
});
