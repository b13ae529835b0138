// The behaviour both engines must share, over both transports. Every available engine runs this
// file unchanged over UDP and over TCP: real loopback sockets, ephemeral ports, short timeouts.
// Cases about datagrams themselves (their bytes, their batching, the UDP port) run over UDP only.
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { nativeEngineAvailable } from '../../lib/engine/native-engine.js';
import type { HeartwatchError } from '../../lib/errors.js';
import type { DownEvent, HostEvent, RestartEvent, UpEvent } from '../../lib/events.js';
import { Heartwatch } from '../../lib/heartwatch.js';
import { hostIdFromSource } from '../../lib/protocol/host-id.js';
import { encodeHeartbeat } from '../../lib/protocol/wire-v1.js';
import {
  engineVariants,
  Fixture,
  ownSocketCount,
  ownUdpSocketsOnPort,
  sleep,
  until,
} from './helpers/loopback.js';
import { PortThief } from './helpers/port-thief.js';

const engines: ('js' | 'native')[] = nativeEngineAvailable() ? ['js', 'native'] : ['js'];

/** Short enough to keep the suite quick, long enough for a loaded 2-core machine. */
const timeoutMs = 150;

const isUp = (id: bigint | string, recovered?: boolean) => (e: HostEvent) =>
  e.type === 'up' && e.id === String(id) && (recovered === undefined || e.recovered === recovered);
const isDown = (id: bigint | string, reason?: 'timeout' | 'left') => (e: HostEvent) =>
  e.type === 'down' && e.id === String(id) && (reason === undefined || e.reason === reason);

const variants = engineVariants(engines, { transports: ['udp', 'tcp'] });

