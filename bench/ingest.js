// `npm run bench:ingest [-- --quick]`: the ingestion pipeline's two benchmarks.
//
// 1. Receiver capacity: a prefilled socket backlog drained and applied to the detector on one
//    pinned core, against a bare recvmmsg loop that only counts (bench/native/ingest_bench.cc):
//    in line on one thread, and on the engine's own receiver and worker threads (one core, and
//    the receiver on this core with the worker on the other).
// 2. Sustained load: the native fleet simulator pinned to one core sends as fast as it can for N
//    hosts; each server contender runs alone, pinned to the other core: heartwatch (native
//    engine) and the node:dgram + Map baseline (bench/baselines/dgram-map.js).
// Prints a table per scenario and one JSON line per contender and scenario.
const { spawn, spawnSync } = require('node:child_process');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');
const { parseArgs } = require('node:util');
const { root, buildNativeBench, ensurePackageBuilt } = require('./lib/build.js');

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    hosts: { type: 'string' },
    duration: { type: 'string' },
    'sender-cpu': { type: 'string', default: '0' },
    'server-cpu': { type: 'string', default: String(Math.min(1, os.cpus().length - 1)) },
    scenario: { type: 'string', default: 'all' },
    contenders: { type: 'string', default: 'heartwatch,node-dgram' },
  },
});
const quick = values.quick;
const hosts = Number(values.hosts ?? (quick ? 100_000 : 1_000_000));
const durationMs = Number(values.duration ?? (quick ? 10_000 : 60_000));
const senderCpu = Number(values['sender-cpu']);
const serverCpu = Number(values['server-cpu']);

/** Runs the capacity benchmark binary; returns its JSON rows. */
function capacity() {
  const dir = buildNativeBench('ingest_bench');
  const args = [
    '--packets',
    quick ? '200000' : '500000',
    '--hosts',
    '100000',
    '--runs',
    quick ? '3' : '7',
    '--cpu',
    String(serverCpu),
  ];
  const result = spawnSync(path.join(dir, 'ingest_bench'), args, {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  if (result.status !== 0) throw new Error(`ingest_bench exited with ${result.status}`);
  process.stdout.write(result.stdout);
  return result.stdout
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line));
}

function lines(stream) {
  const reader = readline.createInterface({ input: stream });
  const queue = [];
  const waiters = [];
  reader.on('line', (line) => {
    const waiter = waiters.shift();
    if (waiter) waiter(line);
    else queue.push(line);
  });
  return () =>
    queue.length > 0
      ? Promise.resolve(queue.shift())
      : new Promise((resolve) => waiters.push(resolve));
}

/** One contender under the simulated fleet; returns its JSON row. */
async function sustained(contender) {
  const { simulateFleet } = require(path.join(root, 'dist', 'index.js'));
  const child = spawn(
    'taskset',
    [
      '-c',
      String(serverCpu),
      process.execPath,
      path.join(__dirname, 'ingest-server.js'),
      '--contender',
      contender,
      '--hosts',
      String(hosts),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const next = lines(child.stdout);
  const { port } = JSON.parse(await next());
  const report = await simulateFleet({
    server: `udp://127.0.0.1:${port}`,
    hosts,
    packetsPerSecond: 5_000_000,
    durationMs,
    cpu: senderCpu,
  });
  await new Promise((resolve) => setTimeout(resolve, 500));
  child.kill('SIGTERM');
  const result = JSON.parse(await next());
  const seconds = report.elapsedMs / 1000;
  const lost = report.packetsSent - result.received;
  return {
    bench: 'ingest',
    scenario: 'sustained',
    contender,
    hosts,
    durationMs,
    offeredPerSecond: Number((report.packetsSent / seconds).toPrecision(4)),
    receivedPerSecond: Number((result.received / seconds).toPrecision(4)),
    // The kernel's own count where the contender can read it (SO_RXQ_OVFL), else what was sent
    // and never received: on loopback nothing else loses datagrams.
    kernelDrops: result.kernelDrops ?? lost,
    ringDrops: result.ringDrops,
    falseDowns: result.falseDowns,
    cpuNsPerHeartbeat: Math.round((result.cpuMicros * 1000) / Math.max(1, result.received)),
    rssBytesPerHost: Math.round(result.rssBytes / hosts),
  };
}

async function main() {
  ensurePackageBuilt();
  const rows = [];
  if (values.scenario === 'all' || values.scenario === 'capacity') rows.push(...capacity());
  if (values.scenario === 'all' || values.scenario === 'sustained') {
    const sustainedRows = [];
    for (const contender of values.contenders.split(',')) {
      console.error(
        `sustained: ${contender}, ${hosts} hosts, ${durationMs / 1000} s, sender on cpu ${senderCpu}, server on cpu ${serverCpu}`,
      );
      const row = await sustained(contender);
      sustainedRows.push(row);
    }
    console.log(
      '| contender | offered/s | received/s | kernel drops | ring drops | false downs | CPU ns/heartbeat | RSS bytes/host |',
    );
    console.log('|---|---|---|---|---|---|---|---|');
    for (const r of sustainedRows) {
      console.log(
        `| ${r.contender} | ${r.offeredPerSecond} | ${r.receivedPerSecond} | ${r.kernelDrops} | ${r.ringDrops} | ${r.falseDowns} | ${r.cpuNsPerHeartbeat} | ${r.rssBytesPerHost} |`,
      );
    }
    for (const r of sustainedRows) console.log(JSON.stringify(r));
    rows.push(...sustainedRows);
  }
  return rows;
}

if (require.main === module) {
  main().catch((error) => {
    console.error(error);
    process.exit(1);
  });
}

module.exports = { main };
