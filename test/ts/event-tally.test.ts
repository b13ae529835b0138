// The event tally behind the lateness histogram: fed batches as the 'events' listener gets them.
import { afterEach, describe, expect, it } from 'vitest';
import type { DownEvent, HostEvent } from '../../lib/events.js';
import { Heartwatch } from '../../lib/heartwatch.js';
import { EventTally, latenessBucketsSeconds } from '../../lib/metrics/event-tally.js';

const down = (id: string, lastSeen: number, timeoutMs: number, lateMs: number): DownEvent => ({
  type: 'down',
  id,
  address: '127.0.0.1:1',
  at: lastSeen + timeoutMs + lateMs,
  lastSeen,
  timeoutMs,
  reason: 'timeout',
});

describe('EventTally', () => {
  let hw: Heartwatch | undefined;
  afterEach(async () => {
    await hw?.close();
  });

  it('observes the lateness of every timeout down from its own timeout, also with announced intervals', () => {
    // missedBeats 3 (the default): each host's timeout is its own, carried by its down.
    hw = new Heartwatch({ engine: 'js', port: 0, timeoutMs: 5000 });
    const tally = new EventTally(hw);
    const batch: HostEvent[] = [
      down('1', 1_000, 300, 2),
      down('2', 1_000, 5_000, 40),
      down('3', 9_000, 90, 7_000),
      { ...down('4', 1_000, 300, 0), reason: 'left', at: 1_500 },
    ];
    tally.add(batch);
    const h = tally.lateness();
    expect(h.count).toBe(3);
    expect(h.sum).toBeCloseTo(0.002 + 0.04 + 7, 9);
    const le = (seconds: number) => h.counts[latenessBucketsSeconds.indexOf(seconds)];
    expect(le(0.001)).toBe(0);
    expect(le(0.0025)).toBe(1);
    expect(le(0.05)).toBe(2);
    expect(le(5)).toBe(2);
    expect(le(10)).toBe(3);
    expect(tally.transitions).toEqual({ up: 0, down: 4, restart: 0 });
    tally.dispose();
  });
});
