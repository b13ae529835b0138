// One run of the peers-pause work against heartwatch (native), printed down by down with the
// evidence that says whose each down is: what the server saw (lastSeen, `uncertain`, kernel and
// ring drops) and what the fleet simulator sent (each host it left silent longer than the
// timeout). For telling a detector's false down from a sender's late beat (bench/README.md,
// "peers-pause: where heartwatch's false downs came from").
//
//   node bench/peers/pause-probe.js [--hosts 1000] [--pause-ms 2000] [--seed 1]
//        [--receive-backend auto|recvmmsg|io_uring] [--server-root DIR]
//
// --server-root runs the server (bench/ingest-server.js and the addon it loads) from another
// built checkout, e.g. an older commit; the simulator is always this tree's. Prints one JSON
// object: times are ms from the SIGSTOP.
//
// Runs on: its main thread; the simulator on its own thread, pinned to the sender CPU.
const fs = require('node:fs');
const path = require('node:path');
const { performance } = require('node:perf_hooks');
const { parseArgs } = require('node:util');
const { root } = require('../lib/build.js');
const { senderLate } = require('./sender-gaps.js');

const { values } = parseArgs({
  options: {
    hosts: { type: 'string', default: '1000' },
    'pause-ms': { type: 'string', default: '2000' },
    seed: { type: 'string', default: '1' },
    'receive-backend': { type: 'string', default: 'auto' },
    'server-root': { type: 'string', default: root },
  },
});
const hosts = Number(values.hosts);
const pauseMs = Number(values['pause-ms']);
const intervalMs = 1000;
const timeoutMs = 3000;
const { defaultCpus, sleep, startServer } = require(
  path.join(path.resolve(values['server-root']), 'bench', 'lib', 'suite.js'),
);
const { simulateFleet } = require(path.join(root, 'dist', 'index.js'));
const epochNow = () => performance.timeOrigin + performance.now();

/**
 * The machine's own loss counters, which no socket sees: datagrams dropped before they reach
 * one (a CPU's backlog full while its softirq work waits: /proc/net/softnet_stat, per CPU) and
 * UDP's totals (/proc/net/snmp). Machine-wide: other traffic counts too.
 */
function kernelCounters() {
  const backlogDrops = fs
    .readFileSync('/proc/net/softnet_stat', 'utf8')
    .trim()
    .split('\n')
    .map((line) => Number.parseInt(line.split(/\s+/)[1], 16));
  const udp = fs
    .readFileSync('/proc/net/snmp', 'utf8')
    .split('\n')
    .filter((line) => line.startsWith('Udp:'))
    .map((line) => line.split(/\s+/).slice(1));
  return { backlogDrops, udp: Object.fromEntries(udp[0].map((k, i) => [k, Number(udp[1][i])])) };
}

function counterDelta(before, after) {
  return {
    backlogDropsPerCpu: after.backlogDrops.map((n, i) => n - before.backlogDrops[i]),
    udp: Object.fromEntries(Object.entries(after.udp).map(([k, n]) => [k, n - before.udp[k]])),
  };
}

/** The run: steady after 3 beats, the server stopped one interval later, observed 2 timeouts. */
async function probe(cpus) {
  const server = await startServer({
    ...{ contender: 'heartwatch-native', cpu: cpus.server, hosts, timeoutMs },
    ...{ scanIntervalMs: 100, recvBufferBytes: 8 << 20, recordDowns: true },
    receiveBackend: values['receive-backend'],
  });
  // Until the downs are read, as in run-heartwatch.js: the sender outlasts the observation.
  const sending = new AbortController();
  const fleet = simulateFleet({
    ...{ server: `udp://127.0.0.1:${server.port}`, hosts, cpu: cpus.sender },
    ...{ packetsPerSecond: (hosts * 1000) / intervalMs, durationMs: 0, signal: sending.signal },
    ...{ seed: Number(values.seed), longGapMs: timeoutMs },
  });
  await sleep(3 * intervalMs);
  const before = await server.ask({ cmd: 'stats' });
  const countersBefore = kernelCounters();
  await sleep(intervalMs);
  const stoppedAt = epochNow();
  process.kill(server.pid, 'SIGSTOP');
  await sleep(pauseMs);
  const resumedAt = epochNow();
  process.kill(server.pid, 'SIGCONT');
  await sleep(2 * timeoutMs);
  const after = await server.ask({ cmd: 'stats' });
  const counters = counterDelta(countersBefore, kernelCounters());
  const { downs } = await server.ask({ cmd: 'downs' });
  sending.abort();
  const report = await fleet;
  await server.stop();
  return { before, after, counters, downs, report, stoppedAt, resumedAt };
}

async function main() {
  const { before, after, counters, downs, report, stoppedAt, resumedAt } = await probe(
    defaultCpus(),
  );
  const epoch = (at) => performance.timeOrigin + at;
  const gaps = new Map(
    report.longGaps.map((g) => [
      String(1 + g.host),
      [epoch(g.endedAt - g.gapMs), epoch(g.endedAt)],
    ]),
  );
  const rel = (t) => Math.round(t - stoppedAt);
  const listed = downs.map(([id, at, lastSeen, , uncertain]) => ({
    ...{ id, at: rel(at), lastSeen: rel(lastSeen), uncertain: uncertain ?? null },
    senderGap: gaps.has(id) ? gaps.get(id).map(rel) : null,
    senderLate: senderLate([id, at, lastSeen], gaps, timeoutMs),
  }));
  const late = listed.filter((d) => d.senderLate).length;
  const result = {
    ...{ hosts, pauseMs: Math.round(resumedAt - stoppedAt), serverRoot: values['server-root'] },
    receiveBackend: after.receiveBackend ?? null,
    senderEnded: rel(epoch(report.startedAt + report.elapsedMs)),
    ...{
      sent: report.packetsSent,
      sendErrors: report.sendErrors,
      hostsSilentOverTimeout: gaps.size,
    },
    received: after.received - before.received,
    kernelDrops: after.kernelDrops - before.kernelDrops,
    ringDrops: after.ringDrops - before.ringDrops,
    machine: counters,
    ...{ downs: listed.length, falseDowns: listed.length - late, senderLateDowns: late },
    list: listed,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
