import { performance } from 'node:perf_hooks';
import type { DownEvent, HostEvent, StormEvent } from './events.js';
import type { ResolvedStormOptions } from './options.js';

/** A storm in progress. */
interface Storm {
  downs: number;
  hosts: number;
  /** Policy `hold`: the storm's downs not yet delivered, by host id. */
  held: Map<string, DownEvent>;
  recovered: number;
}

/**
 * The mass-failure guard (README "What a down means"), the same for both engines: it watches the
 * event batches on their way to the listeners, counts downs by timeout in a sliding window, and
 * when they exceed `fraction` of the hosts that were up, reports a storm and applies its policy.
 *
 * Runs on: the JS thread (engine batches and its own end-of-storm timer).
 */
export class StormGuard {
  readonly #options: ResolvedStormOptions;
  readonly #hostsUp: () => number;
  readonly #report: (event: StormEvent) => void;
  readonly #deliver: (batch: HostEvent[]) => void;
  /** performance.now() of each recent down by timeout, oldest first, from #head on. */
  #recent: number[] = [];
  #head = 0;
  #storm: Storm | undefined;
  #timer: NodeJS.Timeout | undefined;

  /**
   * `hostsUp` reads the engine's current count; `report` emits a storm event; `deliver` hands a
   * batch of held downs on when a storm ends.
   */
  constructor(
    options: ResolvedStormOptions,
    hostsUp: () => number,
    report: (event: StormEvent) => void,
    deliver: (batch: HostEvent[]) => void,
  ) {
    this.#options = options;
    this.#hostsUp = hostsUp;
    this.#report = report;
    this.#deliver = deliver;
  }

  /** The batch as listeners should see it: flagged, or with held downs and recoveries taken out. */
  filter(batch: HostEvent[]): HostEvent[] {
    const now = performance.now();
    let timeouts = 0;
    for (const event of batch) {
      if (event.type === 'down' && event.reason === 'timeout') {
        this.#recent.push(now);
        timeouts++;
      }
    }
    if (timeouts === 0 && this.#storm === undefined) return batch;
    const inWindow = this.#prune(now);
    if (this.#storm === undefined) {
      // The engine's count already excludes the window's downs: add them back for the base.
      const hosts = this.#hostsUp() + inWindow;
      const { fraction, minDowns } = this.#options;
      if (inWindow < minDowns || inWindow <= fraction * hosts) return batch;
      this.#begin(inWindow, inWindow - timeouts, hosts);
    }
    return this.#apply(batch, this.#storm as Storm);
  }

  /** Ends a storm in progress (its held downs are delivered) and stops the timer. */
  close(): void {
    if (this.#storm !== undefined) this.#end();
  }

  /** `delivered` of the window's `downs` went out before the storm was seen: not flagged. */
  #begin(downs: number, delivered: number, hosts: number): void {
    this.#storm = { downs: delivered, hosts, held: new Map(), recovered: 0 };
    this.#report({ phase: 'start', at: epochNow(), downs, hosts });
    this.#timer = setInterval(() => this.#checkEnd(), Math.max(1, this.#options.windowMs / 4));
    this.#timer.unref();
  }

  #apply(batch: HostEvent[], storm: Storm): HostEvent[] {
    const hold = this.#options.policy === 'hold';
    const out: HostEvent[] = [];
    for (const event of batch) {
      if (event.type === 'down' && event.reason === 'timeout') {
        storm.downs++;
        const flagged: DownEvent = { ...event, storm: true };
        if (hold) storm.held.set(event.id, flagged);
        else out.push(flagged);
      } else if (hold && event.type === 'up' && storm.held.delete(event.id)) {
        // Heard again while its down was held: it was never reported down, so no recovery either.
        storm.recovered++;
      } else {
        out.push(event);
      }
    }
    return out;
  }

  #checkEnd(): void {
    if (this.#prune(performance.now()) === 0) this.#end();
  }

  #end(): void {
    const storm = this.#storm as Storm;
    this.#storm = undefined;
    clearInterval(this.#timer);
    this.#timer = undefined;
    const end: StormEvent = {
      phase: 'end',
      at: epochNow(),
      downs: storm.downs,
      hosts: storm.hosts,
    };
    if (this.#options.policy === 'hold') {
      end.held = storm.held.size;
      end.recovered = storm.recovered;
    }
    this.#report(end);
    if (storm.held.size > 0) this.#deliver([...storm.held.values()]);
  }

  /** Drops downs older than the window; returns how many remain. */
  #prune(now: number): number {
    const from = now - this.#options.windowMs;
    while (this.#head < this.#recent.length && (this.#recent[this.#head] as number) <= from)
      this.#head++;
    if (this.#head > 1024 && this.#head * 2 > this.#recent.length) {
      this.#recent = this.#recent.slice(this.#head);
      this.#head = 0;
    }
    return this.#recentCount();
  }

  #recentCount(): number {
    return this.#recent.length - this.#head;
  }
}

function epochNow(): number {
  return performance.timeOrigin + performance.now();
}
