// Churn: hosts join and leave all the time. Every `everyMs` a new generation of `hostsPerGeneration`
// hosts (new ids: each generation is a simulator run with its own firstHostId) starts beating;
// each generation lives `lifeMs`, then half of it leaves cleanly (a LEAVE heartbeat) and half
// goes quiet (a timeout). About lifeMs / everyMs generations are alive at any time.
//
// heartwatch runs with forgetAfterMs, so a departed host is dropped from its table and its memory
// reused: trackedHostsMax should stay near the live population while hostsSeen keeps growing.
// The baseline has no such option (a plain Map keeps every host it has seen); that is part of
// what is compared. rssGrowthBytes is the RSS added once the live population is steady (from the
// generation that starts after the first departures have been forgotten, to the last one).
const path = require('node:path');
const { performance } = require('node:perf_hooks');
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
  'heartbeatsPerSecond',
  'eventsPerSecond',
  'cpuNsPerHeartbeat',
  'kernelDrops',
  'ringDrops',
  'trackedHostsMax',
  'trackedHostsEnd',
  'rssGrowthBytes',
];

async function once({ contender, plan, cpus }) {
  const { simulateFleet } = require(path.join(root, 'dist', 'index.js'));
  const { generations, hostsPerGeneration: w, everyMs, lifeMs, timeoutMs, forgetAfterMs } = plan;
  const server = await startServer({
    contender,
    cpu: cpus.server,
    hosts: w * generations,
    timeoutMs,
    scanIntervalMs: 100,
    forgetAfterMs,
    recvBufferBytes: 8 << 20,
  });
  try {
    const half = w >> 1;
    const leaveAtMs = Math.floor(lifeMs - everyMs / 2);
    const samples = [];
    const fleets = [];
    const start = performance.now();
    for (let g = 0; g < generations; g++) {
      samples.push(await server.ask({ cmd: 'stats' }));
      fleets.push(
        simulateFleet({
          server: `udp://127.0.0.1:${server.port}`,
          hosts: w,
          firstHostId: BigInt(1 + g * w),
          packetsPerSecond: (w * 1000) / everyMs,
          durationMs: lifeMs,
          cpu: cpus.sender,
          seed: g + 1,
          kills: [
            { hosts: half, firstHost: 0, atMs: leaveAtMs, leave: true },
            { hosts: w - half, firstHost: half, atMs: leaveAtMs },
          ],
        }),
      );
      await sleep(start + (g + 1) * everyMs - performance.now());
    }
    const reports = await Promise.all(fleets);
    const sendingMs = performance.now() - start;
    // The last hosts time out, then are forgotten.
    await sleep(timeoutMs + forgetAfterMs + 500);
    const end = await server.ask({ cmd: 'stats' });
    const elapsedMs = performance.now() - start;
    const sent = reports.reduce((sum, r) => sum + r.packetsSent, 0);
    // Steady from the generation that starts once the first one has left and been forgotten.
    const steady = Math.min(
      samples.length - 1,
      Math.ceil((lifeMs + timeoutMs + forgetAfterMs) / everyMs),
    );
    return {
      bench: 'churn',
      scenario: 'churn',
      contender,
      hostsPerGeneration: w,
      generations,
      hostsSeen: w * generations,
      everyMs,
      lifeMs,
      forgetAfterMs: contender === 'node-dgram' ? null : forgetAfterMs,
      heartbeatsPerSecond: end.received / (sendingMs / 1000),
      eventsPerSecond: (end.ups + end.downs) / (elapsedMs / 1000),
      // The server's CPU time over the whole run (heartbeats, events, expiry, forgetting).
      cpuNsPerHeartbeat:
        ((end.cpuMicros - samples[0].cpuMicros) * 1000) / Math.max(1, end.received),
      kernelDrops: sent - end.received,
      ringDrops: end.ringDrops,
      trackedHostsMax: Math.max(...samples.map((s) => s.trackedHosts)),
      trackedHostsEnd: end.trackedHosts,
      rssGrowthBytes: samples[samples.length - 1].rssBytes - samples[steady].rssBytes,
    };
  } finally {
    await server.stop();
  }
}

/** Rows: one per contender, each the median of `runs` runs, with `vsBaseline`. */
async function churn({
  quick = false,
  runs = quick ? 3 : 5,
  contenders = serverContenders,
  cpus = defaultCpus(),
  plan = quick
    ? { generations: 10, hostsPerGeneration: 6000, everyMs: 300, lifeMs: 900 }
    : { generations: 20, hostsPerGeneration: 20_000, everyMs: 500, lifeMs: 1500 },
  log,
} = {}) {
  const full = { timeoutMs: 2 * plan.everyMs, forgetAfterMs: plan.everyMs, ...plan };
  log?.(
    `churn: ${full.generations} generations of ${full.hostsPerGeneration} hosts, one every ${full.everyMs} ms, each living ${full.lifeMs} ms; timeout ${full.timeoutMs} ms, forgetAfterMs ${full.forgetAfterMs}`,
  );
  const rows = await measure({
    contenders: contenders.filter((c) => serverContenders.includes(c)),
    runs,
    metrics,
    once: (contender) => once({ contender, plan: full, cpus }),
    log,
  });
  return addRatios(rows, { metrics });
}

module.exports = {
  scenario: 'churn',
  title: 'Churn',
  run: churn,
  columns: [
    { field: 'hostsSeen', label: 'hosts seen', ratio: false },
    { field: 'heartbeatsPerSecond', label: 'heartbeats/s', better: 'higher' },
    { field: 'eventsPerSecond', label: 'events/s', better: 'higher' },
    { field: 'cpuNsPerHeartbeat', label: 'CPU ns/heartbeat', better: 'lower' },
    { field: 'kernelDrops', label: 'kernel drops', ratio: false },
    { field: 'trackedHostsMax', label: 'tracked hosts (max)', better: 'lower' },
    { field: 'trackedHostsEnd', label: 'tracked hosts (end)', ratio: false },
    { field: 'rssGrowthBytes', label: 'RSS growth bytes', better: 'lower' },
  ],
  headline: { field: 'cpuNsPerHeartbeat', better: 'lower', label: 'CPU ns/heartbeat' },
};
