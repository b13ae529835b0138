import type { Heartwatch } from '../heartwatch.js';
import type { Logger } from './log.js';

/** How often the address-change counters are read. */
export const sourceWatchPeriodMs = 2000;
/** A host is warned about at most once in this long. */
export const sourceWarningEveryMs = 60_000;
/** Hosts remembered at once; past it the oldest is dropped (a sample, not an index). */
const maxWatched = 1024;

/**
 * Warns when one host id is heard from two sources in alternation: two senders configured with
 * the same id keep each other's host up, so one of them can die unnoticed. The engines count
 * every heartbeat whose source differs from its host's last one and keep the latest such host
 * (`WorkerStats.addressChanges`, `lastAddressChangeId`). While a count keeps rising, each read
 * looks that host up and remembers where it is heard from; once it was seen at two addresses, a
 * warning names the id and both. A host that moved once is seen at its new address only.
 *
 * Runs on: the JS thread (a timer).
 */
export class SourceWatch {
  readonly #hw: Heartwatch;
  readonly #log: Logger;
  readonly #timer: NodeJS.Timeout;
  /** addressChanges per worker at the previous read. */
  #counts: number[] = [];
  /** id -> the addresses it was seen at since its last warning, and when that was. */
  readonly #hosts = new Map<string, { addresses: Set<string>; warnedAt: number }>();

  constructor(hw: Heartwatch, log: Logger) {
    this.#hw = hw;
    this.#log = log;
    this.#timer = setInterval(() => void this.#read(), sourceWatchPeriodMs).unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  async #read(): Promise<void> {
    const workers = this.#hw.stats().workers;
    const moved: string[] = [];
    workers.forEach((w, i) => {
      if (w.addressChanges > (this.#counts[i] ?? 0) && w.lastAddressChangeId !== null) {
        moved.push(w.lastAddressChangeId);
      }
    });
    this.#counts = workers.map((w) => w.addressChanges);
    for (const id of moved) {
      const host = await this.#hw.host(id).catch(() => undefined);
      if (host !== undefined) this.#seen(id, host.address);
    }
  }

  #seen(id: string, address: string): void {
    let entry = this.#hosts.get(id);
    if (entry === undefined) {
      if (this.#hosts.size >= maxWatched)
        this.#hosts.delete(this.#hosts.keys().next().value as string);
      entry = { addresses: new Set(), warnedAt: -Infinity };
      this.#hosts.set(id, entry);
    }
    // Two are enough to name; more would let one spoofed id grow the set.
    if (entry.addresses.size < 2) entry.addresses.add(address);
    const now = performance.now();
    if (entry.addresses.size < 2 || now - entry.warnedAt < sourceWarningEveryMs) return;
    const addresses = [...entry.addresses];
    entry.addresses = new Set([address]);
    entry.warnedAt = now;
    const msg = `host id ${id} is heard from two sources in alternation, ${addresses.join(' and ')}: two senders may share this id`;
    this.#log.warn(`heartwatch serve: warning: ${msg}`, { id, addresses }, msg);
  }
}
