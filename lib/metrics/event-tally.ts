import type { HostEvent } from '../events.js';
import type { Heartwatch } from '../heartwatch.js';

/**
 * Upper bounds (seconds) of the detection-lateness buckets: from the native engine's 1 ms clock
 * granularity up to 10 s, roughly x2.5 per step, so both a healthy server (a few ms) and a stalled
 * one (seconds) land in a bucket that says so. The last bucket, +Inf, is implied.
 */
export const latenessBucketsSeconds: readonly number[] = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

/** The kinds of transition counted; a bounded label set. */
export const transitionKinds = ['up', 'down', 'restart'] as const;
export type TransitionKind = (typeof transitionKinds)[number];

/** Cumulative detection-lateness histogram, in Prometheus' shape (cumulative bucket counts). */
export interface LatenessHistogram {
  /** `le` bounds in seconds, as {@link latenessBucketsSeconds}. */
  buckets: readonly number[];
  /** `counts[i]`: observations at most `buckets[i]`; the last entry is `+Inf` (= `count`). */
  counts: number[];
  count: number;
  /** Sum of the observations, seconds. */
  sum: number;
}

/**
 * Counts what only the event stream tells: transitions by kind and how late each timeout `down`
 * came after its deadline (event time minus `lastSeen + timeout`). Fed once per delivered batch,
 * so reading it (a scrape, the live page) costs nothing per event.
 *
 * The deadline is known from the event only when every host shares one timeout, i.e. with
 * `missedBeats: 0`; with announced intervals a host's timeout is not in its `down` event, so no
 * lateness is observed then (`latenessKnown` is false) rather than a wrong one.
 *
 * Runs on: the JS thread (the `'events'` listener).
 */
export class EventTally {
  readonly transitions: Record<TransitionKind, number> = { up: 0, down: 0, restart: 0 };
  /** Whether lateness can be observed for this server's options (see the class comment). */
  readonly latenessKnown: boolean;
  readonly #timeoutMs: number;
  readonly #bucketCounts = new Array<number>(latenessBucketsSeconds.length + 1).fill(0);
  #count = 0;
  #sum = 0;
  readonly #detach: () => void;

  constructor(hw: Heartwatch) {
    this.#timeoutMs = hw.options.timeoutMs;
    this.latenessKnown = hw.options.missedBeats === 0;
    const listener = (batch: HostEvent[]): void => this.add(batch);
    hw.on('events', listener);
    this.#detach = () => hw.off('events', listener);
  }

  /** Counts one delivered batch. */
  add(batch: readonly HostEvent[]): void {
    for (const event of batch) {
      // A status update is not a transition between up and down.
      if (event.type === 'update') continue;
      this.transitions[event.type] += 1;
      if (event.type === 'down' && event.reason === 'timeout' && this.latenessKnown) {
        this.#observe(Math.max(0, event.at - event.lastSeen - this.#timeoutMs) / 1000);
      }
    }
  }

  /** The lateness histogram so far (a copy). */
  lateness(): LatenessHistogram {
    const counts: number[] = [];
    let running = 0;
    for (const n of this.#bucketCounts) {
      running += n;
      counts.push(running);
    }
    return { buckets: latenessBucketsSeconds, counts, count: this.#count, sum: this.#sum };
  }

  /** Stops counting. */
  dispose(): void {
    this.#detach();
  }

  #observe(seconds: number): void {
    let i = 0;
    while (i < latenessBucketsSeconds.length && seconds > (latenessBucketsSeconds[i] as number)) {
      i += 1;
    }
    this.#bucketCounts[i] = (this.#bucketCounts[i] as number) + 1;
    this.#count += 1;
    this.#sum += seconds;
  }
}
