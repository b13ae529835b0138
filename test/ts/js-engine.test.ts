import { afterEach, describe, expect, it } from 'vitest';
import type { Engine, EngineSink } from '../../lib/engine/engine.js';
import { createJsEngine } from '../../lib/engine/js-engine.js';
import type { DownEvent, HostEvent } from '../../lib/events.js';
import { type HeartwatchOptions, resolveOptions } from '../../lib/options.js';
import { LoopbackClient, until } from './helpers/loopback.js';

/** Every sink made in the running test: none may have been told of an error. */
const recorders: Recorder[] = [];

/** A sink that records batches, and the engine feeding it. */
class Recorder implements EngineSink {
  readonly batches: HostEvent[][] = [];
  readonly warnings: string[] = [];
  readonly errors: Error[] = [];
  onBatch: ((batch: HostEvent[]) => void) | undefined;

  constructor() {
    recorders.push(this);
  }

  events(batch: HostEvent[]): void {
    this.batches.push([...batch]);
    this.onBatch?.(batch);
  }

  warning(message: string): void {
    this.warnings.push(message);
  }

  error(error: Error): void {
    this.errors.push(error);
  }

  get all(): HostEvent[] {
    return this.batches.flat();
  }
}

const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((thing) => thing.close()));
  // The pure-TS engine has no part that can stop on its own (a native receiver thread can).
  expect(recorders.splice(0).flatMap((sink) => sink.errors)).toEqual([]);
});

async function startEngine(
  options: HeartwatchOptions,
): Promise<{ engine: Engine; sink: Recorder; port: number; client: LoopbackClient }> {
  const sink = new Recorder();
  const engine = createJsEngine(
    resolveOptions({ engine: 'js', host: '127.0.0.1', port: 0, ...options }),
    sink,
  );
  open.push(engine);
  const { port } = await engine.listen();
  const client = await LoopbackClient.open();
  open.push(client);
  return { engine, sink, port, client };
}

function busyWait(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // Blocks the event loop on purpose: heartbeats and timers queue up meanwhile.
  }
}

