// The native pipeline under the conditions the conformance suite does not reach: a mass failure
// while the event loop is blocked, floods of bad datagrams, close under load, process exit and
// worker threads with live engine threads, and system errors raised before any thread starts.
import { spawnSync } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { nativeEngineAvailable } from '../../lib/engine/native-engine.js';
import type { HostEvent } from '../../lib/events.js';
import { Heartwatch } from '../../lib/heartwatch.js';
import { loadNative } from '../../lib/native/binding.js';
import type { HeartwatchOptions } from '../../lib/options.js';
import { encodeHeartbeat } from '../../lib/protocol/wire-v1.js';

const root = path.join(__dirname, '..', '..');
const open: Heartwatch[] = [];

afterEach(async () => {
  await Promise.all(open.splice(0).map((hw) => hw.close()));
});

async function start(
  options: HeartwatchOptions,
): Promise<{ hw: Heartwatch; port: number; events: HostEvent[] }> {
  const hw = new Heartwatch({
    engine: 'native',
    host: '127.0.0.1',
    port: 0,
    cpus: null,
    ...options,
  });
  open.push(hw);
  const events: HostEvent[] = [];
  hw.on('events', (batch) => {
    events.push(...batch);
  });
  const { port } = await hw.listen();
  return { hw, port, events };
}

function udpClient(): Promise<Socket> {
  const socket = createSocket('udp4');
  return new Promise((resolve) => socket.bind(0, '127.0.0.1', () => resolve(socket)));
}

/** Sends datagrams paced in small bursts, so loopback never overruns the socket buffer. */
async function sendAll(socket: Socket, port: number, datagrams: Uint8Array[]): Promise<void> {
  for (let i = 0; i < datagrams.length; i += 256) {
    await Promise.all(
      datagrams
        .slice(i, i + 256)
        .map(
          (d) =>
            new Promise<void>((resolve, reject) =>
              socket.send(d, port, '127.0.0.1', (err) => (err ? reject(err) : resolve())),
            ),
        ),
    );
    await sleep(1);
  }
}

