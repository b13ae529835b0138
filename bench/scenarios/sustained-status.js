// Sustained fleet with host statuses (issue 13): the sustained scenario's run (same simulator,
// pinning, timeout and measurements) at 1M hosts, twice per contender in each round: plain
// 28-byte beats, then every 10th host carrying a 64-byte status that changes every 100th of its
// beats (staggered over the fleet). The two rows of a contender come from the same rounds, so
// their ratio is the cost of the statuses. `updatesPerSecond` counts the update events the
// server's JavaScript received; by the schedule it is a thousandth of the received rate
// (10% of beats carry a status, 1 in 100 of those changes it).
const { defaultCpus, measure } = require('../lib/suite.js');
const sustained = require('./sustained.js');

const { once } = sustained;

const statusPlan = { hostStride: 10, bytes: 64, changeEvery: 100 };
const statusLabel = '10% x 64 B, new every 100th beat';
// The pure-TS engine too: node-dgram keeps no statuses.
const statusContenders = ['heartwatch-native', 'heartwatch-js'];

const metrics = [...sustained.metrics, 'updatesPerSecond'];

async function sustainedStatus({
  quick = false,
  runs = quick ? 3 : 5,
  contenders = statusContenders,
  cpus = defaultCpus(),
  hosts = quick ? 100_000 : 1_000_000,
  durationMs = quick ? 2500 : 8000,
  log,
} = {}) {
  const { timeoutMs, runMs } = sustained.runPlan(hosts, durationMs);
  log?.(`sustained-status: ${hosts} hosts, timeout ${timeoutMs} ms, ${runMs} ms per run`);
  const rows = await measure({
    contenders: contenders.filter((c) => statusContenders.includes(c)),
    runs,
    keys: ['hosts', 'statuses'],
    metrics,
    worst: ['falseDowns'],
    once: async (contender) => {
      const common = { contender, hosts, durationMs: runMs, timeoutMs, cpus };
      const plain = await once(common);
      const status = await once({ ...common, statuses: statusPlan });
      return [
        { ...plain, scenario: 'sustained-status', statuses: 'none', updatesPerSecond: 0 },
        { ...status, scenario: 'sustained-status', statuses: statusLabel },
      ];
    },
    log,
  });
  // Ratios against the same contender's plain row of the same rounds (no node-dgram here).
  return rows.map((row) => {
    const plain = rows.find((r) => r.contender === row.contender && r.statuses === 'none');
    const vsBaseline = {};
    for (const field of metrics) {
      const a = row[field];
      const b = plain?.[field];
      vsBaseline[field] =
        typeof a === 'number' && typeof b === 'number' && b !== 0
          ? Math.round((a / b) * 100) / 100
          : null;
    }
    return { ...row, vsBaseline };
  });
}

module.exports = {
  scenario: 'sustained-status',
  title: 'Sustained fleet with statuses (ratios: against the same contender without statuses)',
  run: sustainedStatus,
  keys: ['hosts', 'statuses'],
  columns: [
    { field: 'hosts', label: 'hosts', ratio: false },
    { field: 'statuses', label: 'statuses', ratio: false },
    { field: 'offeredPerSecond', label: 'offered/s', ratio: false },
    { field: 'receivedPerSecond', label: 'received/s', better: 'higher' },
    { field: 'kernelDrops', label: 'kernel drops', better: 'lower' },
    { field: 'falseDowns', label: 'false downs', ratio: false },
    { field: 'cpuNsPerHeartbeat', label: 'CPU ns/heartbeat', better: 'lower' },
    { field: 'rssBytesPerHost', label: 'RSS bytes/host', better: 'lower' },
    { field: 'updatesPerSecond', label: 'updates/s to JS', ratio: false },
  ],
  headline: { field: 'receivedPerSecond', better: 'higher', label: 'received/s' },
};
