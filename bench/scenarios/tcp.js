// TCP transport: heartwatch's reactor against its UDP receiver on the same fleet, and both
// against the hand-written baselines (the Map detector behind node:net for TCP, node:dgram for
// UDP). Each run is `bench/tcp-fleet.js` in a child process: the server in that process, pinned to
// the server core, and `heartwatch simulate` holding one connection per host (or sending UDP),
// every host beating once a second. Fleets go as high as the descriptor limit allows (one process
// may hold about 20,000 here), with 1 KB and 16 KB payload variants.
//
// Goals (issue 12): user-space memory per connection <= 256 bytes; a reactor core sustains >= 50%
// of the UDP receiver's heartbeats/s for small frames: read `cpuNsPerHeartbeat` of
// heartwatch-native against heartwatch-native-tcp (the offered rate is the same for both).
//
// Idle-connection reaping (heartwatch-native-tcp only; `node:net` has no idle timeout, so its
// figures are n/a): after the steady window one host in 20 goes silent, its connection left open,
// and the reactor's deadline wheel resets it `tcp.idleTimeoutMs` after its last frame; with
// `tcp.closeMeansDown` each reset is a 'disconnected' down (bench/tcp-fleet.js `--reap`).
const { spawn } = require('node:child_process');
const path = require('node:path');
const { addRatios, defaultCpus, measure, percentile } = require('../lib/suite.js');
const { watchChild } = require('../lib/wait.js');

const contenderRuns = {
  'heartwatch-native': { server: 'heartwatch', transport: 'udp' },
  'heartwatch-native-tcp': { server: 'heartwatch', transport: 'tcp' },
  'node-dgram': { server: 'baseline', transport: 'udp' },
  'node-net': { server: 'baseline', transport: 'tcp' },
};

const metrics = [
  'heartbeatsPerSecond',
  'cpuNsPerHeartbeat',
  'rssGrowthBytesPerHost',
  'downsWhileBeating',
];
// Reaping figures: medians, but counts whose target is zero quote the worst run. No ratios: the
// baseline (node-dgram) has no connections.
const reapMetrics = [
  'idleReaped',
  'idleMinMs',
  'idleP50Ms',
  'idleP99Ms',
  'idleMaxMs',
  'idleEarly',
  'idleMissed',
  'idleOtherDowns',
  'idleCloses',
];
const worst = ['downsWhileBeating', 'idleEarly', 'idleMissed', 'idleOtherDowns'];
// A reap earlier than its deadline by more than 1 us (an epoch-ms double's resolution) is early.
const earlyToleranceMs = 0.001;

/**
 * Reaping figures from the down events seen after the steady window (`{ id, reason, at,
 * lastSeen }`): each silenced host's first 'disconnected' down is a reap, late by at -
 * (lastSeen + idleTimeoutMs); a silenced host without one is missed; any other down (a beating
 * host's, or a silenced host's timeout) is counted apart.
 */
function idleReaping(downs, silenced, idleTimeoutMs) {
  const late = [];
  const reaped = new Set();
  let idleEarly = 0;
  let idleOtherDowns = 0;
  for (const { id, reason, at, lastSeen } of downs) {
    if (reason !== 'disconnected' || !silenced.has(id)) {
      idleOtherDowns++;
      continue;
    }
    if (reaped.has(id)) continue;
    reaped.add(id);
    const ms = at - (lastSeen + idleTimeoutMs);
    if (ms < -earlyToleranceMs) idleEarly++;
    late.push(ms);
  }
  late.sort((a, b) => a - b);
  return {
    idleSilenced: silenced.size,
    idleReaped: reaped.size,
    idleMinMs: late.length === 0 ? null : late[0],
    idleP50Ms: percentile(late, 0.5),
    idleP99Ms: percentile(late, 0.99),
    idleMaxMs: percentile(late, 1),
    idleEarly,
    idleMissed: silenced.size - reaped.size,
    idleOtherDowns,
  };
}

/**
 * One run of bench/tcp-fleet.js; resolves with its JSON line as a row, or rejects (the run failed)
 * with its exit code and the end of its stderr, which says what went wrong.
 */
