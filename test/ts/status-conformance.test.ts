// Host statuses (issue 13), the same on both engines and both transports: real loopback UDP and
// TCP, ephemeral ports. Part of the conformance suite: every available engine runs it unchanged.
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { nativeEngineAvailable } from '../../lib/engine/native-engine.js';
import type { HostEvent, UpdateEvent, UpEvent } from '../../lib/events.js';
import { Heartwatch } from '../../lib/heartwatch.js';
import { encodeHeartbeat } from '../../lib/protocol/wire-v1.js';
import { HeartbeatSender } from '../../lib/sender/heartbeat-sender.js';
import { engineVariants, Fixture, sleep, until } from './helpers/loopback.js';

const engines: ('js' | 'native')[] = nativeEngineAvailable() ? ['js', 'native'] : ['js'];
const variants = engineVariants(engines);

const bytes = (text: string) => Buffer.from(text);
const ofHost = (id: bigint, type?: HostEvent['type']) => (e: HostEvent) =>
  e.id === String(id) && (type === undefined || e.type === type);

describe.each(variants)('$engine engine ($receiveBackend): statuses', (variant) => {
  const { engine } = variant;
  const fixture = new Fixture(variant);
  afterEach(() => fixture.closeAll());

  it('a status on the first beat is part of up; host(id) and hosts({ statuses }) return it', async () => {
    const { hw, port, log, client } = await fixture.start({ engine, timeoutMs: 5000 });
    await client.beat(port, 7n, { payload: bytes('{"role":"db"}') });
    await client.beat(port, 8n);
    const up = await log.waitFor<UpEvent>(ofHost(7n, 'up'));
    expect(up.status).toEqual(bytes('{"role":"db"}'));
    expect((await log.waitFor<UpEvent>(ofHost(8n, 'up'))).status).toBeUndefined();
    expect((await hw.host('7'))?.status).toEqual(bytes('{"role":"db"}'));
    expect((await hw.host('8'))?.status).toBeUndefined();
    expect(await hw.host('9')).toBeUndefined();
    const plain = await hw.hosts();
    expect(plain.every((h) => h.status === undefined)).toBe(true);
    const withStatuses = await hw.hosts({ statuses: true });
    expect(withStatuses.find((h) => h.id === '7')?.status).toEqual(bytes('{"role":"db"}'));
    expect(withStatuses.find((h) => h.id === '8')?.status).toBeUndefined();
    expect(hw.stats().statuses).toMatchObject({ hosts: 1, bytes: 32 });
  });

  it('an unchanged status, or none, costs no event; a change gives exactly one update', async () => {
    const { hw, port, log, client } = await fixture.start({ engine, timeoutMs: 5000 });
    await client.beat(port, 7n, { payload: bytes('a') });
    await log.waitFor(ofHost(7n, 'up'));
    await client.beat(port, 7n, { payload: bytes('a') });
    await client.beat(port, 7n);
    await client.beat(port, 7n, { payload: bytes('b') });
    await client.beat(port, 7n, { payload: bytes('b') });
    await client.beat(port, 7n);
    const update = await log.waitFor<UpdateEvent>(ofHost(7n, 'update'));
    await until(() => hw.stats().received === 6 && hw.stats().eventsPending === 0);
    await sleep(50);
    expect(log.of(7n).map((e) => e.type)).toEqual(['up', 'update']);
    expect(update).toEqual({
      type: 'update',
      id: '7',
      address: `127.0.0.1:${client.port}`,
      at: expect.any(Number),
      status: bytes('b'),
      previous: bytes('a'),
    });
    // A different byte at the same length is a change too.
    await client.beat(port, 7n, { payload: bytes('c') });
    await until(() => log.of(7n).length === 3);
    expect(log.of(7n)[2]).toMatchObject({
      type: 'update',
      status: bytes('c'),
      previous: bytes('b'),
    });
  });

  it('refuses an oversize status and one past the budget, counts them, and keeps the host tracked', async () => {
    const { hw, port, log, client } = await fixture.start({
      engine,
      workers: 1,
      timeoutMs: 5000,
      maxStatusBytes: 64,
      statusBudgetBytes: 64,
    });
    await client.beat(port, 1n, { payload: Buffer.alloc(65, 1) });
    await client.beat(port, 2n, { payload: bytes('two') });
    await client.beat(port, 3n, { payload: bytes('three') });
    await client.beat(port, 4n, { payload: bytes('four') });
    await client.beat(port, 2n, { payload: Buffer.alloc(30, 2) });
    await until(() => log.events.filter((e) => e.type === 'up').length === 4);
    await until(() => hw.stats().received === 5 && hw.stats().eventsPending === 0);
    const stats = hw.stats();
    expect(stats.trackedHosts).toBe(4);
    expect(stats.hostsUp).toBe(4);
    expect(stats.statuses).toMatchObject({ hosts: 2, bytes: 64, oversize: 1, overBudget: 2 });
    expect((await hw.host('1'))?.status).toBeUndefined();
    expect((await hw.host('2'))?.status).toEqual(bytes('two'));
    expect((await hw.host('4'))?.status).toBeUndefined();
  });

  it('a host that restarts with a new status reports restart, then update', async () => {
    const { port, log, client } = await fixture.start({ engine, timeoutMs: 5000 });
    await client.beat(port, 5n, { incarnation: 1, payload: bytes('v1') });
    await log.waitFor(ofHost(5n, 'up'));
    await client.beat(port, 5n, { incarnation: 2, payload: bytes('v2') });
    await log.waitFor(ofHost(5n, 'update'));
    expect(log.of(5n).map((e) => e.type)).toEqual(['up', 'restart', 'update']);
    expect(log.of(5n)[2]).toMatchObject({ status: bytes('v2'), previous: bytes('v1') });
  });

  it('a recovered host carries its status in up; LEAVE, forget and remove free the status memory', async () => {
    const { hw, port, log, client } = await fixture.start({
      engine,
      timeoutMs: 150,
      forgetAfterMs: 300,
    });
    await client.beat(port, 1n, { payload: bytes('one') });
    await client.beat(port, 2n, { payload: bytes('two') });
    await client.beat(port, 3n, { payload: bytes('three') });
    await until(() => hw.stats().statuses.hosts === 3);
    expect(hw.stats().statuses.bytes).toBe(96);
    await client.beat(port, 1n, { leave: true });
    await log.waitFor(ofHost(1n, 'down'));
    expect((await hw.host('1'))?.status).toBeUndefined();
    expect(await hw.remove('2')).toBe(true);
    await until(() => hw.stats().statuses.hosts === 1);
    // Host 3 times out and keeps its status while down, then comes back with it.
    await log.waitFor(ofHost(3n, 'down'));
    expect((await hw.host('3'))?.status).toEqual(bytes('three'));
    await client.beat(port, 3n);
    const back = await log.waitFor<UpEvent>((e) => ofHost(3n, 'up')(e) && (e as UpEvent).recovered);
    expect(back.status).toEqual(bytes('three'));
    // Then it is forgotten, and its status with it.
    await until(() => hw.stats().trackedHosts === 0, 5000);
    expect(hw.stats().statuses).toMatchObject({ hosts: 0, bytes: 0 });
  });

  it('maxStatusBytes 0 ignores payloads', async () => {
    const { hw, port, log, client } = await fixture.start({
      engine,
      timeoutMs: 5000,
      maxStatusBytes: 0,
    });
    await client.beat(port, 7n, { payload: bytes('x') });
    await client.beat(port, 7n, { payload: bytes('y') });
    const up = await log.waitFor<UpEvent>(ofHost(7n, 'up'));
    await until(() => hw.stats().received === 2);
    await sleep(50);
    expect(up.status).toBeUndefined();
    expect(log.of(7n)).toHaveLength(1);
    expect(hw.stats().statuses).toMatchObject({ hosts: 0, oversize: 0 });
  });

  it('keeps each host its events in order across many hosts and status changes', async () => {
    const { port, log, client } = await fixture.start({ engine, timeoutMs: 5000, workers: 2 });
    const hosts = 50;
    for (let version = 0; version < 3; version++) {
      for (let id = 1; id <= hosts; id++) {
        await client.beat(port, BigInt(id), { payload: bytes(`host ${id} v${version}`) });
      }
    }
    await until(() => log.events.length === hosts * 3, 5000);
    for (let id = 1; id <= hosts; id++) {
      const seen = log.of(BigInt(id));
      expect(seen.map((e) => e.type)).toEqual(['up', 'update', 'update']);
      expect((seen[0] as UpEvent).status).toEqual(bytes(`host ${id} v0`));
      expect(seen[2]).toMatchObject({
        status: bytes(`host ${id} v2`),
        previous: bytes(`host ${id} v1`),
      });
    }
  });

  it('over TCP: statuses in frames, also larger than a datagram slot, split across writes', async () => {
    const { hw, log } = await fixture.start({
      engine,
      timeoutMs: 5000,
      maxStatusBytes: 8000,
      tcp: { port: 0 },
    });
    const tcpPort = (await hw.listen()).tcpPort as number;
    const socket = connect({ port: tcpPort, host: '127.0.0.1', noDelay: true });
    fixture.track({ close: async () => void socket.destroy() });
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    const big = Buffer.alloc(6000, 'z');
    const frames = Buffer.concat([
      encodeHeartbeat({
        hostId: 70n,
        incarnation: 1,
        seq: 0,
        intervalMs: 0,
        payload: bytes('small'),
      }),
      encodeHeartbeat({ hostId: 70n, incarnation: 1, seq: 1, intervalMs: 0, payload: big }),
      encodeHeartbeat({ hostId: 70n, incarnation: 1, seq: 2, intervalMs: 0 }),
      encodeHeartbeat({
        hostId: 70n,
        incarnation: 1,
        seq: 3,
        intervalMs: 0,
        payload: Buffer.alloc(8001),
      }),
    ]);
    // Byte by byte for the first frames, then the rest at once.
    for (let i = 0; i < 60; i++) socket.write(frames.subarray(i, i + 1));
    socket.write(frames.subarray(60));
    const update = await log.waitFor<UpdateEvent>(ofHost(70n, 'update'));
    expect((log.of(70n)[0] as UpEvent).status).toEqual(bytes('small'));
    expect(update.status).toEqual(big);
    expect(update.previous).toEqual(bytes('small'));
    await until(() => hw.stats().statuses.oversize === 1);
    expect((await hw.host('70'))?.status).toEqual(big);
  });

  it('rejects bad status options and queries with errors that name them', async () => {
    const { hw } = await fixture.start({ engine, timeoutMs: 5000 });
    expect(() => new Heartwatch({ engine, maxStatusBytes: 70000 })).toThrow(
      /maxStatusBytes.*0 to 65535/,
    );
    expect(() => new Heartwatch({ engine, statusBudgetBytes: -1 })).toThrow(/statusBudgetBytes/);
    expect(() => hw.host('abc')).toThrow(/host\(id\): expected a decimal u64/);
    await expect(hw.hosts({ statuses: 'yes' as unknown as boolean })).rejects.toThrow(
      /"statuses" must be a boolean/,
    );
  });
});

