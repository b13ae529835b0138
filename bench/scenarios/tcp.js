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
const { spawn } = require('node:child_process');
const path = require('node:path');
const { addRatios, defaultCpus, measure } = require('../lib/suite.js');

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

/** One run of bench/tcp-fleet.js; resolves with its JSON line as a row. */
function once({ contender, hosts, payloadBytes, seconds, cpus }) {
  const { server, transport } = contenderRuns[contender];
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
  ];
  return new Promise((resolve, reject) => {
    const child = spawn('taskset', args, { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.on('error', reject);
    child.on('close', (code) => {
      const line = out.trim().split('\n').pop() ?? '';
      if (code !== 0 || !line.startsWith('{')) {
        reject(new Error(`${contender}: tcp-fleet exited ${code} (${line})`));
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
        metrics,
        worst: ['downsWhileBeating'],
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
  keys: ['payloadBytes'],
  columns: [
    { field: 'transport', label: 'transport', ratio: false },
    { field: 'hosts', label: 'hosts', ratio: false },
    { field: 'payloadBytes', label: 'payload bytes', ratio: false },
    { field: 'heartbeatsPerSecond', label: 'heartbeats/s', ratio: false },
    { field: 'cpuNsPerHeartbeat', label: 'CPU ns/heartbeat (transport thread)', better: 'lower' },
    { field: 'rssGrowthBytesPerHost', label: 'RSS bytes/connection', better: 'lower' },
    { field: 'downsWhileBeating', label: 'false downs', ratio: false },
  ],
  headline: { field: 'cpuNsPerHeartbeat', better: 'lower', label: 'CPU ns/heartbeat' },
};