function once({ contender, hosts, payloadBytes, seconds, cpus }) {
  const { server, transport } = contenderRuns[contender];
  const reap =
    server === 'heartwatch' && transport === 'tcp' ? Math.max(1, Math.round(hosts / 20)) : 0;
  const args = [
    '-c',
    String(cpus.server),
    process.execPath,
    path.join(__dirname, '..', 'tcp-fleet.js'),
    '--server',
    server,
    '--transport',
    transport,
    '--hosts',
    String(hosts),
    '--payload',
    String(payloadBytes),
    '--seconds',
    String(seconds),
    '--reap',
    String(reap),
  ];
  return new Promise((resolve, reject) => {
    const child = spawn('taskset', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const watched = watchChild(child, 'tcp-fleet', { echo: false });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.on('error', reject);
    watched.exited.then(({ code }) => {
      const line = out.trim().split('\n').pop() ?? '';
      if (code !== 0 || !line.startsWith('{')) {
        reject(new Error(`${contender}, ${hosts} hosts: ${watched.describeExit()}`));
        return;
      }
      resolve({ bench: 'tcp', scenario: 'tcp', contender, ...JSON.parse(line) });
    });
  });
}

/** Rows: one per contender and payload size, each the median of `runs` runs, with `vsBaseline`. */
async function tcpScenario({
  quick = false,
  runs = quick ? 3 : 5,
  contenders = Object.keys(contenderRuns),
  cpus = defaultCpus(),
  log,
} = {}) {
  const fleets = quick
    ? [
        { hosts: 2000, payloadBytes: 0 },
        { hosts: 2000, payloadBytes: 1024 },
        { hosts: 1000, payloadBytes: 16_384 },
      ]
    : [
        { hosts: 19_000, payloadBytes: 0 },
        { hosts: 19_000, payloadBytes: 1024 },
        { hosts: 5000, payloadBytes: 16_384 },
      ];
  const seconds = quick ? 8 : 15;
  const rows = [];
  for (const { hosts, payloadBytes } of fleets) {
    log?.(`tcp: ${hosts} hosts, ${payloadBytes}-byte payloads, ${seconds} s per run`);
    rows.push(
      ...(await measure({
        contenders: contenders.filter((c) => c in contenderRuns),
        runs,
        keys: ['payloadBytes'],
        metrics: [...metrics, ...reapMetrics],
        worst,
        once: (contender) => once({ contender, hosts, payloadBytes, seconds, cpus }),
        log,
      })),
    );
  }
  return addRatios(rows, { keys: ['payloadBytes'], metrics });
}

module.exports = {
  scenario: 'tcp',
  title: 'TCP transport (one connection per host, a beat per host per second)',
  run: tcpScenario,
  idleReaping,
  keys: ['payloadBytes'],
  columns: [
    { field: 'transport', label: 'transport', ratio: false },
    { field: 'hosts', label: 'hosts', ratio: false },
    { field: 'payloadBytes', label: 'payload bytes', ratio: false },
    { field: 'heartbeatsPerSecond', label: 'heartbeats/s', ratio: false },
    { field: 'cpuNsPerHeartbeat', label: 'CPU ns/heartbeat (transport thread)', better: 'lower' },
    { field: 'rssGrowthBytesPerHost', label: 'RSS bytes/connection', better: 'lower' },
    { field: 'downsWhileBeating', label: 'false downs', ratio: false },
    { field: 'idleReaped', label: 'idle reaped', ratio: false, absent: 'n/a' },
    { field: 'idleMinMs', label: 'reap min ms late', ratio: false, absent: 'n/a' },
    { field: 'idleP50Ms', label: 'reap p50 ms late', ratio: false, absent: 'n/a' },
    { field: 'idleP99Ms', label: 'reap p99 ms late', ratio: false, absent: 'n/a' },
    { field: 'idleMaxMs', label: 'reap max ms late', ratio: false, absent: 'n/a' },
    { field: 'idleEarly', label: 'reaped early', ratio: false, absent: 'n/a' },
    { field: 'idleMissed', label: 'not reaped', ratio: false, absent: 'n/a' },
  ],
  headline: { field: 'cpuNsPerHeartbeat', better: 'lower', label: 'CPU ns/heartbeat' },
};
