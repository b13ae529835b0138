// The mass-failure guard on both engines: half the fleet stops at once, 'storm' fires, and each
// policy holds (README "What a down means").
import { afterEach, describe, expect, it } from 'vitest';
import { nativeEngineAvailable } from '../../lib/engine/native-engine.js';
import type { DownEvent, StormEvent } from '../../lib/events.js';
import type { StormOptions } from '../../lib/options.js';
import { Fixture, type Started, sleep, until } from './helpers/loopback.js';

const engines: ('js' | 'native')[] = nativeEngineAvailable() ? ['js', 'native'] : ['js'];
const timeoutMs = 300;
const hosts = 40;

/** Starts a server, beats hosts 1..40 every 50 ms; `stop(from, to)` and `resume` steer them. */
async function fleet(fixture: Fixture, engine: 'js' | 'native', storm: StormOptions) {
  const started: Started = await fixture.start({ engine, timeoutMs, missedBeats: 0, storm });
  const storms: { event: StormEvent; eventsBefore: number }[] = [];
  started.hw.on('storm', (event) =>
    storms.push({ event, eventsBefore: started.log.events.length }),
  );
  const silent = new Set<number>();
  let seq = 0;
  const round = async (): Promise<void> => {
    seq++;
    for (let id = 1; id <= hosts; id++) {
      if (!silent.has(id)) await started.client.beat(started.port, BigInt(id), { seq });
    }
  };
  const timer = setInterval(() => void round(), 50);
  fixture.track({ close: async () => clearInterval(timer) });
  await round();
  expect(await until(() => started.hw.stats().hostsUp === hosts, 3000)).toBe(true);
  return {
    ...started,
    storms,
    stop: (from: number, to: number) => {
      for (let id = from; id <= to; id++) silent.add(id);
    },
    resume: (from: number, to: number) => {
      for (let id = from; id <= to; id++) silent.delete(id);
    },
    downs: () => started.log.events.filter((e): e is DownEvent => e.type === 'down'),
  };
}

describe.each(engines)('%s engine, mass failure', (engine) => {
  const fixture = new Fixture();
  afterEach(() => fixture.closeAll());

  it("policy flag: half the fleet stops at once, 'storm' starts and ends, the downs come flagged", async () => {
    const f = await fleet(fixture, engine, { policy: 'flag' });
    f.stop(1, hosts / 2);
    expect(await until(() => f.storms.length === 2, 5000)).toBe(true);
    const [start, end] = f.storms;
    // The base is the engine's up count plus the window's downs: the whole fleet, give or take
    // downs the engine decided but had not delivered yet.
    expect(start?.event.phase).toBe('start');
    expect(start?.event.hosts).toBeGreaterThan(hosts / 2);
    expect(start?.event.hosts).toBeLessThanOrEqual(hosts);
    expect(start?.event.downs).toBeGreaterThan(0.4 * (start?.event.hosts ?? 0));
    expect(end?.event).toMatchObject({ phase: 'end', downs: hosts / 2 });
    const downs = f.downs();
    expect(new Set(downs.map((d) => Number(d.id)))).toEqual(
      new Set(Array.from({ length: hosts / 2 }, (_, i) => i + 1)),
    );
    // Downs delivered before the threshold was crossed went out unflagged; every later one is flagged.
    const flaggedFrom = start?.eventsBefore ?? 0;
    for (const down of f.log.events.slice(flaggedFrom)) {
      if (down.type === 'down') expect(down.storm).toBe(true);
    }
    expect(downs.filter((d) => d.storm).length).toBeGreaterThan(0);
  });

  it('policy hold: downs wait for the end; a host heard again meanwhile is never reported down', async () => {
    const f = await fleet(fixture, engine, { policy: 'hold' });
    f.stop(1, hosts / 2);
    expect(await until(() => f.storms.length === 1, 5000)).toBe(true);
    const [start] = f.storms;
    // Downs delivered before the threshold was crossed went out at once; the rest are held.
    const early = new Set(f.downs().map((d) => Number(d.id)));
    expect(early.size).toBeLessThan(hosts / 2);
    // The last five to stop come back while their downs are held.
    const back = [16, 17, 18, 19, 20];
    f.resume(16, 20);
    expect(await until(() => f.storms.length === 2, 5000)).toBe(true);
    const end = f.storms[1];
    const heardAgain = back.filter((id) => !early.has(id));
    expect(heardAgain.length).toBeGreaterThan(0);
    expect(end?.event).toMatchObject({ phase: 'end', recovered: heardAgain.length });
    // No down was delivered between the storm's start and its end.
    const during = f.log.events.slice(start?.eventsBefore ?? 0, end?.eventsBefore ?? 0);
    expect(during.filter((e) => e.type === 'down')).toEqual([]);
    await sleep(50);
    for (const id of heardAgain) {
      expect(f.log.of(BigInt(id))).toEqual([
        expect.objectContaining({ type: 'up', recovered: false }),
      ]);
    }
    const held = f.downs().filter((d) => d.storm);
    expect(end?.event.held).toBe(held.length);
    expect(held.length).toBe(hosts / 2 - early.size - heardAgain.length);
    expect(held.every((d) => !early.has(Number(d.id)) && !heardAgain.includes(Number(d.id)))).toBe(
      true,
    );
    expect(f.downs().length).toBe(early.size + held.length);
  });
});
