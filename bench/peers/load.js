// The load generator of the peer bench: N hosts beating every interval through the peer's own
// protocol (bench/peers/adapters.js `beater`), spread evenly over the interval like the fleet
// simulator's, from one Node process pinned to the sender CPU. It can stop a block of hosts.
//
//   node bench/peers/load.js --peer P --url URL --hosts N --interval MS --timeout MS
//        [--kill K --first-kill F --kill-after MS] --end-after MS [--setup-budget MS]
//
// Prints JSON lines: {"event":"steady","at","sent"} once every host is set up and has beaten
// twice; {"event":"killed","at","sent"} when the block stops (kill-after ms after steady); and
// {"event":"done",...} end-after ms after steady, or when setup overruns its budget, with what
// was sent; for each stopped host, [id, last beat sent] (`killed`); and for each host this left
// silent longer than the timeout since the steady state, [id, last send before its longest
// silence, the send (or end) that ended it] (`longGaps`, epoch ms), as the fleet simulator's
// `longGapMs` reports them.
//
// Runs on: its main thread.
const { parseArgs } = require('node:util');
const { peers, now } = require('./adapters.js');
const { GapTracker } = require('./sender-gaps.js');

const { values } = parseArgs({
  options: {
    peer: { type: 'string' },
    url: { type: 'string' },
    hosts: { type: 'string' },
    interval: { type: 'string', default: '1000' },
    timeout: { type: 'string', default: '3000' },
    kill: { type: 'string', default: '0' },
    'first-kill': { type: 'string', default: '0' },
    'kill-after': { type: 'string', default: '1000' },
    'end-after': { type: 'string' },
    'setup-budget': { type: 'string', default: '60000' },
  },
});
const hosts = Number(values.hosts);
const intervalMs = Number(values.interval);
const timeoutMs = Number(values.timeout);
const kill = Number(values.kill);
const firstKill = Number(values['first-kill']);
const tickMs = 5;
// Host set-up requests in flight at once (etcd: a lease grant then a put per host).
const setupConcurrency = 64;
// A generator that falls behind sends at most 4 ticks' worth of beats per tick, and stops while
// two intervals' worth are unanswered: it stays responsive (ends on time, reports what it
// reached) instead of queueing without bound in the client.
const batchMax = Math.max(100, Math.ceil((4 * hosts * tickMs) / intervalMs));
const inFlightMax = 2 * hosts;

const emit = (value) => process.stdout.write(`${JSON.stringify(value)}\n`);

/** Sets every host up, `setupConcurrency` at a time; resolves true, or false past the budget. */
async function setUp(beater, deadline, progress) {
  let next = 0;
  let failure = null;
  const lane = async () => {
    while (next < hosts && failure === null && now() < deadline) {
      const i = next++;
      try {
        await beater.prepare(i);
        progress.done++;
      } catch (error) {
        failure = error;
      }
    }
  };
  await Promise.all(Array.from({ length: setupConcurrency }, lane));
  if (failure) throw failure;
  return progress.done === hosts;
}

/**
 * One generator run: where the schedule is, which phase it is in (setting up, steady, killed) and
 * what it sent. Runs on: the main thread (a 5 ms interval timer drives it).
 */
class LoadRun {
  constructor(beater) {
    this.beater = beater;
    this.gaps = new GapTracker(hosts);
    this.start = now();
    this.budgetEnd = this.start + Number(values['setup-budget']);
    this.progress = { done: 0 };
    this.setupMs = null;
    this.setupError = null;
    this.pos = 0;
    this.steadyAt = null;
    this.steadySent = 0;
    this.killedAt = null;
    this.lagMaxMs = 0;
    this.finished = false;
    this.timer = null;
  }

  begin() {
    setUp(this.beater, this.budgetEnd, this.progress).then(
      (complete) => {
        if (complete) this.setupMs = now() - this.start;
      },
      (error) => {
        this.setupError = error;
      },
    );
    this.timer = setInterval(() => this.tick(), tickMs);
  }

  isKilled(i) {
    return this.killedAt !== null && i >= firstKill && i < firstKill + kill;
  }

  /** Sends the beats due by `t`, within the per-tick and in-flight bounds. */
  sendDue(t) {
    const target = Math.floor(((t - this.start) * hosts) / intervalMs);
    if (target > this.pos && this.steadyAt !== null) {
      const due = this.start + (this.pos * intervalMs) / hosts;
      this.lagMaxMs = Math.max(this.lagMaxMs, t - due - tickMs);
    }
    const { sent, replied, errors } = this.beater.count;
    const room = Math.min(batchMax, inFlightMax - (sent - replied - errors));
    const batch = [];
    for (; this.pos < target && batch.length < room; this.pos++) {
      const i = this.pos % hosts;
      if (!this.isKilled(i) && (this.beater.ready?.(i) ?? true)) batch.push(i);
    }
    if (batch.length === 0) return;
    const at = this.beater.beat(batch);
    for (const i of batch) this.gaps.sent(i, at);
  }

  tick() {
    const t = now();
    this.sendDue(t);
    if (this.setupError) {
      this.finish({ status: 'failed', reason: String(this.setupError.message) });
    } else if (this.steadyAt === null) {
      this.settle(t);
    } else {
      if (kill > 0 && this.killedAt === null && t >= this.steadyAt + Number(values['kill-after'])) {
        this.killedAt = t;
        emit({ event: 'killed', at: t, sent: this.beater.count.sent });
      }
      if (t >= this.steadyAt + Number(values['end-after'])) {
        this.finish({ status: 'ok', killedAt: this.killedAt });
      }
    }
  }

  /** Before the steady state: reached once every host is set up and has beaten twice. */
  settle(t) {
    if (this.setupMs !== null && t >= this.start + this.setupMs + 2 * intervalMs) {
      this.steadyAt = t;
      this.steadySent = this.beater.count.sent;
      // The set-up's silences (hosts still waiting for a lease) are no part of the run.
      this.gaps.restart();
      emit({ event: 'steady', at: t, sent: this.beater.count.sent });
    } else if (this.setupMs === null && t > this.budgetEnd) {
      const reason = `set up ${this.progress.done} of ${hosts} hosts in ${values['setup-budget']} ms`;
      this.finish({ status: 'failed', reason });
    }
  }

  async finish(fields) {
    if (this.finished) return;
    this.finished = true;
    clearInterval(this.timer);
    const elapsed = this.steadyAt === null ? null : (now() - this.steadyAt) / 1000;
    const killed = [];
    for (let i = firstKill; i < firstKill + kill && this.killedAt !== null; i++) {
      killed.push([String(i + 1), this.gaps.lastSent[i]]);
    }
    const { count } = this.beater;
    emit({
      event: 'done',
      setupMs: this.setupMs,
      hostsSetUp: this.progress.done,
      ...count,
      beatsPerSecond: elapsed ? (count.sent - this.steadySent) / elapsed : null,
      senderLagMaxMs: this.lagMaxMs,
      killed,
      longGaps: this.steadyAt === null ? [] : this.gaps.report(now(), timeoutMs),
      ...fields,
    });
    await this.beater.close();
    process.exit(0);
  }
}

async function main() {
  const peer = peers[values.peer];
  if (!peer) throw new Error(`unknown --peer ${values.peer}`);
  const beater = peer.beater({ url: values.url, timeoutMs });
  await beater.open();
  new LoadRun(beater).begin();
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
