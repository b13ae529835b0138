// A down the sender caused, told from a detector's false down, for every contender of the peer
// scenarios alike: the fleet simulator (heartwatch, node-dgram) and the peers' load generator
// (bench/peers/load.js) each report the hosts they left silent longer than the timeout, and one
// rule classifies the downs of both.
//
// Runs on: the main thread of the process that loads it.

// How far the server's times and the sender's may disagree: lastSeen is stamped in whole
// milliseconds rounded down and turned into epoch time with the server's own clock offset, the
// send times with the sender's process's (measured: within 2 ms). Beats of one host are an
// interval apart, so no other send of the host falls this close to lastSeen.
const clockSlackMs = 5;

/**
 * Whether a down ([id, deliveredAt, lastSeen, ...]) is the sender's doing: the sender sent the
 * host nothing from the beat the detector saw last until after its deadline. `gaps` maps an id to
 * its longest silence, [last send before it, the send (or run end) that ended it], as in
 * `load.longGaps`. Where the clocks leave it unclear, the down counts as the detector's.
 */
function senderLate([id, , lastSeen], gaps, timeoutMs) {
  const gap = gaps.get(id);
  return (
    gap !== undefined &&
    gap[0] <= lastSeen + clockSlackMs &&
    gap[1] > lastSeen + timeoutMs + clockSlackMs
  );
}

/**
 * A peer's down ([id, deliveredAt]: Redis and etcd say no last-seen time) with the one the rule
 * needs: the host's last send a timeout or more before the down reached the detector (a later
 * beat, read in order, would have kept the host up until after then). The sender's record shows
 * it where the host's longest silence spans that instant; elsewhere the instant itself stands
 * in, later than any such send, so that {@link senderLate} counts the down as the detector's.
 */
function withLastSent([id, deliveredAt], gaps, timeoutMs) {
  const latest = deliveredAt - timeoutMs;
  const gap = gaps.get(id);
  const spans = gap !== undefined && gap[0] <= latest && gap[1] > latest;
  return [id, deliveredAt, spans ? gap[0] : latest];
}

/**
 * How many of `downs` the sender caused, by {@link senderLate}; `longGaps` as the run reported
 * them ([id, gap start, gap end] per host). `lastSeenKnown` is false for a peer's downs, which
 * get theirs from {@link withLastSent}.
 */
function countSenderLate(downs, longGaps, timeoutMs, { lastSeenKnown }) {
  const gaps = new Map(longGaps.map(([id, ...gap]) => [id, gap]));
  const judged = lastSeenKnown ? downs : downs.map((down) => withLastSent(down, gaps, timeoutMs));
  return judged.filter((down) => senderLate(down, gaps, timeoutMs)).length;
}

/**
 * Each host's longest silence, as the fleet simulator's `longGapMs` keeps it: the longest time
 * between two consecutive sends, or from the last send to the end of the run. Runs on: the load
 * generator's main thread (`sent` on every beat: no allocation).
 */
class GapTracker {
  constructor(hosts) {
    this.lastSent = new Float64Array(hosts);
    this.longestMs = new Float64Array(hosts);
    this.endedAt = new Float64Array(hosts);
  }

  /** Host `i` was sent a beat at `at` (epoch ms). */
  sent(i, at) {
    const previous = this.lastSent[i];
    if (previous > 0 && at - previous > this.longestMs[i]) {
      this.longestMs[i] = at - previous;
      this.endedAt[i] = at;
    }
    this.lastSent[i] = at;
  }

  /** Forgets the silences so far (those of the set-up), keeping each host's last send. */
  restart() {
    this.longestMs.fill(0);
    this.endedAt.fill(0);
  }

  /**
   * [id, gap start, gap end] (epoch ms) for each host whose longest silence, up to `endAt`, went
   * over `overMs`; host i has the id String(i + 1).
   */
  report(endAt, overMs) {
    const out = [];
    for (let i = 0; i < this.lastSent.length; i++) {
      const last = this.lastSent[i];
      if (last === 0) continue;
      let longest = this.longestMs[i];
      let ended = this.endedAt[i];
      if (endAt - last > longest) {
        longest = endAt - last;
        ended = endAt;
      }
      if (longest > overMs) out.push([String(i + 1), ended - longest, ended]);
    }
    return out;
  }
}

module.exports = { senderLate, withLastSent, countSenderLate, GapTracker, clockSlackMs };