async function until(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

function beat(hostId: bigint, extra: { leave?: boolean; incarnation?: number } = {}): Buffer {
  return encodeHeartbeat({
    hostId,
    incarnation: extra.incarnation ?? 7,
    seq: 1,
    intervalMs: 0,
    leave: extra.leave ?? false,
  });
}

/** Both UDP receive backends pass the same pipeline tests. */
const backends = ['recvmmsg', 'io_uring'] as const;

describe.runIf(nativeEngineAvailable()).each(backends)('native pipeline (%s)', (receiveBackend) => {
  it('loses no event of a mass failure while the event loop is blocked', async () => {
    const hosts = 20_000;
    // Long enough that every up arrives before the first down on a loaded machine (at 300 ms,
    // sending 20,000 datagrams on a busy 2-core box let downs in before the last up; 2000 ms
    // left little to spare at a load average of 14).
    const timeoutMs = 3000;
    // Tiny event rings force the overflow and expiry-pause paths.
    const { hw, port, events } = await start({
      receiveBackend,
      timeoutMs,
      missedBeats: 0,
      workers: 2,
      receivers: 1,
      eventRingCapacity: 1024,
      eventBatchSize: 128,
    });
    const client = await udpClient();
    const datagrams = Array.from({ length: hosts }, (_, i) => beat(BigInt(i + 1)));
    await sendAll(client, port, datagrams);
    client.close();
    // Bounds for a loaded machine: they only cap how long a failure takes to show.
    await until(() => hw.stats().trackedHosts === hosts, 30_000, 'every host to be tracked');
    await until(() => events.length >= hosts, 30_000, 'every up event');
    expect(events.filter((e) => e.type === 'down')).toEqual([]);

    // Block the JS thread well past every host's deadline.
    const blockedUntil = Date.now() + timeoutMs + 1_000;
    while (Date.now() < blockedUntil) {
      /* busy: no event can be delivered now */
    }
    expect(hw.stats().eventsPending).toBeGreaterThan(0);

    await until(() => events.length >= 2 * hosts, 30_000, 'every down event');
    await sleep(50);
    expect(events.length).toBe(2 * hosts);
    const seen = new Map<string, HostEvent[]>();
    for (const event of events) seen.set(event.id, [...(seen.get(event.id) ?? []), event]);
    expect(seen.size).toBe(hosts);
    for (const [, list] of seen) {
      expect(list.map((e) => e.type)).toEqual(['up', 'down']);
      const down = list[1];
      if (down?.type !== 'down') throw new Error('expected down');
      expect(down.reason).toBe('timeout');
      expect(down.at).toBeGreaterThanOrEqual(down.lastSeen + timeoutMs - 1);
    }
    const stats = hw.stats();
    expect(stats.eventsPending).toBe(0);
    expect(stats.eventsDelivered).toBe(2 * hosts);
    expect(stats.hostsDown).toBe(hosts);
    expect(stats.ringDrops).toBe(0);
  }, 120_000);

  it('counts every malformed datagram in a flood and tracks the valid hosts exactly', async () => {
    const { hw, port } = await start({
      receiveBackend,
      timeoutMs: 60_000,
      workers: 2,
      receivers: 2,
    });
    const valid = Array.from({ length: 2_000 }, (_, i) => beat(BigInt(1_000_000 + i)));
    const bad: Uint8Array[] = [];
    let seed = 12345;
    const random = (): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed;
    };
    for (let i = 0; i < 3_000; i++) {
      const kind = i % 6;
      const good = beat(BigInt(5_000_000 + i));
      if (kind === 0)
        bad.push(good.subarray(0, random() % 28)); // truncated header
      else if (kind === 1)
        bad.push(Buffer.concat([good, Buffer.from([random() & 0xff])])); // trailing byte
      else if (kind === 2)
        bad.push(Buffer.from(good).fill(0x00, 0, 1)); // wrong magic
      else if (kind === 3)
        bad.push(Buffer.from(good).fill(2, 2, 3)); // wrong version
      else if (kind === 4)
        bad.push(Buffer.from(good).fill(0x80, 3, 4)); // reserved flag bit
      else bad.push(Buffer.from(good).fill(0, 4, 12)); // host_id 0
    }
    const mixed: Uint8Array[] = [];
    for (let i = 0; i < bad.length; i++) {
      mixed.push(bad[i] as Uint8Array);
      if (i < valid.length) mixed.push(valid[i] as Uint8Array);
    }
    const client = await udpClient();
    await sendAll(client, port, mixed);
    client.close();
    const total = bad.length + valid.length;
    await until(() => hw.stats().received === total, 5_000, 'every datagram');
    await until(() => hw.stats().trackedHosts === valid.length, 5_000, 'the valid hosts');
    const stats = hw.stats();
    expect(stats.malformed).toBe(bad.length);
    expect(stats.kernelDrops).toBe(0);
    expect(stats.hostsUp).toBe(valid.length);
    const ids = new Set((await hw.hosts()).map((h) => h.id));
    expect(ids.size).toBe(valid.length);
    for (let i = 0; i < valid.length; i++) expect(ids.has(String(1_000_000 + i))).toBe(true);
  }, 30_000);

  it('closes cleanly while heartbeats are still arriving', async () => {
    const { hw, port, events } = await start({
      receiveBackend,
      timeoutMs: 5_000,
      receivers: 2,
      workers: 2,
    });
    const client = await udpClient();
    let sending = true;
    const blaster = (async () => {
      let id = 1n;
      while (sending) {
        await Promise.all(
          Array.from(
            { length: 200 },
            () =>
              new Promise<void>((resolve) =>
                client.send(beat(id++), port, '127.0.0.1', () => resolve()),
              ),
          ),
        );
        await sleep(0);
      }
    })();
    await until(() => events.length > 1_000, 5_000, 'load');
    await hw.close();
    const afterClose = events.length;
    expect(hw.stats().eventsPending).toBe(0);
    await sleep(100);
    expect(events.length).toBe(afterClose);
    sending = false;
    await blaster;
    client.close();
    await hw.close();
  }, 20_000);

  it('lets the process exit while engine threads run, with no crash', () => {
    const script = `
      const { Heartwatch } = require('./dist/index.js');
      const hw = new Heartwatch({ engine: 'native', host: '127.0.0.1', port: 0, receivers: 2, workers: 2 });
      hw.listen().then(() => process.exit(0));`;
    const result = spawnSync(process.execPath, ['-e', script], { cwd: root, timeout: 10_000 });
    expect(result.signal).toBeNull();
    expect(result.status).toBe(0);
  });

  it('runs inside a worker thread and is torn down with it', async () => {
    const source = `
      const { parentPort } = require('node:worker_threads');
      const dgram = require('node:dgram');
      const { Heartwatch, encodeHeartbeat } = require(${JSON.stringify(path.join(root, 'dist', 'index.js'))});
      const hw = new Heartwatch({ engine: 'native', host: '127.0.0.1', port: 0, cpus: null, receivers: 1, workers: 1 });
      hw.on('up', (e) => parentPort.postMessage({ up: e.id }));
      hw.listen().then(({ port }) => {
        const s = dgram.createSocket('udp4');
        s.send(encodeHeartbeat({ hostId: 42n, incarnation: 1, seq: 0, intervalMs: 0 }), port, '127.0.0.1', () => s.close());
      });`;
    for (let round = 0; round < 3; round++) {
      const worker = new Worker(source, { eval: true });
      const message = await new Promise<{ up: string }>((resolve, reject) => {
        worker.once('message', resolve);
        worker.once('error', reject);
      });
      expect(message.up).toBe('42');
      // terminate() without close(): the environment cleanup hook must stop the threads.
      await worker.terminate();
    }
  }, 30_000);

  it('reports system errors by errno name before any thread starts', () => {
    const load = loadNative();
    if (!load.ok) throw load.error;
    const NativeEngineHandle = (
      load.binding as unknown as { NativeEngineHandle: new (c: object, w: () => void) => unknown }
    ).NativeEngineHandle;
    const base = {
      host: '127.0.0.1',
      port: 0,
      receivers: 1,
      workers: 1,
      cpus: [] as number[],
      identity: 0,
      timeoutMs: 1000,
      missedBeats: 0,
      maxHosts: 1000,
      forgetAfterMs: 0,
      maxStatusBytes: 0,
      statusBudgetBytes: 0,
      expiry: 0,
      batchSize: 64,
      recvBufferBytes: 1 << 20,
      receiveBackend: 0,
      ringCapacity: 1024,
      eventRingCapacity: 1024,
      spin: false,
      authKeys: [],
      authRequired: false,
      allow: [],
    };
    const attempt = (config: object): { code?: string; syscall?: string } => {
      try {
        new NativeEngineHandle({ ...base, ...config }, () => {});
      } catch (error) {
        return error as { code?: string; syscall?: string };
      }
      throw new Error('expected the engine to refuse the configuration');
    };
    expect(attempt({ cpus: [4000] })).toMatchObject({
      code: 'EINVAL',
      syscall: 'sched_setaffinity',
    });
    expect(attempt({ host: '192.0.2.1' })).toMatchObject({
      code: 'EADDRNOTAVAIL',
      syscall: 'bind',
    });
  });
});
