// Sustained fleet: the native fleet simulator, pinned to its own core, sends for N hosts as fast as
// it can (every contender gets the same offered load: the sender's limit); each server contender
// runs alone, pinned to the other core. No host is killed, so every down is a false down.
//
// The timeout is 2 s (10 s for a million hosts): several beat intervals at the few hundred
// thousand heartbeats/s a sender core reaches. Each run lasts longer than the timeout, so a server
// that loses enough heartbeats (or stalls) reports false downs.
const path = require('node:path');
const { root } = require('../lib/build.js');
const {
  addRatios,
  defaultCpus,
  measure,
  serverContenders,
  sleep,
  startServer,
} = require('../lib/suite.js');

const metrics = [
  'offeredPerSecond',
  'receivedPerSecond',
  'kernelDrops',
  'ringDrops',
  'falseDowns',
  'cpuNsPerHeartbeat',
  'rssBytesPerHost',
];

/**
 * One run; with `statuses` ({ hostStride, bytes, changeEvery }) the simulator's status hosts carry
 * a status that changes on schedule, and the row counts the update events the server's JS got.
 */
async function once({ contender, hosts, durationMs, timeoutMs, cpus, statuses }) {
  const { simulateFleet } = require(path.join(root, 'dist', 'index.js'));
  const server = await startServer({
    contender,
    cpu: cpus.server,
    hosts,
    timeoutMs,
    scanIntervalMs: 100,
    recvBufferBytes: 8 << 20,
  });
  try {
    const before = await server.ask({ cmd: 'stats' });
    const report = await simulateFleet({
      server: `udp://127.0.0.1:${server.port}`,
      hosts,
      packetsPerSecond: 5_000_000,
      durationMs,
      cpu: cpus.sender,
      ...(statuses
        ? {
            statusHostStride: statuses.hostStride,
            statusBytes: statuses.bytes,
            statusChangeEvery: statuses.changeEvery,
          }
        : {}),
    });
    // Let the server empty its socket backlog before counting.
    await sleep(300);
    const after = await server.ask({ cmd: 'stats' });
    const received = after.received - before.received;
    const seconds = report.elapsedMs / 1000;
    return {
      bench: 'ingest',
      scenario: 'sustained',
      contender,
      hosts,
      durationMs,
      timeoutMs,
      offeredPerSecond: report.packetsSent / seconds,
      receivedPerSecond: received / seconds,
      // Sent and never received: on loopback only the server's full socket buffer loses datagrams.
      kernelDrops: report.packetsSent - received,
      ringDrops: after.ringDrops - before.ringDrops,
      falseDowns: after.downs - before.downs,
      cpuNsPerHeartbeat: ((after.cpuMicros - before.cpuMicros) * 1000) / Math.max(1, received),
      rssBytesPerHost: (after.rssBytes - server.rssBaseBytes) / hosts,
      ...(statuses ? { updatesPerSecond: (after.updates - before.updates) / seconds } : {}),
    };
  } finally {
    await server.stop();
  }
}

/** Rows: one per contender and fleet size, each the median of `runs` runs, with `vsBaseline`. */
async function sustained({
  quick = false,
  runs = quick ? 3 : 5,
  contenders = serverContenders,
  cpus = defaultCpus(),
  sizes = quick ? [10_000, 100_000] : [10_000, 100_000, 1_000_000],
  durationMs = quick ? 2500 : 8000,
  log,
} = {}) {
  const rows = [];
  for (const hosts of sizes) {
    const { timeoutMs, runMs } = runPlan(hosts, durationMs);
    log?.(`sustained: ${hosts} hosts, timeout ${timeoutMs} ms, ${runMs} ms per run`);
    rows.push(
      ...(await measure({
        contenders: contenders.filter((c) => serverContenders.includes(c)),
        runs,
        keys: ['hosts'],
        metrics,
        worst: ['falseDowns'],
        once: (contender) => once({ contender, hosts, durationMs: runMs, timeoutMs, cpus }),
        log,
      })),
    );
  }
  return addRatios(rows, { keys: ['hosts'], metrics });
}

/** The hosts' timeout for a fleet of `hosts`, and a run long enough to see one timeout pass. */
function runPlan(hosts, durationMs) {
  const timeoutMs = hosts >= 1_000_000 ? 10_000 : 2000;
  return { timeoutMs, runMs: Math.max(durationMs, timeoutMs + 500) };
}

module.exports = {
  once,
  metrics,
  runPlan,
  scenario: 'sustained',
  title: 'Sustained fleet',
  run: sustained,
  keys: ['hosts'],
  columns: [
    { field: 'hosts', label: 'hosts', ratio: false },
    { field: 'offeredPerSecond', label: 'offered/s', ratio: false },
    { field: 'receivedPerSecond', label: 'received/s', better: 'higher' },
    { field: 'kernelDrops', label: 'kernel drops', better: 'lower' },
    { field: 'ringDrops', label: 'ring drops', ratio: false },
    { field: 'falseDowns', label: 'false downs', ratio: false },
    { field: 'cpuNsPerHeartbeat', label: 'CPU ns/heartbeat', better: 'lower' },
    { field: 'rssBytesPerHost', label: 'RSS bytes/host', better: 'lower' },
  ],
  headline: { field: 'receivedPerSecond', better: 'higher', label: 'received/s' },
};
