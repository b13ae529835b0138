// Mass failure: `dead` hosts stop at the same moment while `survivors` keep beating; how long
// until the last of them is reported to a JS listener, whether any is never reported, and whether
// the survivors' heartbeats still get through meanwhile.
//
// lastEventMs runs from the kill (the simulator's clock, in the parent) to the moment the last
// dead host's down event reached the server's listener (the server's clock): both are
// performance.timeOrigin + performance.now(), CLOCK_MONOTONIC shifted to the epoch once per
// process, so they agree to well under a millisecond. It includes the timeout itself: a host
// that beat just before the kill is due timeoutMs later. afterDeadlineMs is the worst lateness of
// one dead host's event past its own deadline (lastSeen + timeoutMs), on the server's clock.
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
  'lastEventMs',
  'afterDeadlineMs',
  'eventsLost',
  'kernelDrops',
  'ringDrops',
  'falseDowns',
];
const worst = ['eventsLost', 'kernelDrops', 'ringDrops', 'falseDowns'];

async function once({ contender, dead, survivors, intervalMs, timeoutMs, scanIntervalMs, cpus }) {
  const { simulateFleet } = require(path.join(root, 'dist', 'index.js'));
  const hosts = dead + survivors;
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
    const killAtMs = 3 * intervalMs;
    // Past the last deadline (kill + timeout) by a baseline scan and a second for the events.
    const observeMs = killAtMs + timeoutMs + scanIntervalMs + 1000;
    const fleet = simulateFleet({
      server: `udp://127.0.0.1:${server.port}`,
      hosts,
      packetsPerSecond: (hosts * 1000) / intervalMs,
      durationMs: observeMs + 300,
      cpu: cpus.sender,
      kills: [{ hosts: dead, firstHost: 0, atMs: killAtMs }],
    });
    await sleep(observeMs);
    const { downs } = await server.ask({ cmd: 'downs' });
    const report = await fleet;
    await sleep(300);
    const after = await server.ask({ cmd: 'stats' });
    const killedAt = performance.timeOrigin + report.kills[0].at;
    const reported = new Set();
    let lastDelivered = Number.NEGATIVE_INFINITY;
    let afterDeadlineMs = Number.NEGATIVE_INFINITY;
    let falseDowns = 0;
    for (const [id, , lastSeen, deliveredAt] of downs) {
      // Dead hosts are ids 1..dead (firstHostId 1, hosts 0..dead-1).
      if (Number(id) > dead) {
        falseDowns++;
        continue;
      }
      reported.add(id);
      lastDelivered = Math.max(lastDelivered, deliveredAt);
      afterDeadlineMs = Math.max(afterDeadlineMs, deliveredAt - (lastSeen + timeoutMs));
    }
    return {
      bench: 'detection',
      scenario: 'mass-failure',
      contender,
      hosts: dead,
      survivors,
      intervalMs,
      timeoutMs,
      lastEventMs: reported.size > 0 ? lastDelivered - killedAt : null,
      afterDeadlineMs: reported.size > 0 ? afterDeadlineMs : null,
      eventsLost: dead - reported.size,
      // Sent and never received (the survivors', and the dead hosts' before the kill).
      kernelDrops: report.packetsSent - after.received,
      ringDrops: after.ringDrops,
      falseDowns,
    };
  } finally {
    await server.stop();
  }
}

/** Rows: one per contender, each the median of `runs` runs (worst run for the counts). */
async function massFailure({
  quick = false,
  runs = quick ? 3 : 5,
  contenders = serverContenders,
  cpus = defaultCpus(),
  dead = quick ? 20_000 : 100_000,
  survivors = 20_000,
  intervalMs = quick ? 500 : 1000,
  timeoutMs = 3 * intervalMs,
  scanIntervalMs = 100,
  log,
} = {}) {
  log?.(
    `mass failure: ${dead} of ${dead + survivors} hosts stop at once, beats every ${intervalMs} ms, timeout ${timeoutMs} ms`,
  );
  const rows = await measure({
    contenders: contenders.filter((c) => serverContenders.includes(c)),
    runs,
    metrics,
    worst,
    once: (contender) =>
      once({ contender, dead, survivors, intervalMs, timeoutMs, scanIntervalMs, cpus }),
    log,
  });
  return addRatios(rows, { metrics });
}

module.exports = {
  scenario: 'mass-failure',
  title: 'Mass failure',
  run: massFailure,
  columns: [
    { field: 'hosts', label: 'hosts that stop', ratio: false },
    { field: 'survivors', label: 'survivors', ratio: false },
    { field: 'timeoutMs', label: 'timeout ms', ratio: false },
    { field: 'lastEventMs', label: 'last event ms', better: 'lower' },
    { field: 'afterDeadlineMs', label: 'worst ms after deadline', better: 'lower' },
    { field: 'eventsLost', label: 'events lost', ratio: false },
    { field: 'kernelDrops', label: 'kernel drops', ratio: false },
    { field: 'ringDrops', label: 'ring drops', ratio: false },
    { field: 'falseDowns', label: 'false downs', ratio: false },
  ],
  headline: { field: 'afterDeadlineMs', better: 'lower', label: 'ms past deadline', floor: 1 },
};
