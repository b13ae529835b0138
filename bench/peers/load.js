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
// was sent and, for each stopped host, [id, last beat sent] (epoch ms).
//
// Runs on: its main thread.
const { parseArgs } = require('node:util');
const { peers, now } = require('./adapters.js');

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

async function main() {
  const peer = peers[values.peer];
  if (!peer) throw new Error(`unknown --peer ${values.peer}`);
  const beater = peer.beater({ url: values.url, timeoutMs: Number(values.timeout) });
  await beater.open();
  const lastSent = new Float64Array(hosts);
  const start = now();
  const budgetEnd = start + Number(values['setup-budget']);
  const progress = { done: 0 };
  let setupMs = null;
  let setupError = null;
  setUp(beater, budgetEnd, progress).then(
    (complete) => {
      if (complete) setupMs = now() - start;
    },
    (error) => {
      setupError = error;
    },
  );
  let pos = 0;
  let steadyAt = null;
  let killedAt = null;
  let lagMaxMs = 0;
  let steadySent = 0;
  const isKilled = (i) => killedAt !== null && i >= firstKill && i < firstKill + kill;
  let finished = false;
  const finish = async (fields) => {
    if (finished) return;
    finished = true;
    clearInterval(timer);
    const elapsed = steadyAt === null ? null : (now() - steadyAt) / 1000;
    const killed = [];
    for (let i = firstKill; i < firstKill + kill && killedAt !== null; i++) {
      killed.push([String(i + 1), lastSent[i]]);
    }
    emit({
      event: 'done',
      setupMs,
      hostsSetUp: progress.done,
      ...beater.count,
      beatsPerSecond: elapsed ? (beater.count.sent - steadySent) / elapsed : null,
      senderLagMaxMs: lagMaxMs,
      killed,
      ...fields,
    });
    await beater.close();
    process.exit(0);
  };
  const tick = () => {
    const t = now();
    const target = Math.floor(((t - start) * hosts) / intervalMs);
    if (target > pos && steadyAt !== null) {
      lagMaxMs = Math.max(lagMaxMs, t - (start + (pos * intervalMs) / hosts) - tickMs);
    }
    const batch = [];
    const { sent, replied, errors } = beater.count;
    const room = Math.min(batchMax, inFlightMax - (sent - replied - errors));
    for (; pos < target && batch.length < room; pos++) {
      const i = pos % hosts;
      if (!isKilled(i) && (beater.ready?.(i) ?? true)) batch.push(i);
    }
    if (batch.length > 0) {
      const at = beater.beat(batch);
      for (const i of batch) lastSent[i] = at;
    }
    if (setupError) return finish({ status: 'failed', reason: String(setupError.message) });
    if (steadyAt === null) {
      if (setupMs !== null && t >= start + setupMs + 2 * intervalMs) {
        steadyAt = t;
        steadySent = beater.count.sent;
        emit({ event: 'steady', at: t, sent: beater.count.sent });
      } else if (setupMs === null && t > budgetEnd) {
        const reason = `set up ${progress.done} of ${hosts} hosts in ${values['setup-budget']} ms`;
        return finish({ status: 'failed', reason });
      }
      return;
    }
    if (kill > 0 && killedAt === null && t >= steadyAt + Number(values['kill-after'])) {
      killedAt = t;
      emit({ event: 'killed', at: t, sent: beater.count.sent });
    }
    if (t >= steadyAt + Number(values['end-after'])) finish({ status: 'ok', killedAt });
  };
  const timer = setInterval(tick, tickMs);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
