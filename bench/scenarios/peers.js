// Against what users pick instead: Redis key expiry (`redis-ttl`), a Redis sorted-set poller
// (`redis-zset`) and etcd leases (`etcd-lease`), each a real server started on loopback for the
// run (bench/peers/), next to heartwatch and the node:dgram baseline on the same work: hosts beat
// every 1 s, timeout 3 s, and 1% of them stop at once.
//
// Lateness is the same for every contender: from a stopped host's last beat as its sender sent it,
// plus the timeout, to the moment its down reached a JS listener on the server side (heartwatch's
// 'events' listener; for a peer, the Node process that turns the peer's output into downs). A
// stopped host with no down within 3 x timeout of the stop is missed (`eventsLost`); a down of a
// host that kept beating is false. CPU and RSS are the whole server side's (for a peer: its
// server and its detector process), CPU from the steady state to the end over the beats
// sent meanwhile.
//
// 1M hosts run for heartwatch-native, and for any other contender that held 100K (no false
// downs, none missed); a contender that cannot take a size gets a row saying why.
const { lateness } = require('./precision.js');
const { peers } = require('../peers/adapters.js');
const { runHeartwatch } = require('../peers/run-heartwatch.js');
const { runPeer } = require('../peers/run-peer.js');
const { addRatios, defaultCpus, measure, serverContenders } = require('../lib/suite.js');

const peerContenders = Object.keys(peers);
const metrics = [
  'p50Ms',
  'p99Ms',
  'maxMs',
  'eventsLost',
  'falseDowns',
  'beatsPerSecond',
  'senderLagMaxMs',
  'cpuNsPerHeartbeat',
  'rssBytes',
  'warmupDowns',
  'clientErrors',
];
const worst = ['eventsLost', 'falseDowns', 'senderLagMaxMs', 'warmupDowns', 'clientErrors'];

/** The configurations a contender runs in: each peer's defaults and its tuning. */
const configsOf = (contender) => peers[contender]?.configs ?? ['defaults'];

/** A row for a run that produced no figures, with the reason. */
function emptyRow(base, status, reason) {
  return { ...base, status, reason, ...Object.fromEntries(metrics.map((m) => [m, null])) };
}

/** Figures of one run (runPeer / runHeartwatch result) against the stopped hosts. */
function figures(result, { timeoutMs, intervalMs, hosts }) {
  const last = new Map(result.load.killed);
  // Downs before the steady state (a peer that lost hosts while it was being set up) are not the
  // scenario's; they are counted apart.
  const steady = result.downs.filter(([, at]) => at >= result.steadyAt);
  // A stopped host's down from before its last beat was false (it was still beating then).
  const beforeStop = steady.filter(([id, at]) => last.has(id) && at < last.get(id));
  const downs = steady
    .filter(([id, at]) => !(last.has(id) && at < last.get(id)))
    .map(([id, at]) => [id, at, last.get(id) ?? at, at]);
  const late = lateness(downs, new Set(last.keys()), timeoutMs);
  const planned = (hosts * 1000) / intervalMs;
  return {
    p50Ms: late.p50Ms,
    p99Ms: late.p99Ms,
    maxMs: late.maxMs,
    eventsLost: late.eventsLost,
    falseDowns: late.falseDowns + beforeStop.length,
    beatsPerSecond: result.load.beatsPerSecond,
    senderLagMaxMs: result.load.senderLagMaxMs,
    cpuNsPerHeartbeat: (result.cpuMicros * 1000) / Math.max(1, result.beats),
    rssBytes: result.rssBytes,
    warmupDowns: result.downs.length - steady.length,
    clientErrors: result.load.errors,
    // The sender is part of the bench, not of the contender: say when it fell short.
    senderShort: result.load.beatsPerSecond < 0.9 * planned,
  };
}

async function once({ contender, config, hosts, intervalMs, timeoutMs, cpus, run, quick, failed }) {
  const kill = Math.max(1, Math.round(hosts / 100));
  const firstKill = (run * 7919) % (hosts - kill + 1);
  const base = {
    ...{ bench: 'detection', scenario: 'peers', contender, config, hosts },
    ...{ killed: kill, intervalMs, timeoutMs },
  };
  const work = { hosts, intervalMs, timeoutMs, kill, firstKill, observeMs: 3 * timeoutMs, cpus };
  // A size a peer could not take in one run is not tried again (a failed etcd set-up costs minutes).
  const failure = `${contender} ${config} ${hosts}`;
  if (failed.has(failure)) {
    return emptyRow(base, 'failed', `${failed.get(failure)} (in an earlier run; not run again)`);
  }
  let result;
  if (peers[contender]) {
    // etcd grants and attaches a lease per host through Raft before the run can start.
    const setupBudgetMs = quick ? 60_000 : hosts >= 100_000 ? 180_000 : 90_000;
    result = await runPeer({ contender, config, setupBudgetMs, ...work });
  } else {
    result = await runHeartwatch({ contender, run, ...work });
  }
  const peer = result.peer ? { version: result.peer.version, args: result.peer.args } : {};
  if (result.status !== 'ok') {
    failed.set(failure, result.reason);
    return emptyRow({ ...base, ...peer }, result.status, result.reason);
  }
  const setupSeconds = peers[contender]?.setsUpHosts ? result.load.setupMs / 1000 : null;
  const row = { ...base, ...peer, status: 'ok', setupSeconds, ...figures(result, work) };
  if (result.load.lastError) row.reason = `last sender error: ${result.load.lastError}`;
  if (row.senderShort) {
    row.reason = `the load generator reached ${Math.round(row.beatsPerSecond)} of ${(hosts * 1000) / intervalMs} beats/s`;
  }
  return row;
}

