// Detection precision: K of N simulated hosts stop at a known time while the rest keep beating;
// how late after its deadline each stopped host is declared down.
//
// Lateness is measured on the server's own clock, from its own down events: down.at - (lastSeen +
// timeoutMs), so no clock crosses a process boundary. missedBeats is 0: every host has timeoutMs.
// The listener figures (listenerP50Ms, ...) time the same deadline to the moment the event
// reached the server process's JS listener: end to end, with sub-ms resolution (the engines' epoch
// times and performance.timeOrigin + performance.now() agree to some tens of microseconds).
// The native engine keeps whole milliseconds: a heartbeat's lastSeen is rounded up to the next
// millisecond, so its figures are whole milliseconds and its listener figures read low by up to
// 1 ms (they can be slightly negative).
// The baseline scans its Map every `scanIntervalMs` (100 ms by default: ten scans per timeout of
// 1 s; a finer scan of 10 000 hosts would cost it more CPU than the heartbeats do).
//
// The `pause` variant (bench/scenarios/pause.js) stops the server process with SIGSTOP for
// `pauseMs` at the moment the hosts stop, and SIGCONT after: the survivors' heartbeats wait in
// the socket meanwhile, and any down of theirs is a false down; the stopped hosts' lateness then
// includes the pause.
//
// A down earlier than the deadline by more than 1 us (the resolution of an epoch-ms double) counts
// as early. A down of a host that kept beating is a false down; a stopped host with no down
// event by the end of the observation window is lost.
const path = require('node:path');
const { root } = require('../lib/build.js');
const {
  addRatios,
  defaultCpus,
  measure,
  percentile,
  serverContenders,
  sleep,
  startServer,
} = require('../lib/suite.js');

const metrics = [
  'p50Ms',
  'p99Ms',
  'maxMs',
  'listenerP50Ms',
  'listenerP99Ms',
  'listenerMaxMs',
  'earlyCount',
  'falseDowns',
  'eventsLost',
];
const worst = ['earlyCount', 'falseDowns', 'eventsLost'];
const earlyToleranceMs = 0.001;

/** Lateness figures of one run from the server's down events; `killed` holds the stopped ids. */
function lateness(downs, killed, timeoutMs) {
  const late = [];
  const delivered = [];
  let falseDowns = 0;
  let earlyCount = 0;
  const detected = new Set();
  for (const [id, at, lastSeen, deliveredAt] of downs) {
    if (!killed.has(id)) {
      falseDowns++;
      continue;
    }
    if (detected.has(id)) continue;
    detected.add(id);
    const ms = at - (lastSeen + timeoutMs);
    if (ms < -earlyToleranceMs) earlyCount++;
    late.push(ms);
    delivered.push(deliveredAt - (lastSeen + timeoutMs));
  }
  late.sort((a, b) => a - b);
  delivered.sort((a, b) => a - b);
  return {
    p50Ms: percentile(late, 0.5),
    p99Ms: percentile(late, 0.99),
    maxMs: percentile(late, 1),
    listenerP50Ms: percentile(delivered, 0.5),
    listenerP99Ms: percentile(delivered, 0.99),
    listenerMaxMs: percentile(delivered, 1),
    earlyCount,
    falseDowns,
    eventsLost: killed.size - detected.size,
  };
}

async function once({
  contender,
  hosts,
  kill,
  timeoutMs,
  scanIntervalMs,
  intervalMs,
  cpus,
  run,
  pauseMs = 0,
}) {
  const { simulateFleet } = require(path.join(root, 'dist', 'index.js'));
  const server = await startServer({
    contender,
    cpu: cpus.server,
    hosts,
    timeoutMs,
    scanIntervalMs,
    recvBufferBytes: 8 << 20,
    recordDowns: true,
  });
  try {
    // Every host is up and beating (a few intervals) before the kill; the downs are collected
    // while the survivors still beat, well after the last deadline plus a baseline scan.
    const killAtMs = 4 * intervalMs + 400;
    // Two timeouts after the kill (or the pause): a down whose deadline fell where heartbeats may
    // have been lost comes one timeout late, flagged uncertain, and counts here with its lateness.
    const observeMs = killAtMs + pauseMs + 2 * timeoutMs + intervalMs + scanIntervalMs + 400;
    // Stopped hosts are spread over the fleet's send order by taking the block at a run-dependent
    // offset; ids are firstHostId + index.
    const firstHost = (run * 7919) % (hosts - kill + 1);
    const fleet = simulateFleet({
      server: `udp://127.0.0.1:${server.port}`,
      hosts,
      packetsPerSecond: (hosts * 1000) / intervalMs,
      durationMs: observeMs + 500,
      cpu: cpus.sender,
      seed: run + 1,
      kills: [{ hosts: kill, firstHost, atMs: killAtMs }],
    });
    if (pauseMs > 0) {
      await sleep(killAtMs);
      process.kill(server.pid, 'SIGSTOP');
      await sleep(pauseMs);
      process.kill(server.pid, 'SIGCONT');
      await sleep(observeMs - killAtMs - pauseMs);
    } else {
      await sleep(observeMs);
    }
    const { downs } = await server.ask({ cmd: 'downs' });
    await fleet;
    const killed = new Set();
    for (let i = 0; i < kill; i++) killed.add(String(1 + firstHost + i));
    return {
      bench: 'detection',
      scenario: pauseMs > 0 ? 'pause' : 'precision',
      contender,
      hosts,
      killed: kill,
      timeoutMs,
      intervalMs,
      ...(pauseMs > 0 ? { pauseMs } : {}),
      scanIntervalMs: contender === 'node-dgram' ? scanIntervalMs : null,
      ...lateness(downs, killed, timeoutMs),
    };
  } finally {
    await server.stop();
  }
}

/** Rows: one per contender, each the median of `runs` runs (worst run for the counts). */
async function precision({
  quick = false,
  runs = quick ? 3 : 5,
  contenders = serverContenders,
  cpus = defaultCpus(),
  hosts = 10_000,
  kill = 200,
  timeoutMs = 1000,
  intervalMs = 200,
  scanIntervalMs = 100,
  log,
} = {}) {
  log?.(
    `precision: ${hosts} hosts beating every ${intervalMs} ms, ${kill} stop, timeout ${timeoutMs} ms, baseline scan every ${scanIntervalMs} ms`,
  );
  const rows = await measure({
    contenders: contenders.filter((c) => serverContenders.includes(c)),
    runs,
    metrics,
    worst,
    once: (contender, run) =>
      once({ contender, hosts, kill, timeoutMs, scanIntervalMs, intervalMs, cpus, run }),
    log,
  });
  return addRatios(rows, { metrics });
}

module.exports = {
  scenario: 'precision',
  title: 'Detection precision',
  run: precision,
  lateness,
  once,
  metrics,
  worst,
  columns: [
    { field: 'p50Ms', label: 'p50 ms late', better: 'lower' },
    { field: 'p99Ms', label: 'p99 ms late', better: 'lower' },
    { field: 'maxMs', label: 'max ms late', better: 'lower' },
    { field: 'listenerP50Ms', label: 'p50 ms to listener', better: 'lower' },
    { field: 'listenerP99Ms', label: 'p99 ms to listener', better: 'lower' },
    { field: 'earlyCount', label: 'early', ratio: false },
    { field: 'falseDowns', label: 'false downs', ratio: false },
    { field: 'eventsLost', label: 'missed', ratio: false },
  ],
  // The native engine's clock counts whole milliseconds: nothing finer is claimed in the chart.
  headline: { field: 'listenerP99Ms', better: 'lower', label: 'p99 ms to listener', floor: 1 },
};
