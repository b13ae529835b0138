import { createSocket } from 'node:dgram';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { nativeEngineAvailable } from '../../lib/engine/native-engine.js';
import { HeartwatchError } from '../../lib/errors.js';
import type { UpdateEvent } from '../../lib/events.js';
import { Heartwatch } from '../../lib/heartwatch.js';
import {
  fleetSimulatorAvailable,
  type SimulateFleetOptions,
  simulateFleet,
} from '../../lib/simulator.js';
import { sleep } from './helpers/loopback.js';

const server = 'udp://127.0.0.1:7700';

describe('simulateFleet option checks (before the addon is touched)', () => {
  it.each<[string, unknown, RegExp]>([
    ['not an object', 5, /must be an object/],
    ['unknown key', { server, hosts: 1, packetsPerSecond: 1, rate: 5 }, /Unknown option "rate"/],
    [
      'server name',
      { server: 'udp://localhost:7700', hosts: 1, packetsPerSecond: 1 },
      /"server": expected 'udp:\/\/ip:port' with an IP address, got 'udp:\/\/localhost:7700'/,
    ],
    [
      'server port',
      { server: '127.0.0.1', hosts: 1, packetsPerSecond: 1 },
      /"server".*the port is missing/,
    ],
    [
      'hosts',
      { server, hosts: 0, packetsPerSecond: 1 },
      /"hosts": expected an integer from 1 to 16777216, got 0/,
    ],
    [
      'rate',
      { server, hosts: 1, packetsPerSecond: 0 },
      /"packetsPerSecond": expected a number above 0/,
    ],
    [
      'duration 0 without signal',
      { server, hosts: 1, packetsPerSecond: 1, durationMs: 0 },
      /"durationMs".*unless a signal/,
    ],
    [
      'first id',
      { server, hosts: 2, packetsPerSecond: 1, firstHostId: (1n << 64n) - 1n },
      /"firstHostId": expected a bigint from 1n to 18446744073709551614n/,
    ],
    [
      'kill range',
      { server, hosts: 10, packetsPerSecond: 1, kills: [{ hosts: 5, firstHost: 8, atMs: 0 }] },
      /"kills\[0\]": expected \{ hosts, firstHost\?, atMs \} covering hosts 0 to 9/,
    ],
    [
      'kill leave',
      { server, hosts: 10, packetsPerSecond: 1, kills: [{ hosts: 1, atMs: 0, leave: 1 }] },
      /"kills\[0\]\.leave": expected a boolean, got 1/,
    ],
    [
      'restart key',
      { server, hosts: 10, packetsPerSecond: 1, restarts: [{ hosts: 1, atMs: 0, leave: true }] },
      /"restarts\[0\]": expected \{ hosts, firstHost\?, atMs \}/,
    ],
    [
      'long gap',
      { server, hosts: 1, packetsPerSecond: 1, longGapMs: 0 },
      /"longGapMs": expected an integer from 1 to 4294967295, got 0/,
    ],
    [
      'status stride',
      { server, hosts: 1, packetsPerSecond: 1, statusHostStride: 0 },
      /"statusHostStride": expected an integer from 1 to 16777216, got 0/,
    ],
    [
      'status bytes',
      { server, hosts: 1, packetsPerSecond: 1, statusHostStride: 10, statusBytes: 11 },
      /"statusBytes": expected an integer from 12 to 65479, got 11/,
    ],
    [
      'status bytes with a key',
      {
        server,
        hosts: 1,
        packetsPerSecond: 1,
        statusHostStride: 10,
        statusBytes: 65_479,
        key: new Uint8Array(16),
      },
      /"statusBytes": expected an integer from 12 to 65463, got 65479/,
    ],
    [
      'status change',
      { server, hosts: 1, packetsPerSecond: 1, statusHostStride: 10, statusChangeEvery: 0 },
      /"statusChangeEvery": expected an integer from 1 to 4294967295, got 0/,
    ],
    [
      'status without stride',
      { server, hosts: 1, packetsPerSecond: 1, statusBytes: 64 },
      /"statusBytes": expected to be left out unless "statusHostStride" is set, got 64/,
    ],
    [
      'status with payload',
      { server, hosts: 1, packetsPerSecond: 1, statusHostStride: 2, payloadBytes: 8 },
      /"payloadBytes": expected 0 when "statusHostStride" is set .*, got 8/,
    ],
    [
      'cpu',
      { server, hosts: 1, packetsPerSecond: 1, cpu: 4096 },
      /"cpu": expected a CPU this process may run on \(/,
    ],
  ])('%s', async (_label, options, message) => {
    const error = await simulateFleet(options as SimulateFleetOptions).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(error).toBeInstanceOf(HeartwatchError);
    expect((error as HeartwatchError).code).toBe('ERR_HW_INVALID_OPTION');
    expect((error as HeartwatchError).message).toMatch(message);
  });
});

describe.runIf(fleetSimulatorAvailable())('simulateFleet against a bare UDP socket', () => {
  async function listen(): Promise<{ port: number; datagrams: Buffer[]; close(): void }> {
    const socket = createSocket('udp4');
    const datagrams: Buffer[] = [];
    socket.on('message', (msg) => datagrams.push(msg));
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    return { port: (socket.address() as AddressInfo).port, datagrams, close: () => socket.close() };
  }

  it('sends what it reports, with the announced interval and a LEAVE per graceful kill', async () => {
    const sink = await listen();
    try {
      const before = performance.now();
      const report = await simulateFleet({
        server: `127.0.0.1:${sink.port}`,
        hosts: 10,
        packetsPerSecond: 200,
        durationMs: 400,
        firstHostId: 100n,
        kills: [{ firstHost: 0, hosts: 2, atMs: 100, leave: true }],
      });
      await sleep(50);
      expect(report.packetsSent).toBe(sink.datagrams.length);
      expect(report.leavesSent).toBe(2);
      expect(report.sendErrors).toBe(0);
      expect(report.startedAt).toBeGreaterThanOrEqual(before - 1);
      expect(report.startedAt).toBeLessThanOrEqual(performance.now());
      expect(report.kills[0]?.at).toBeGreaterThanOrEqual(report.startedAt + 100);
      const ids = new Set<bigint>();
      const leaves: bigint[] = [];
      for (const d of sink.datagrams) {
        expect(d.length).toBe(28);
        ids.add(d.readBigUInt64BE(4));
        // 10 hosts at 200/s: every host beats each 50 ms, and says so.
        expect(d.readUInt32BE(20)).toBe(50);
        if (d[3] === 1) leaves.push(d.readBigUInt64BE(4));
      }
      expect([...ids].sort()).toEqual(Array.from({ length: 10 }, (_, i) => 100n + BigInt(i)));
      expect(leaves.sort()).toEqual([100n, 101n]);
    } finally {
      sink.close();
    }
  });

  it('reports the hosts it left silent longer than longGapMs, and only with it', async () => {
    const sink = await listen();
    try {
      // 20 hosts at 1000/s: each beats every 20 ms; hosts 4-5 are silent from 100 ms to 500 ms,
      // host 10 from 200 ms to the end.
      const plan = {
        server: `127.0.0.1:${sink.port}`,
        hosts: 20,
        packetsPerSecond: 1000,
        durationMs: 700,
        kills: [
          { firstHost: 4, hosts: 2, atMs: 100 },
          { firstHost: 10, hosts: 1, atMs: 200 },
        ],
        restarts: [{ firstHost: 4, hosts: 2, atMs: 500 }],
      };
      const report = await simulateFleet({ ...plan, longGapMs: 300 });
      const kill = report.kills[0]?.at ?? Number.NaN;
      const restart = report.restartsAt[0] ?? Number.NaN;
      const end = report.startedAt + report.elapsedMs;
      expect(report.longGaps.map((g) => g.host)).toEqual([4, 5, 10]);
      for (const gap of report.longGaps.slice(0, 2)) {
        expect(gap.gapMs).toBeGreaterThanOrEqual(restart - kill);
        expect(gap.endedAt).toBeGreaterThanOrEqual(restart);
        expect(gap.endedAt).toBeLessThanOrEqual(end);
      }
      const silent = report.longGaps[2];
      expect(silent?.endedAt).toBeCloseTo(end, 1);
      expect(silent?.gapMs).toBeCloseTo(end - (report.kills[1]?.lastSendAt[0] ?? Number.NaN), 1);
      expect((await simulateFleet(plan)).longGaps).toEqual([]);
    } finally {
      sink.close();
    }
  });

  it('runs until the signal aborts when durationMs is 0', async () => {
    const sink = await listen();
    try {
      const controller = new AbortController();
      const run = simulateFleet({
        server: `udp://127.0.0.1:${sink.port}`,
        hosts: 5,
        packetsPerSecond: 100,
        durationMs: 0,
        signal: controller.signal,
      });
      await sleep(200);
      controller.abort();
      const report = await run;
      expect(report.stoppedEarly).toBe(true);
      expect(report.elapsedMs).toBeGreaterThanOrEqual(150);
      expect(report.elapsedMs).toBeLessThan(2000);
    } finally {
      sink.close();
    }
  });
});

describe.runIf(fleetSimulatorAvailable() && nativeEngineAvailable())(
  'simulateFleet with statuses against the native engine',
  () => {
    it('gives exactly the update events its schedule says: 10 of 100 hosts, a change every 5th beat', async () => {
      const hw = new Heartwatch({
        engine: 'native',
        host: '127.0.0.1',
        port: 0,
        timeoutMs: 10_000,
        missedBeats: 0,
        cpus: null,
      });
      const ups = new Map<string, number>();
      const updates = new Map<string, UpdateEvent[]>();
      hw.on('up', (e) => ups.set(e.id, (ups.get(e.id) ?? 0) + 1));
      hw.on('update', (e) => updates.set(e.id, [...(updates.get(e.id) ?? []), e]));
      try {
        const { port } = await hw.listen();
        const firstHostId = 1000n;
        const report = await simulateFleet({
          server: `127.0.0.1:${port}`,
          hosts: 100,
          packetsPerSecond: 2000,
          durationMs: 1000,
          intervalMs: 0,
          firstHostId,
          statusHostStride: 10,
          statusBytes: 64,
          statusChangeEvery: 5,
        });
        const deadline = performance.now() + 5000;
        while (hw.stats().received < report.packetsSent && performance.now() < deadline) {
          await sleep(20);
        }
        await sleep(100);
        expect(report.sendErrors).toBe(0);
        expect(hw.stats().received).toBe(report.packetsSent);
        expect(ups.size).toBe(100);
        expect([...ups.values()].every((n) => n === 1)).toBe(true);
        // Slot k goes to a shuffled host k mod 100, so each host sent floor(P / 100) or one more.
        const fewest = Math.floor(report.packetsSent / 100);
        let total = 0;
        for (let index = 0; index < 100; index++) {
          const id = String(firstHostId + BigInt(index));
          const seen = updates.get(id) ?? [];
          const snapshot = await hw.host(id);
          if (index % 10 !== 0) {
            expect(seen).toEqual([]);
            expect(snapshot?.status).toBeUndefined();
            continue;
          }
          const offset = (index / 10) % 5;
          const least = Math.floor((fewest - 1 + offset) / 5);
          expect(seen.length).toBeGreaterThanOrEqual(least);
          expect(seen.length).toBeLessThanOrEqual(Math.floor((fewest + offset) / 5));
          // Each update carries the next change count of this host's stamp, after the previous one.
          seen.forEach((e, k) => {
            expect(e.status.length).toBe(64);
            expect(e.status.readBigUInt64BE(0)).toBe(firstHostId + BigInt(index));
            expect(e.status.readUInt32BE(8)).toBe(k + 1);
            expect(e.previous?.readUInt32BE(8)).toBe(k);
          });
          expect(snapshot?.status).toEqual(seen.at(-1)?.status);
          total += seen.length;
        }
        expect(total).toBeGreaterThanOrEqual(30);
      } finally {
        await hw.close();
      }
    });
  },
);