/** Whether a contender's rows at `hosts` held: every run ok, nothing missed, no false down. */
const held = (rows, contender, hosts) =>
  rows.some(
    (r) =>
      r.contender === contender &&
      r.hosts === hosts &&
      r.config === 'defaults' &&
      r.status === 'ok' &&
      r.eventsLost === 0 &&
      r.falseDowns === 0,
  );

/** Adds, per contender and config, the highest beat rate it carried with no false down. */
function addSustained(rows) {
  return rows.map((row) => {
    const clean = rows.filter(
      (r) =>
        r.contender === row.contender &&
        r.config === row.config &&
        r.status === 'ok' &&
        r.falseDowns === 0,
    );
    const rates = clean.map((r) => r.beatsPerSecond);
    return { ...row, sustainedBeatsPerSecond: rates.length > 0 ? Math.max(...rates) : null };
  });
}

/** Rows: one per contender, config and fleet size; runs capped at 3 (each run lasts ~15 s). */
async function peersScenario({
  quick = false,
  runs = 3,
  contenders = [...serverContenders, ...peerContenders],
  cpus = defaultCpus(),
  sizes = quick ? [1000, 10_000] : [1000, 10_000, 100_000, 1_000_000],
  intervalMs = 1000,
  timeoutMs = 3000,
  log,
} = {}) {
  const chosen = contenders.filter((c) => serverContenders.includes(c) || peers[c]);
  const rows = [];
  const failed = new Map();
  for (const hosts of sizes) {
    log?.(`peers: ${hosts} hosts every ${intervalMs} ms, timeout ${timeoutMs} ms, 1% stop`);
    const running = [];
    for (const contender of chosen) {
      const previous = sizes[sizes.indexOf(hosts) - 1];
      const mustHold = hosts >= 1_000_000 && contender !== 'heartwatch-native';
      if (mustHold && !held(rows, contender, previous)) {
        for (const config of configsOf(contender)) {
          const base = { bench: 'detection', scenario: 'peers', contender, config, hosts };
          const reason = `not run: did not hold ${previous} hosts (a false down or a missed down)`;
          rows.push(emptyRow(base, 'skipped', reason));
        }
      } else running.push(contender);
    }
    rows.push(
      ...(await measure({
        contenders: running,
        runs: Math.min(runs, quick ? 1 : 3),
        keys: ['hosts', 'config'],
        metrics,
        worst,
        once: async (contender, run) => {
          const out = [];
          for (const config of configsOf(contender)) {
            out.push(
              await once({
                ...{ contender, config, hosts, intervalMs, timeoutMs, cpus },
                run,
                quick,
                failed,
              }),
            );
          }
          return out;
        },
        log,
      })),
    );
  }
  return addRatios(addSustained(rows), { keys: ['hosts'], metrics });
}

/** Under the table: each peer's version, configuration and protocol, then why rows are empty. */
function notes(rows) {
  const lines = [];
  const seen = new Set();
  for (const row of rows) {
    const key = `${row.contender} ${row.config}`;
    if (!peers[row.contender] || !row.version || seen.has(key)) continue;
    seen.add(key);
    const binary = peers[row.contender].server === 'redis' ? 'redis-server' : 'etcd';
    const tuning = row.args.length > 0 ? ` \`${row.args.join(' ')}\`` : '';
    lines.push(
      `- \`${row.contender}\` (${row.config}): ${row.version}, ${binary}${tuning}, data on tmpfs; ${peers[row.contender].describe(row.timeoutMs ?? 3000, 5)}.`,
    );
  }
  for (const row of rows) {
    if (row.warmupDowns > 0) {
      lines.push(
        `- ${row.contender} (${row.config}), ${row.hosts} hosts: ${row.warmupDowns} downs while it was being set up, before the steady state (not counted above).`,
      );
    }
    if (row.reason)
      lines.push(
        `- ${row.contender} (${row.config}), ${row.hosts} hosts: ${row.status}: ${row.reason}.`,
      );
  }
  return lines;
}

module.exports = {
  scenario: 'peers',
  title: 'Against Redis and etcd: 1% of hosts stop',
  run: peersScenario,
  keys: ['hosts', 'config'],
  notes,
  metrics,
  figures,
  columns: [
    { field: 'hosts', label: 'hosts', ratio: false },
    { field: 'config', label: 'config', ratio: false },
    { field: 'status', label: 'status', ratio: false },
    { field: 'p50Ms', label: 'p50 ms late', better: 'lower' },
    { field: 'p99Ms', label: 'p99 ms late', better: 'lower' },
    { field: 'maxMs', label: 'max ms late', better: 'lower' },
    { field: 'eventsLost', label: 'missed', ratio: false },
    { field: 'falseDowns', label: 'false downs', ratio: false },
    { field: 'beatsPerSecond', label: 'beats/s', ratio: false },
    { field: 'setupSeconds', label: 'set-up s', ratio: false },
    { field: 'clientErrors', label: 'sender errors', ratio: false },
    { field: 'cpuNsPerHeartbeat', label: 'server CPU ns/beat', better: 'lower' },
    { field: 'rssBytes', label: 'server RSS', better: 'lower' },
    { field: 'sustainedBeatsPerSecond', label: 'most beats/s, no false down', ratio: false },
  ],
  headline: { field: 'p99Ms', better: 'lower', label: 'p99 ms late', floor: 1 },
};