describe('HeartbeatSender#setStatus', () => {
  const fixture = new Fixture();
  afterEach(() => fixture.closeAll());

  /** A UDP socket that records the datagrams it gets. */
  async function wire(): Promise<{ port: number; datagrams: Buffer[] }> {
    const socket = createSocket('udp4');
    const datagrams: Buffer[] = [];
    socket.on('message', (msg) => datagrams.push(msg));
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
    fixture.track({ close: () => new Promise<void>((resolve) => socket.close(() => resolve())) });
    return { port: socket.address().port, datagrams };
  }

  it('sends a new status at once and on the next beats, then plain 28-byte beats until a refresh', async () => {
    const { port, datagrams } = await wire();
    const sender = fixture.track(
      new HeartbeatSender({
        server: `udp://127.0.0.1:${port}`,
        hostId: 9n,
        intervalMs: 20,
        jitter: 0,
        statusRefreshMs: 400,
      }),
    );
    sender.setStatus({ role: 'db', ready: true });
    await sender.start();
    await until(() => datagrams.length >= 8);
    const sizes = datagrams.slice(0, 8).map((d) => d.length);
    const json = Buffer.from('{"role":"db","ready":true}');
    expect(sizes.slice(0, 3)).toEqual([28 + json.length, 28 + json.length, 28 + json.length]);
    expect(sizes.slice(3)).toEqual([28, 28, 28, 28, 28]);
    expect(datagrams[0]?.subarray(28)).toEqual(json);
    // Setting the same bytes sends nothing more; a new status goes out at once.
    const before = datagrams.length;
    sender.setStatus({ role: 'db', ready: true });
    sender.setStatus('draining');
    await until(() => datagrams.length > before);
    expect(datagrams[before]?.subarray(28).toString()).toBe('draining');
    // The refresh: within statusRefreshMs a beat carries it again.
    const afterChange = datagrams.length + 3;
    await until(() => datagrams.slice(afterChange).some((d) => d.length > 28), 2000);
    expect(datagrams.slice(afterChange).some((d) => d.subarray(28).toString() === 'draining')).toBe(
      true,
    );
    await sender.close();
    await until(() => datagrams.at(-1)?.[3] === 1); // the LEAVE flag
    expect(datagrams.at(-1)?.length).toBe(28); // it carries no status
  });

  it('reaches the server as up with the status, then one update per change', async () => {
    const { hw, port, log } = await fixture.start({ engine: engines.at(-1), timeoutMs: 5000 });
    const sender = fixture.track(
      new HeartbeatSender({ server: `udp://127.0.0.1:${port}`, hostId: 11n, intervalMs: 20 }),
    );
    sender.setStatus(Buffer.from([1, 2, 3]));
    await sender.start();
    const up = await log.waitFor<UpEvent>(ofHost(11n, 'up'));
    expect(up.status).toEqual(Buffer.from([1, 2, 3]));
    sender.setStatus({ phase: 2 });
    const update = await log.waitFor<UpdateEvent>(ofHost(11n, 'update'));
    expect(JSON.parse(update.status.toString())).toEqual({ phase: 2 });
    expect(update.previous).toEqual(Buffer.from([1, 2, 3]));
    await sleep(100);
    expect(log.of(11n).map((e) => e.type)).toEqual(['up', 'update']);
    expect((await hw.host('11'))?.status?.toString()).toBe('{"phase":2}');
  });

  it('rejects empty, oversize and unserializable statuses, and mixing with a fixed payload', () => {
    const sender = new HeartbeatSender({ server: 'udp://127.0.0.1:9', hostId: 1n });
    expect(() => sender.setStatus('')).toThrow(/1 to 65479 bytes, got 0/);
    expect(() => sender.setStatus(Buffer.alloc(65480))).toThrow(/1 to 65479 bytes/);
    expect(() => sender.setStatus(undefined as unknown as object)).toThrow(/JSON-serializable/);
    const fixed = new HeartbeatSender({
      server: 'udp://127.0.0.1:9',
      hostId: 1n,
      payload: Buffer.from('x'),
    });
    expect(() => fixed.setStatus('y')).toThrow(/fixed "payload"/);
    expect(
      () => new HeartbeatSender({ server: 'udp://127.0.0.1:9', hostId: 1n, statusRefreshMs: -1 }),
    ).toThrow(/statusRefreshMs/);
  });
});
