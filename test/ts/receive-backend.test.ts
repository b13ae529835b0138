// Option receiveBackend: each backend receives heartbeats and junk into the right events and
// counters, listen() and stats() say which backend runs, 'auto' reads with io_uring (the figures
// in bench/README.md) or says why not, and the pure-TS engine says it reads with node:dgram. The seccomp case
// (io_uring refused) is test/native/uring_receiver_test.cc's.
import { createSocket, type Socket } from 'node:dgram';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { nativeEngineAvailable } from '../../lib/engine/native-engine.js';
import type { HostEvent } from '../../lib/events.js';
import { Heartwatch } from '../../lib/heartwatch.js';
import type { HeartwatchOptions } from '../../lib/options.js';
import { encodeHeartbeat } from '../../lib/protocol/wire-v1.js';

const open: Heartwatch[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((hw) => hw.close()));
});

function create(options: HeartwatchOptions): { hw: Heartwatch; events: HostEvent[] } {
  const hw = new Heartwatch({ host: '127.0.0.1', port: 0, cpus: null, receivers: 1, ...options });
  open.push(hw);
  const events: HostEvent[] = [];
  hw.on('events', (batch) => {
    events.push(...batch);
  });
  return { hw, events };
}

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

async function send(socket: Socket, port: number, datagrams: Uint8Array[]): Promise<void> {
  for (let i = 0; i < datagrams.length; i += 100) {
    await Promise.all(
      datagrams
        .slice(i, i + 100)
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

describe.runIf(nativeEngineAvailable())('receiveBackend (native engine)', () => {
  it.each(['recvmmsg', 'io_uring'] as const)(
    '%s: heartbeats and junk give the right events and counters',
    async (backend) => {
      const { hw, events } = create({ engine: 'native', receiveBackend: backend });
      const info = await hw.listen();
      expect(info.receiveBackend).toBe(backend);
      expect(info.receiveBackendFallback).toBeNull();
      const port = info.port;
      expect(hw.stats().receivers.map((r) => r.backend)).toEqual([backend]);
      const socket = createSocket('udp4');
      await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
      const beats = Array.from({ length: 300 }, (_, i) =>
        encodeHeartbeat({
          hostId: BigInt(i + 1),
          incarnation: 1,
          seq: 1,
          intervalMs: 0,
          leave: false,
        }),
      );
      const junk = [new Uint8Array([1, 2, 3]), new Uint8Array(28), new Uint8Array(4000)];
      await send(socket, port, [...beats, ...junk]);
      socket.close();
      await until(() => events.length === 300, '300 up events');
      await until(() => (hw.stats().receivers[0]?.received ?? 0) === 303, '303 received');
      expect(new Set(events.map((e) => e.type))).toEqual(new Set(['up']));
      expect(new Set(events.map((e) => e.id)).size).toBe(300);
      expect(hw.stats().receivers[0]?.malformed).toBe(3);
      expect(hw.stats().receivers[0]?.receiveErrors).toBe(0);
    },
    30_000,
  );

  it("'auto' reads with io_uring, or says why it fell back to recvmmsg", async () => {
    const { hw } = create({ engine: 'native', receivers: 2 });
    const info = await hw.listen();
    const backends = hw.stats().receivers.map((r) => r.backend);
    expect(backends).toEqual([info.receiveBackend, info.receiveBackend]);
    if (info.receiveBackend === 'io_uring') {
      expect(info.receiveBackendFallback).toBeNull();
    } else {
      expect(info.receiveBackend).toBe('recvmmsg');
      expect(info.receiveBackendFallback).toMatch(/^io_uring_\w+: E[A-Z]+$/);
    }
  });
});

describe('receiveBackend (pure-TS engine)', () => {
  it('reports node:dgram in listen() and stats', async () => {
    const { hw } = create({ engine: 'js' });
    const info = await hw.listen();
    expect(info.receiveBackend).toBe('node:dgram');
    expect(hw.stats().receivers[0]?.backend).toBe('node:dgram');
  });
});