describe('pure-TS engine', () => {
  it('delivers a mass failure completely, in batches of eventBatchSize, never early', async () => {
    const hosts = 3000;
    const timeoutMs = 200;
    const { engine, sink, port, client } = await startEngine({
      timeoutMs,
      missedBeats: 0,
      eventBatchSize: 256,
    });
    for (let id = 1; id <= hosts; id++) await client.beat(port, BigInt(id));
    expect(await until(() => engine.stats().trackedHosts === hosts, 10_000)).toBe(true);
    // The JS thread stalls past every deadline: nothing may be lost when it wakes.
    busyWait(timeoutMs * 2);
    expect(await until(() => engine.stats().hostsDown === hosts, 10_000)).toBe(true);
    expect(await until(() => engine.stats().eventsPending === 0)).toBe(true);
    const downs = sink.all.filter((e): e is DownEvent => e.type === 'down');
    expect(new Set(downs.map((e) => e.id)).size).toBe(hosts);
    expect(downs).toHaveLength(hosts);
    for (const down of downs) expect(down.at).toBeGreaterThanOrEqual(down.lastSeen + timeoutMs);
    expect(sink.batches.every((b) => b.length > 0 && b.length <= 256)).toBe(true);
    expect(engine.stats().eventsDelivered).toBe(2 * hosts);
  });

  it('honours per-host timeouts that grow and shrink, for many hosts at once', async () => {
    const { sink, port, client, engine } = await startEngine({ timeoutMs: 60_000, missedBeats: 1 });
    let seed = 7;
    const random = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const lastInterval = new Map<string, number>();
    const hosts = 100;
    for (let round = 0; round < 3; round++) {
      for (let id = 1; id <= hosts; id++) {
        const intervalMs = 300 + random(500);
        await client.beat(port, BigInt(id), { seq: round, intervalMs });
        lastInterval.set(String(id), intervalMs);
      }
    }
    const settled = () => engine.stats().hostsDown === hosts && engine.stats().eventsPending === 0;
    expect(await until(settled, 10_000)).toBe(true);
    // The last down of each host follows its last beat, whose interval set the timeout.
    const lastDown = new Map<string, DownEvent>();
    for (const e of sink.all) if (e.type === 'down') lastDown.set(e.id, e);
    expect(lastDown.size).toBe(hosts);
    for (const [id, down] of lastDown) {
      expect(down.at).toBeGreaterThanOrEqual(down.lastSeen + (lastInterval.get(id) as number));
      expect(down.at).toBeLessThan(down.lastSeen + (lastInterval.get(id) as number) + 1000);
    }
  });

  it('streams hosts() in batches of eventBatchSize', async () => {
    const { engine, port, client } = await startEngine({ timeoutMs: 5000, eventBatchSize: 3 });
    for (let id = 1; id <= 10; id++) await client.beat(port, BigInt(id));
    expect(await until(() => engine.stats().trackedHosts === 10)).toBe(true);
    const sizes: number[] = [];
    for await (const batch of engine.hosts()) sizes.push(batch.length);
    expect(sizes).toEqual([3, 3, 3, 1]);
  });

  it('skips hosts removed while hosts() is streaming', async () => {
    const { engine, port, client } = await startEngine({ timeoutMs: 5000, eventBatchSize: 2 });
    for (let id = 1; id <= 4; id++) await client.beat(port, BigInt(id));
    expect(await until(() => engine.stats().trackedHosts === 4)).toBe(true);
    const seen: string[] = [];
    for await (const batch of engine.hosts()) {
      seen.push(...batch.map((h) => h.id));
      engine.remove('4');
    }
    expect(seen).toEqual(['1', '2', '3']);
  });

  it('removes hosts by their derived id in address identity', async () => {
    const { engine, sink, port, client } = await startEngine({
      timeoutMs: 5000,
      identity: 'address',
    });
    await client.send('x', port);
    expect(await until(() => sink.all.length === 1)).toBe(true);
    const id = sink.all[0]?.id as string;
    expect(await engine.remove(id)).toBe(true);
    expect(engine.stats().trackedHosts).toBe(0);
    await client.send('x', port);
    expect(await until(() => sink.all.length === 2)).toBe(true);
    expect(sink.all[1]).toMatchObject({ type: 'up', id, recovered: false });
  });

  it('ignores LEAVE from unknown hosts and heartbeats to down hosts keep their incarnation', async () => {
    const { engine, sink, port, client } = await startEngine({ timeoutMs: 100 });
    await client.beat(port, 9n, { leave: true });
    await client.beat(port, 10n, { incarnation: 1 });
    expect(await until(() => engine.stats().hostsDown === 1)).toBe(true);
    await client.beat(port, 10n, { incarnation: 2 });
    expect(await until(() => sink.all.length === 3)).toBe(true);
    expect(sink.all.map((e) => e.type)).toEqual(['up', 'down', 'up']);
    expect(sink.all[2]).toMatchObject({ recovered: true, incarnation: 2 });
    expect(engine.stats().trackedHosts).toBe(1);
  });

  it('returns the same listen() promise twice and rejects listen() after close()', async () => {
    const sink = new Recorder();
    const engine = createJsEngine(resolveOptions({ host: '127.0.0.1', port: 0 }), sink);
    open.push(engine);
    const first = engine.listen();
    expect(engine.listen()).toBe(first);
    await first;
    const closed = createJsEngine(resolveOptions({ host: '127.0.0.1', port: 0 }), sink);
    await closed.close();
    await expect(closed.listen()).rejects.toMatchObject({ code: 'ERR_HW_CLOSED' });
  });

  it('rejects a pending listen() when closed first', async () => {
    const engine = createJsEngine(resolveOptions({ host: '127.0.0.1', port: 0 }), new Recorder());
    const listening = engine.listen();
    const closing = engine.close();
    await expect(listening).rejects.toMatchObject({ code: 'ERR_HW_CLOSED' });
    await closing;
  });

  it('reports the receive buffer the kernel granted', async () => {
    const { engine } = await startEngine({ recvBufferBytes: 65_536 });
    const granted = engine.stats().receivers[0]?.recvBufferBytes ?? 0;
    expect(granted).toBeGreaterThanOrEqual(4096);
  });
});