describe.each(variants)('$engine engine ($receiveBackend) over $transport', (variant) => {
  const { engine, transport } = variant;
  const fixture = new Fixture(variant);
  afterEach(() => fixture.closeAll());
  /** A case about UDP datagrams or the UDP port by nature, with no TCP counterpart here. */
  const udpOnly = it.runIf(transport === 'udp');

  it('reports the engine it runs and an ephemeral port', async () => {
    const { hw, port } = await fixture.start({ engine, timeoutMs });
    expect(hw.engine).toBe(engine);
    expect(hw.stats().engine).toBe(engine);
    expect(port).toBeGreaterThan(0);
    expect(hw.stats().tcp === null).toBe(transport === 'udp');
  });

  it('emits up for a new host with its id, address, incarnation and receive time', async () => {
    const { port, log, client } = await fixture.start({ engine, timeoutMs: 5000 });
    const before = Date.now();
    await client.beat(port, 42n, { incarnation: 7 });
    const up = await log.waitFor<UpEvent>(isUp(42n));
    expect(up).toEqual({
      type: 'up',
      id: '42',
      address: `127.0.0.1:${client.port}`,
      at: expect.any(Number),
      recovered: false,
      incarnation: 7,
    });
    // The event clock is monotonic time mapped to the epoch; allow for drift against Date.now().
    expect(up.at).toBeGreaterThanOrEqual(before - 50);
    expect(up.at).toBeLessThanOrEqual(Date.now() + 50);
  });

  it('ids are decimal u64 strings, also above 2^53', async () => {
    const { port, log, client } = await fixture.start({ engine, timeoutMs: 5000 });
    const big = (1n << 64n) - 2n;
    await client.beat(port, big);
    const up = await log.waitFor(isUp(big));
    expect(up.id).toBe('18446744073709551614');
  });

  it.each([0, 3])(
    'declares silent hosts down by timeout, never before lastSeen + timeoutMs (missedBeats %i)',
    async (missedBeats) => {
      const { hw, port, log, client } = await fixture.start({ engine, timeoutMs, missedBeats });
      // Staggered deadlines, each pushed back by a second beat: a tick that expires one host
      // must take neither the next ones nor a re-armed one early.
      const ids = [1n, 2n, 3n, 4n, 5n, 6n];
      for (const seq of [0, 1]) {
        for (const id of ids) {
          await client.beat(port, id, { seq });
          await sleep(7);
        }
      }
      // Every beat applied, so each host's events are settled but for its last down.
      const applied = () => hw.stats().workers.reduce((n, w) => n + w.processed, 0);
      expect(await until(() => applied() === 2 * ids.length, 10_000)).toBe(true);
      for (const id of ids) {
        const up = await log.waitFor<UpEvent>(isUp(id));
        expect(await until(() => log.of(id).at(-1)?.type === 'down', 10_000)).toBe(true);
        // A loaded machine may delay a host's second beat past its deadline: it then goes down
        // and comes back before its last down. Both are right; no down may come early.
        const downs = log.of(id).filter((e): e is DownEvent => e.type === 'down');
        for (const down of downs) {
          expect(down.reason).toBe('timeout');
          expect(down.address).toBe(up.address);
          expect(down.at).toBeGreaterThanOrEqual(down.lastSeen + timeoutMs);
          // Detection is not held up: bounded generously for a busy CI machine.
          expect(down.at - down.lastSeen).toBeLessThan(timeoutMs + 5000);
        }
        // The second beat re-armed the deadline: the last down dates from it.
        expect(downs.at(-1)?.lastSeen).toBeGreaterThan(up.at);
      }
    },
  );

  it('keeps a host that beats more often than the timeout up', async () => {
    const { hw, port, log, client } = await fixture.start({
      engine,
      timeoutMs: 300,
      missedBeats: 0,
    });
    for (let seq = 0; seq < 15; seq++) {
      await client.beat(port, 5n, { seq });
      await sleep(30);
    }
    expect(log.of(5n).map((e) => e.type)).toEqual(['up']);
    expect(hw.stats().hostsUp).toBe(1);
  });

  it('brings a down host back with recovered: true', async () => {
    const { port, log, client } = await fixture.start({ engine, timeoutMs });
    await client.beat(port, 2n, { incarnation: 3 });
    await log.waitFor(isDown(2n, 'timeout'));
    await client.beat(port, 2n, { incarnation: 3, seq: 1 });
    const up = await log.waitFor<UpEvent>(isUp(2n, true));
    expect(up.incarnation).toBe(3);
    expect(log.of(2n).map((e) => e.type)).toEqual(['up', 'down', 'up']);
  });

  it('reports a host that sends LEAVE as down with reason left, once', async () => {
    const { hw, port, log, client } = await fixture.start({ engine, timeoutMs });
    await client.beat(port, 3n);
    await log.waitFor(isUp(3n));
    await client.beat(port, 3n, { seq: 1, leave: true });
    const down = await log.waitFor<DownEvent>(isDown(3n));
    expect(down.reason).toBe('left');
    expect(down.at).toBeGreaterThanOrEqual(down.lastSeen);
    // Its deadline passes with no second down.
    await sleep(timeoutMs * 2);
    expect(log.of(3n).map((e) => e.type)).toEqual(['up', 'down']);
    expect(hw.stats()).toMatchObject({ hostsUp: 0, hostsDown: 1, trackedHosts: 1 });
  });

  it('reports a new incarnation of an up host as restart, not down', async () => {
    const { port, log, client } = await fixture.start({ engine, timeoutMs: 5000 });
    await client.beat(port, 4n, { incarnation: 100 });
    await client.beat(port, 4n, { incarnation: 200 });
    const restart = await log.waitFor<RestartEvent>((e) => e.type === 'restart' && e.id === '4');
    expect(restart).toMatchObject({ incarnation: 200, previousIncarnation: 100 });
    expect(restart.address).toBe(`127.0.0.1:${client.port}`);
    expect(log.of(4n).map((e) => e.type)).toEqual(['up', 'restart']);
  });

  it('uses interval * missedBeats as a per-host timeout when the sender announces it', async () => {
    const { hw, port, log, client } = await fixture.start({
      engine,
      timeoutMs: 10_000,
      missedBeats: 2,
    });
    await client.beat(port, 10n, { intervalMs: 60 });
    await client.beat(port, 11n, { intervalMs: 0 });
    const down = await log.waitFor<DownEvent>(isDown(10n));
    expect(down.at).toBeGreaterThanOrEqual(down.lastSeen + 120);
    const hosts = await hw.hosts();
    expect(hosts.find((h) => h.id === '10')).toMatchObject({ state: 'down', timeoutMs: 120 });
    // Host 11 announced no interval: the configured 10 s applies, so it is still up.
    expect(hosts.find((h) => h.id === '11')).toMatchObject({ state: 'up', timeoutMs: 10_000 });
  });

  it('gives each down the timeout that applied to its host, as hosts() reports it', async () => {
    const { hw, port, log, client } = await fixture.start({ engine, timeoutMs, missedBeats: 2 });
    await client.beat(port, 15n, { intervalMs: 110 });
    await client.beat(port, 16n);
    // Long enough that its LEAVE comes first however loaded the machine.
    await client.beat(port, 17n, { intervalMs: 5000 });
    await log.waitFor(isUp(17n));
    await client.beat(port, 17n, { seq: 1, leave: true });
    const announced = await log.waitFor<DownEvent>(isDown(15n, 'timeout'));
    const fallback = await log.waitFor<DownEvent>(isDown(16n, 'timeout'));
    const left = await log.waitFor<DownEvent>(isDown(17n, 'left'));
    expect(announced.timeoutMs).toBe(220);
    expect(fallback.timeoutMs).toBe(timeoutMs);
    expect(left.timeoutMs).toBe(10_000);
    for (const down of [announced, fallback]) {
      expect(down.at).toBeGreaterThanOrEqual(down.lastSeen + down.timeoutMs);
    }
    const hosts = Object.fromEntries((await hw.hosts()).map((h) => [h.id, h.timeoutMs]));
    expect(hosts).toEqual({ '15': 220, '16': timeoutMs, '17': 10_000 });
  });

  it('counts heartbeats of one host id from another source than its last one', async () => {
    const { hw, port, log, client } = await fixture.start({ engine, timeoutMs: 5000 });
    const other = await fixture.client();
    await client.beat(port, 20n);
    await log.waitFor(isUp(20n));
    // A new host from the second source, and repeats from the same source, are no change.
    await other.beat(port, 21n);
    await other.beat(port, 21n, { seq: 1 });
    await log.waitFor(isUp(21n));
    expect(hw.stats()).toMatchObject({ addressChanges: 0 });
    expect(hw.stats().workers.every((w) => w.lastAddressChangeId === null)).toBe(true);
    // Host 20 heard from the two sources in alternation: every switch counts. Each is applied
    // before the next is sent: two TCP connections are not ordered with each other.
    for (const [seq, from] of [other, client, other].entries()) {
      await from.beat(port, 20n, { seq: seq + 1 });
      expect(await until(() => hw.stats().addressChanges === seq + 1)).toBe(true);
    }
    const worker = hw.stats().workers.find((w) => w.addressChanges > 0);
    expect(worker).toMatchObject({ addressChanges: 3, lastAddressChangeId: '20' });
    expect((await hw.host('20'))?.address).toBe(`127.0.0.1:${other.port}`);
    expect(log.of(20n).map((e) => e.type)).toEqual(['up']);
  });

  it('caps announced timeouts at the native 24-bit limit, 16 777 214 ms', async () => {
    const { hw, port, log, client } = await fixture.start({ engine, missedBeats: 1000 });
    // 2^32-1 ms * 1000 overflows no field: the cap applies, not a wrap-around.
    await client.beat(port, 12n, { intervalMs: 60_000 });
    await client.beat(port, 13n, { intervalMs: 2 ** 32 - 1 });
    await client.beat(port, 14n, { intervalMs: 16_777 });
    await log.waitFor(isUp(12n));
    await log.waitFor(isUp(13n));
    await log.waitFor(isUp(14n));
    const timeouts = Object.fromEntries((await hw.hosts()).map((h) => [h.id, h.timeoutMs]));
    expect(timeouts).toEqual({ '12': 16_777_214, '13': 16_777_214, '14': 16_777_000 });
  });

  it('follows a host whose announced interval shrinks', async () => {
    const { port, log, client } = await fixture.start({
      engine,
      timeoutMs: 10_000,
      missedBeats: 1,
    });
    await client.beat(port, 12n, { intervalMs: 5000 });
    await log.waitFor(isUp(12n));
    await client.beat(port, 12n, { seq: 1, intervalMs: 100 });
    const down = await log.waitFor<DownEvent>(isDown(12n));
    expect(down.at).toBeGreaterThanOrEqual(down.lastSeen + 100);
  });

  it('ignores announced intervals when missedBeats is 0', async () => {
    const { hw, port, log, client } = await fixture.start({ engine, timeoutMs, missedBeats: 0 });
    await client.beat(port, 13n, { intervalMs: 10_000 });
    await log.waitFor(isUp(13n));
    const [host] = await hw.hosts();
    expect(host?.timeoutMs).toBe(timeoutMs);
    await log.waitFor(isDown(13n, 'timeout'));
  });

  // Over TCP every frame must be v1 in every identity mode: other bytes close the connection.
  udpOnly('identity address: any datagram is a heartbeat of its source ip:port', async () => {
    const { hw, port, log, client } = await fixture.start({
      engine,
      timeoutMs,
      identity: 'address',
    });
    const other = await fixture.client();
    await client.send('ping', port);
    await other.send(Buffer.alloc(0), port);
    const id = hostIdFromSource('127.0.0.1', client.port, 'address');
    const otherId = hostIdFromSource('127.0.0.1', other.port, 'address');
    const up = await log.waitFor<UpEvent>(isUp(id));
    await log.waitFor(isUp(otherId));
    expect(up).toMatchObject({ address: `127.0.0.1:${client.port}`, incarnation: 0 });
    expect(id).toBe(BigInt(0x7f000001) * 65536n + BigInt(client.port));
    expect(hw.stats()).toMatchObject({ trackedHosts: 2, malformed: 0 });
    // A v1 datagram is still a heartbeat of its source, with its own fields honoured.
    await client.beat(port, 999n, { leave: true });
    const down = await log.waitFor<DownEvent>(isDown(id));
    expect(down.reason).toBe('left');
    expect(log.events.some((e) => e.id === '999')).toBe(false);
  });

  // Its second source sends a non-v1 datagram, which over TCP would close the connection.
  udpOnly('identity ip: every port of one IP is the same host', async () => {
    const { hw, port, log, client } = await fixture.start({
      engine,
      timeoutMs: 5000,
      identity: 'ip',
    });
    const other = await fixture.client();
    await client.send('a', port);
    await other.beat(port, 77n);
    const id = hostIdFromSource('127.0.0.1', 0, 'ip');
    expect(id).toBe(2130706433n);
    await log.waitFor(isUp(id));
    expect(await until(() => hw.stats().received === 2)).toBe(true);
    expect(hw.stats().trackedHosts).toBe(1);
    expect(log.events.filter((e) => e.type === 'up')).toHaveLength(1);
  });

  // Over TCP a malformed frame closes its connection: tcp-transport.test.ts covers that.
  udpOnly('counts malformed datagrams and drops them, keeping valid hosts', async () => {
    const { hw, port, log, client } = await fixture.start({ engine, timeoutMs: 5000 });
    const valid = encodeHeartbeat({ hostId: 21n, incarnation: 1, seq: 0, intervalMs: 0 });
    const variants: Buffer[] = [
      Buffer.alloc(0),
      valid.subarray(0, 27),
      Buffer.concat([valid, Buffer.from([0])]),
      Buffer.from('hello, heartwatch! this is not a heartbeat'),
    ];
    const corrupt = (offset: number, value: number): Buffer => {
      const copy = Buffer.from(valid);
      copy[offset] = value;
      return copy;
    };
    variants.push(corrupt(0, 0x49)); // magic
    variants.push(corrupt(2, 2)); // version
    variants.push(corrupt(3, 0x04)); // reserved flag bit
    variants.push(corrupt(25, 1)); // payload_len says 1, no payload
    variants.push(corrupt(27, 1)); // reserved field
    variants.push(
      encodeHeartbeat({ hostId: 21n, incarnation: 1, seq: 0, intervalMs: 0 }).fill(0, 4, 12),
    ); // host_id 0
    for (const datagram of variants) await client.send(datagram, port);
    await client.beat(port, 22n);
    await log.waitFor(isUp(22n));
    expect(await until(() => hw.stats().received === variants.length + 1)).toBe(true);
    const stats = hw.stats();
    expect(stats.malformed).toBe(variants.length);
    expect(stats.trackedHosts).toBe(1);
    expect(log.events.map((e) => e.id)).toEqual(['22']);
  });

  it.each(['id', 'address', 'ip'] as const)(
    'accepts valid heartbeats of every v1 payload size, fields and LEAVE included (identity %s)',
    async (identity) => {
      const { hw, port, log, arrived } = await fixture.start({
        engine,
        timeoutMs: 5000,
        identity,
      });
      // Up to the largest that fits one IPv4 datagram: 65,507 - 28 header bytes.
      const sizes = [0, 1472, 2021, 9000, 65_479];
      const since = (seen: number, match: (e: HostEvent) => boolean) => (e: HostEvent) =>
        log.events.indexOf(e) >= seen && match(e);
      for (const [i, size] of sizes.entries()) {
        const sender = await fixture.client();
        const hostId = 500n + BigInt(i);
        const id =
          identity === 'id' ? hostId : hostIdFromSource('127.0.0.1', sender.port, identity);
        const payload = Buffer.alloc(size, i + 1);
        const fields = { hostId, incarnation: 10 + i, intervalMs: 0, payload };
        let seen = log.events.length;
        await sender.send(encodeHeartbeat({ ...fields, seq: 0 }), port);
        const up = await log.waitFor<UpEvent>(since(seen, isUp(id)));
        expect(up.incarnation).toBe(10 + i);
        seen = log.events.length;
        await sender.send(encodeHeartbeat({ ...fields, seq: 1, leave: true }), port);
        await log.waitFor(since(seen, isDown(id, 'left')));
      }
      expect(arrived()).toBe(2 * sizes.length);
      expect(hw.stats().malformed).toBe(0);
    },
  );

  // About several datagrams in one receive batch; tcp-transport.test.ts reads coalesced frames.
  udpOnly('takes a burst of large heartbeats, several to a receive batch, all whole', async () => {
    const { hw, port, log, client } = await fixture.start({ engine, timeoutMs: 5000 });
    const payload = Buffer.alloc(9000, 7);
    const ids = Array.from({ length: 32 }, (_, i) => 600n + BigInt(i));
    await Promise.all(
      ids.map((hostId) =>
        client.send(
          encodeHeartbeat({ hostId, incarnation: 3, seq: 0, intervalMs: 0, payload }),
          port,
        ),
      ),
    );
    for (const id of ids) expect((await log.waitFor<UpEvent>(isUp(id))).incarnation).toBe(3);
    expect(hw.stats()).toMatchObject({ received: ids.length, malformed: 0 });
  });

  // Datagram counters: over TCP a frame that sets AUTH but has no tag takes the next frame's bytes.
  udpOnly('counts AUTH heartbeats as authUnsupported and drops them', async () => {
    const { hw, port, log, client } = await fixture.start({ engine, timeoutMs: 5000 });
    const header = encodeHeartbeat({ hostId: 31n, incarnation: 1, seq: 0, intervalMs: 0 });
    header[3] = 0x02;
    await client.send(Buffer.concat([header, Buffer.alloc(16, 0xab)]), port);
    // AUTH set but no tag: the length is wrong, so it is malformed.
    await client.send(header, port);
    await client.beat(port, 32n);
    await log.waitFor(isUp(32n));
    expect(await until(() => hw.stats().received === 3)).toBe(true);
    expect(hw.stats()).toMatchObject({ authUnsupported: 1, malformed: 1, trackedHosts: 1 });
  });

  it('refuses new hosts past maxHosts and counts them', async () => {
    const { hw, port, log, client, arrived } = await fixture.start({
      engine,
      timeoutMs: 5000,
      maxHosts: 3,
    });
    for (let id = 1n; id <= 5n; id++) await client.beat(port, id);
    expect(await until(() => arrived() === 5)).toBe(true);
    await log.waitFor(isUp(3n));
    expect(hw.stats()).toMatchObject({ trackedHosts: 3, refused: 2, hostsUp: 3 });
    expect(log.events.filter((e) => e.type === 'up').map((e) => e.id)).toEqual(['1', '2', '3']);
    // A tracked host still beats fine at the cap.
    await client.beat(port, 1n, { incarnation: 2 });
    await log.waitFor((e) => e.type === 'restart' && e.id === '1');
  });

  it('a flood of random host ids cannot lock new hosts out (default admission policy)', async () => {
    // One shard of 64 hosts, so the flood is quick; every other option is the default but the
    // timeout, long enough that the whole flood arrives while its first ids are still up.
    const { hw, port, log, client, arrived } = await fixture.start({
      engine,
      timeoutMs: 1000,
      maxHosts: 64,
      workers: 1,
    });
    const flood = Array.from({ length: 500 }, () => randomBytes(8).readBigUInt64BE() | 1n);
    for (const id of flood) await client.beat(port, id);
    // Arrivals count at the receiver; wait until the worker has applied every one as well.
    const applied = () => {
      const stats = hw.stats();
      return arrived() === flood.length && stats.trackedHosts + stats.refused === flood.length;
    };
    expect(await until(applied)).toBe(true);
    expect(hw.stats().trackedHosts).toBe(64);
    expect(hw.stats().refused).toBeGreaterThan(0);
    // Applied is not yet delivered: wait for the first up to reach JavaScript.
    const firstUp = (await log.waitFor((e) => e.type === 'up')).at;
    // The flood stops; a host first seen now beats as a sender does, until it is admitted.
    const newcomer = 7n;
    let admitted = false;
    const beating = (async () => {
      for (let seq = 0; !admitted && seq < 400; seq++) {
        await client.beat(port, newcomer, { seq });
        await sleep(25);
      }
    })();
    let up: UpEvent;
    try {
      up = await log.waitFor<UpEvent>(isUp(newcomer), 10_000);
    } finally {
      admitted = true;
      await beating;
    }
    expect(up.recovered).toBe(false);
    // Room was made by a host gone down, never by one still up: not before the first timed out.
    expect(up.at).toBeGreaterThanOrEqual(firstUp + 1000);
    expect(hw.stats().trackedHosts).toBeLessThanOrEqual(64);
    expect((await hw.hosts()).find((h) => h.id === '7')?.state).toBe('up');
  });

  it('forgets down hosts after forgetAfterMs, without an event', async () => {
    const { hw, port, log, client } = await fixture.start({
      engine,
      timeoutMs,
      forgetAfterMs: 100,
    });
    await client.beat(port, 41n);
    const down = await log.waitFor<DownEvent>(isDown(41n));
    expect(await until(() => hw.stats().trackedHosts === 0)).toBe(true);
    expect(await hw.hosts()).toEqual([]);
    expect(hw.stats()).toMatchObject({ hostsUp: 0, hostsDown: 0 });
    expect(log.of(41n)).toHaveLength(2);
    expect(Date.now() + 50).toBeGreaterThanOrEqual(down.at + 100);
    // Forgotten means new again.
    await client.beat(port, 41n, { seq: 1 });
    const up = await log.waitFor<UpEvent>((e) => isUp(41n)(e) && e.at > down.at);
    expect(up.recovered).toBe(false);
  });

  it('remove() forgets a host now, without an event', async () => {
    const { hw, port, log, client } = await fixture.start({ engine, timeoutMs });
    await client.beat(port, 51n);
    await log.waitFor(isUp(51n));
    expect(await hw.remove('51')).toBe(true);
    expect(await hw.remove('51')).toBe(false);
    expect(hw.stats()).toMatchObject({ trackedHosts: 0, hostsUp: 0 });
    await sleep(timeoutMs * 2);
    expect(log.of(51n).map((e) => e.type)).toEqual(['up']);
  });

  it('keeps stats fields present and consistent', async () => {
    const { hw, port, log, client, arrived } = await fixture.start({ engine, timeoutMs });
    await client.beat(port, 61n);
    await client.beat(port, 62n);
    // A malformed datagram is counted and dropped; over TCP junk would close the connection.
    const junk = transport === 'udp' ? 1 : 0;
    if (junk) await client.send('junk', port);
    await log.waitFor(isDown(61n));
    await log.waitFor(isDown(62n));
    await client.beat(port, 62n, { seq: 1 });
    await log.waitFor(isUp(62n, true));
    expect(await until(() => arrived() === 3 + junk)).toBe(true);
    const s = hw.stats();
    expect(s).toMatchObject({
      engine,
      received: transport === 'udp' ? 4 : 0,
      malformed: junk,
      authUnsupported: 0,
      ringDrops: 0,
      receiveErrors: 0,
      hostsUp: 1,
      hostsDown: 1,
      trackedHosts: 2,
      refused: 0,
      eventsPending: 0,
      eventsDelivered: log.events.length,
    });
    expect(s.kernelDrops).toBeGreaterThanOrEqual(0);
    expect(s.receivers.length).toBeGreaterThan(0);
    expect(s.workers.length).toBeGreaterThan(0);
    const sum = <T>(rows: T[], pick: (row: T) => number) => rows.reduce((a, r) => a + pick(r), 0);
    expect(sum(s.receivers, (r) => r.received)).toBe(s.received);
    expect(sum(s.receivers, (r) => r.malformed)).toBe(s.malformed);
    expect(sum(s.receivers, (r) => r.authUnsupported)).toBe(s.authUnsupported);
    expect(sum(s.receivers, (r) => r.kernelDrops)).toBe(s.kernelDrops);
    expect(sum(s.receivers, (r) => r.ringDrops)).toBe(s.ringDrops);
    expect(sum(s.receivers, (r) => r.receiveErrors)).toBe(s.receiveErrors);
    expect(sum(s.workers, (w) => w.hostsUp)).toBe(s.hostsUp);
    expect(sum(s.workers, (w) => w.hostsDown)).toBe(s.hostsDown);
    expect(sum(s.workers, (w) => w.trackedHosts)).toBe(s.trackedHosts);
    expect(sum(s.workers, (w) => w.refused)).toBe(s.refused);
    expect(sum(s.workers, (w) => w.eventsPending)).toBe(s.eventsPending);
    expect(sum(s.workers, (w) => w.processed)).toBe(3);
    expect(s.tcp?.frames ?? 0).toBe(transport === 'tcp' ? 3 : 0);
    expect(sum(s.tcp?.reactors ?? [], (r) => r.frames)).toBe(s.tcp?.frames ?? 0);
    for (const r of s.receivers) {
      expect(typeof r.thread).toBe('string');
      expect(r.cpu === null || Number.isInteger(r.cpu)).toBe(true);
      expect(r.recvBufferBytes).toBeGreaterThanOrEqual(4096);
    }
    for (const w of s.workers) {
      expect(typeof w.thread).toBe('string');
      expect(w.cpu === null || Number.isInteger(w.cpu)).toBe(true);
    }
  });

  it('hosts() returns a snapshot of every tracked host; hostsIterator() streams the same', async () => {
    const { hw, port, log, client } = await fixture.start({
      engine,
      timeoutMs: 5000,
      eventBatchSize: 2,
    });
    await client.beat(port, 71n, { incarnation: 9 });
    await client.beat(port, 72n);
    await client.beat(port, 73n);
    await client.beat(port, 73n, { seq: 1, leave: true });
    await log.waitFor(isDown(73n, 'left'));
    const hosts = await hw.hosts();
    const byId = new Map(hosts.map((h) => [h.id, h]));
    expect(hosts).toHaveLength(3);
    const up71 = log.events.find(isUp(71n)) as UpEvent;
    expect(byId.get('71')).toEqual({
      id: '71',
      address: `127.0.0.1:${client.port}`,
      state: 'up',
      lastSeen: up71.at,
      incarnation: 9,
      timeoutMs: 5000,
    });
    expect(byId.get('73')?.state).toBe('down');
    const streamed = [];
    for await (const batch of hw.hostsIterator()) {
      expect(batch.length).toBeGreaterThan(0);
      streamed.push(...batch);
    }
    expect(streamed.map((h) => h.id).sort()).toEqual(['71', '72', '73']);
  });

  it('an abandoned or slow hostsIterator() holds up neither hosts(), remove() nor new ones', async () => {
    const { hw, port, client } = await fixture.start({
      engine,
      timeoutMs: 5000,
      workers: 2,
      eventBatchSize: 2,
    });
    const ids = Array.from({ length: 20 }, (_, i) => 800n + BigInt(i));
    for (const id of ids) await client.beat(port, id);
    expect(await until(() => hw.stats().trackedHosts === ids.length)).toBe(true);
    const bounded = <T>(promise: Promise<T>): Promise<T | 'stuck'> =>
      Promise.race([promise, sleep(3000).then(() => 'stuck' as const)]);
    // One batch taken, never finished: as a slow consumer looks until it reads on, and as an
    // abandoned one looks for good.
    const abandoned = hw.hostsIterator()[Symbol.asyncIterator]();
    expect((await abandoned.next()).done).toBe(false);
    expect(await bounded(hw.hosts().then((hosts) => hosts.length))).toBe(ids.length);
    expect(await bounded(hw.remove('800'))).toBe(true);
    const streamed: string[] = [];
    const fresh = (async () => {
      for await (const batch of hw.hostsIterator()) streamed.push(...batch.map((h) => h.id));
      return streamed.length;
    })();
    expect(await bounded(fresh)).toBe(ids.length - 1);
    // Many at once, more than a worker's command ring holds: each gets every host once.
    const many = await bounded(Promise.all(Array.from({ length: 1100 }, () => hw.hosts())));
    expect(many === 'stuck' ? many : many.every((h) => h.length === ids.length - 1)).toBe(true);
  });

  it('delivers each host its events in order', async () => {
    const { port, log, client } = await fixture.start({ engine, timeoutMs });
    const ids = [81n, 82n, 83n, 84n];
    for (const id of ids) await client.beat(port, id, { incarnation: 1 });
    for (const id of ids) await log.waitFor(isDown(id, 'timeout'));
    for (const id of ids) await client.beat(port, id, { incarnation: 1, seq: 1 });
    for (const id of ids) await client.beat(port, id, { incarnation: 2, seq: 0 });
    for (const id of ids) await client.beat(port, id, { incarnation: 2, seq: 1, leave: true });
    for (const id of ids) await log.waitFor(isDown(id, 'left'));
    for (const id of ids) {
      expect(log.of(id).map((e) => (e.type === 'down' ? `down:${e.reason}` : e.type))).toEqual([
        'up',
        'down:timeout',
        'up',
        'restart',
        'down:left',
      ]);
    }
  });

  it("emits each batch as 'events' before the per-type events, within eventBatchSize", async () => {
    const { hw, port, log, client } = await fixture.start({
      engine,
      timeoutMs: 5000,
      eventBatchSize: 2,
    });
    const seen: string[] = [];
    hw.on('events', (batch) => seen.push(`batch:${batch.map((e) => e.id).join(',')}`));
    hw.on('up', (e) => seen.push(`up:${e.id}`));
    for (let id = 1n; id <= 5n; id++) await client.beat(port, id);
    await log.waitFor(isUp(5n));
    expect(log.batches.every((b) => b.length >= 1 && b.length <= 2)).toBe(true);
    const expected: string[] = [];
    for (const batch of log.batches) {
      expected.push(`batch:${batch.map((e) => e.id).join(',')}`, ...batch.map((e) => `up:${e.id}`));
    }
    expect(seen).toEqual(expected);
    expect(log.events.map((e) => e.id)).toEqual(['1', '2', '3', '4', '5']);
  });

  it('events() yields the same events as the listeners, and ends on close()', async () => {
    const { hw, port, log, client } = await fixture.start({ engine, timeoutMs });
    const iterated: HostEvent[] = [];
    const consumed = (async () => {
      for await (const e of hw.events()) iterated.push(e);
    })();
    await client.beat(port, 91n);
    await client.beat(port, 92n);
    await log.waitFor(isDown(91n));
    await log.waitFor(isDown(92n));
    await hw.close();
    await consumed;
    expect(iterated).toEqual(log.events);
    expect(iterated).toHaveLength(4);
  });

  it('pause() holds every event and, past eventRingCapacity held, expiry; resume() delivers them in order', async () => {
    const { hw, port, log, client } = await fixture.start({
      engine,
      timeoutMs,
      eventRingCapacity: 1024,
      receivers: 1,
      workers: 1,
    });
    hw.pause();
    expect(hw.isPaused()).toBe(true);
    const hosts = 1500;
    for (let id = 1; id <= hosts; id++) await client.beat(port, BigInt(id));
    expect(await until(() => hw.stats().trackedHosts === hosts)).toBe(true);
    // Every host is long past its timeout, but with more than eventRingCapacity events held the
    // engine declares none down: memory stays bounded by what heartbeats cause.
    await sleep(timeoutMs * 4);
    expect(log.events).toHaveLength(0);
    expect(hw.stats()).toMatchObject({ hostsUp: hosts, hostsDown: 0, eventsPending: hosts });

    hw.resume();
    expect(hw.isPaused()).toBe(false);
    expect(await until(() => log.events.length === 2 * hosts, 5000)).toBe(true);
    const ids = (type: string, from: number) =>
      log.events.slice(from, from + hosts).map((e) => (e.type === type ? Number(e.id) : -1));
    const inOrder = Array.from({ length: hosts }, (_, i) => i + 1);
    expect(ids('up', 0)).toEqual(inOrder);
    expect(ids('down', hosts).sort((a, b) => a - b)).toEqual(inOrder);
    expect(hw.stats()).toMatchObject({ hostsDown: hosts, eventsPending: 0 });
  });

  it('a listener that pauses stops delivery after its batch; the rest follows on resume()', async () => {
    const { hw, port, log, client } = await fixture.start({
      engine,
      timeoutMs: 5000,
      eventBatchSize: 10,
    });
    hw.once('events', () => hw.pause());
    for (let id = 1; id <= 100; id++) await client.beat(port, BigInt(id));
    expect(await until(() => hw.stats().trackedHosts === 100)).toBe(true);
    await sleep(50);
    expect(log.batches).toHaveLength(1);
    const held = hw.stats().eventsPending;
    expect(held + log.events.length).toBe(100);
    hw.resume();
    expect(await until(() => log.events.length === 100)).toBe(true);
    expect(log.events.map((e) => Number(e.id))).toEqual(
      Array.from({ length: 100 }, (_, i) => i + 1),
    );
  });

  it("turns a throwing listener into an 'error' event and keeps delivering", async () => {
    const { hw, port, log, client } = await fixture.start({ engine, timeoutMs: 5000 });
    const errors: Error[] = [];
    const alsoCalled: string[] = [];
    hw.on('error', (err) => errors.push(err));
    hw.on('up', (e) => {
      throw new Error(`listener failed on ${e.id}`);
    });
    hw.on('up', (e) => alsoCalled.push(e.id));
    await client.beat(port, 101n);
    await client.beat(port, 102n);
    await log.waitFor(isUp(102n));
    expect(errors.map((e) => e.message)).toEqual([
      'listener failed on 101',
      'listener failed on 102',
    ]);
    expect(alsoCalled).toEqual(['101', '102']);
    await client.beat(port, 101n, { incarnation: 5 });
    await log.waitFor((e) => e.type === 'restart' && e.id === '101');
  });

  // About the bind of the UDP port.
  udpOnly('rejects listen() with EADDRINUSE when the port is taken', async () => {
    const blocker = createSocket('udp4');
    fixture.track({
      close: () => new Promise<void>((resolve) => blocker.close(() => resolve())),
    });
    await new Promise<void>((resolve) => blocker.bind(0, '127.0.0.1', resolve));
    const hw = fixture.track(
      new Heartwatch({ engine, host: '127.0.0.1', port: blocker.address().port }),
    );
    const error = await hw.listen().then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toMatchObject({
      name: 'HeartwatchError',
      code: 'EADDRINUSE',
      syscall: 'bind',
    });
    expect(String((error as Error).message)).toContain(String(blocker.address().port));
  });

  // Pairs of (heartwatch's address, the newcomer's address) that overlap on one port.
  const overlapping: [string, string][] = [
    ['::', '::'],
    ['::', '127.0.0.1'],
    ['0.0.0.0', '127.0.0.1'],
    ['127.0.0.1', '127.0.0.1'],
    ['127.0.0.1', '0.0.0.0'],
  ];

  // Both are about the UDP port and its receivers' SO_REUSEPORT group.
  udpOnly.each([1, 2])(
    'a second Heartwatch on a port one holds gets EADDRINUSE, either engine (receivers %i)',
    async (receivers) => {
      for (const [first, second] of overlapping) {
        const { port } = await fixture.start({ engine, host: first, receivers });
        for (const other of engines) {
          const hw = fixture.track(
            new Heartwatch({ engine: other, host: second, port, receivers }),
          );
          const error = await hw.listen().then(
            () => `${other} on ${second} listened beside ${engine} on ${first}`,
            (e: unknown) => e,
          );
          expect(error).toMatchObject({ code: 'EADDRINUSE', syscall: 'bind' });
        }
        await fixture.closeAll();
      }
    },
  );

  udpOnly.each([1, 2])(
    "a same-user SO_REUSEPORT socket gets none of heartwatch's traffic (receivers %i)",
    async (receivers) => {
      // One receiver (and the pure-TS engine) binds without SO_REUSEPORT: the kernel refuses
      // the newcomer. Several receivers share the port in a reuseport group that steers every
      // datagram to its own sockets, and a newcomer is reported (see README "Ports").
      const shared = engine === 'native' && receivers > 1;
      for (const [first, second] of overlapping) {
        const { hw, port } = await fixture.start({ engine, host: first, receivers });
        const warnings: HeartwatchError[] = [];
        hw.on('warning', (w) => warnings.push(w));
        const { thief, outcome } = await PortThief.start(second, port);
        fixture.track(thief);
        if (!shared) {
          expect(`${first} then ${second}: ${outcome}`).toBe(
            `${first} then ${second}: refused EADDRINUSE`,
          );
        } else {
          expect(outcome).toBe('bound');
          expect(await until(() => warnings.some((w) => w.message.includes(`${port}`)))).toBe(true);
          expect(warnings[0]).toMatchObject({ code: 'ERR_HW_ENGINE_WARNING' });
          if (first === second) {
            const senders = await Promise.all(Array.from({ length: 32 }, () => fixture.client()));
            await Promise.all(senders.map((c, i) => c.beat(port, 700n + BigInt(i))));
            expect(await until(() => hw.stats().received === senders.length)).toBe(true);
            expect(await thief.stop()).toBe(0);
            // Steered by flow, not all to one receiver: 32 senders miss one of two by 2^-31.
            expect(hw.stats().receivers.every((r) => r.received > 0)).toBe(true);
          }
        }
        await fixture.closeAll();
      }
    },
  );

  it('close() is idempotent, also before listen()', async () => {
    const idle = new Heartwatch(fixture.options({ engine }));
    await Promise.all([idle.close(), idle.close()]);
    const { hw, port, log, client } = await fixture.start({ engine, timeoutMs: 5000 });
    await client.beat(port, 111n);
    await log.waitFor(isUp(111n));
    await hw.close();
    await hw.close();
    await client.beat(port, 112n);
    await sleep(50);
    expect(log.events.map((e) => e.id)).toEqual(['111']);
  });

  it('listen() after close() rejects with ERR_HW_CLOSED and starts nothing', async () => {
    const sockets = ownSocketCount();
    const early = new Heartwatch(fixture.options({ engine }));
    await early.close();
    await expect(early.listen()).rejects.toMatchObject({
      name: 'HeartwatchError',
      code: 'ERR_HW_CLOSED',
    });
    const late = new Heartwatch(fixture.options({ engine }));
    await late.listen();
    await late.close();
    await expect(late.listen()).rejects.toMatchObject({ code: 'ERR_HW_CLOSED' });
    expect(ownSocketCount()).toBe(sockets);
    expect(early.stats().receivers.every((r) => r.received === 0)).toBe(true);
  });

  // Counts UDP sockets on the port; the socket count above covers TCP's listener too.
  udpOnly('close() releases every socket before it resolves, cycle after cycle', async () => {
    const before = ownSocketCount();
    for (let cycle = 0; cycle < 20; cycle++) {
      const hw = new Heartwatch({ engine, host: '127.0.0.1', port: 0 });
      const { port } = await hw.listen();
      expect(ownUdpSocketsOnPort(port)).toBeGreaterThan(0);
      await hw.close();
      expect(ownUdpSocketsOnPort(port)).toBe(0);
    }
    expect(ownSocketCount()).toBeLessThanOrEqual(before);
  });

  // About the dual-stack bind of the UDP socket.
  udpOnly('listens dual-stack on "::" and shows IPv4 senders as plain IPv4', async () => {
    const { port, log } = await fixture.start({ engine, timeoutMs: 5000, host: '::' });
    const v4 = await fixture.client('127.0.0.1');
    await v4.beat(port, 121n);
    const up = await log.waitFor<UpEvent>(isUp(121n));
    expect(up.address).toBe(`127.0.0.1:${v4.port}`);
    const v6 = await fixture.client('::1');
    await v6.beat(port, 122n);
    const up6 = await log.waitFor<UpEvent>(isUp(122n));
    expect(up6.address).toBe(`[::1]:${v6.port}`);
  });
});
