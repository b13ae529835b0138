// The TCP transport against UDP on the same fleet, one transport thread each: a heartwatch
// server (native engine, 1 receiver, 1 reactor, 1 worker) in this process, and
// `heartwatch simulate` in a child process holding one connection per host (or sending UDP).
//
//   node bench/tcp-fleet.js [--hosts 19500] [--payload 0] [--seconds 20] [--transport tcp|udp]
//
// Prints one JSON line: heartbeats/s, CPU ns per heartbeat on the transport thread (hw-tcp-0 or
// hw-rx-0, from /proc over the steady window after every connection is up), RSS growth per
// connection, and the down events seen while the fleet was beating (false downs: should be 0).
// Hosts are limited by the descriptor limit of each process (hard RLIMIT_NOFILE).
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { parseArgs } = require('node:util');
const { Heartwatch } = require('../dist/index.js');

const { values } = parseArgs({
  options: {
    hosts: { type: 'string', default: '19500' },
    payload: { type: 'string', default: '0' },
    seconds: { type: 'string', default: '20' },
    transport: { type: 'string', default: 'tcp' },
  },
});
const hosts = Number(values.hosts);
const seconds = Number(values.seconds);
const tcp = values.transport === 'tcp';
const tick = 1e9 / 100; // ns per clock tick (USER_HZ)

function threadTicks(name) {
  for (const task of fs.readdirSync('/proc/self/task')) {
    const dir = `/proc/self/task/${task}`;
    if (fs.readFileSync(`${dir}/comm`, 'utf8').trim() !== name) continue;
    const fields = fs.readFileSync(`${dir}/stat`, 'utf8').split(') ')[1].split(' ');
    return Number(fields[11]) + Number(fields[12]);
  }
  throw new Error(`no thread ${name}`);
}

const rssKb = () => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))[1]);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function main() {
  const hw = new Heartwatch({
    host: '127.0.0.1',
    port: 0,
    engine: 'native',
    receivers: 1,
    workers: 1,
    timeoutMs: 5000,
    missedBeats: 0,
    ...(tcp ? { tcp: { port: 0, reactors: 1 } } : {}),
  });
  let downs = 0;
  hw.on('down', () => downs++);
  const info = await hw.listen();
  const rssBefore = rssKb();
  const port = tcp ? info.tcpPort : info.port;
  const child = spawn(
    process.execPath,
    [
      path.join(__dirname, '..', 'dist', 'cli', 'main.js'),
      'simulate',
      '--to',
      `127.0.0.1:${port}`,
      '--transport',
      values.transport,
      '--hosts',
      String(hosts),
      '--rate',
      String(hosts),
      '--payload-bytes',
      values.payload,
      '--duration',
      `${seconds}s`,
      '--json',
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  child.stdout.on('data', (d) => {
    out += d;
  });
  const exited = new Promise((resolve) => child.on('close', resolve));
  const count = () => (tcp ? hw.stats().tcp.frames : hw.stats().received);
  const thread = tcp ? 'hw-tcp-0' : 'hw-rx-0';
  // Steady window: from when every host has beaten once to 2 s before the run ends.
  while (hw.stats().hostsUp < hosts) await sleep(100);
  const rssFleet = rssKb();
  const c0 = threadTicks(thread);
  const n0 = count();
  const t0 = process.hrtime.bigint();
  await sleep(Math.max(1000, (seconds - 4) * 1000));
  const c1 = threadTicks(thread);
  const n1 = count();
  const t1 = process.hrtime.bigint();
  const downsWhileBeating = downs;
  await exited;
  const report = JSON.parse(out);
  const stats = hw.stats();
  await hw.close();
  const beats = n1 - n0;
  console.log(
    JSON.stringify({
      transport: values.transport,
      hosts,
      payloadBytes: Number(values.payload),
      heartbeatsPerSecond: Math.round((beats * 1e9) / Number(t1 - t0)),
      cpuNsPerHeartbeat: Math.round(((c1 - c0) * tick) / Math.max(1, beats)),
      rssGrowthBytesPerHost: Math.round(((rssFleet - rssBefore) * 1024) / hosts),
      downsWhileBeating,
      simulatorSendErrors: report.sendErrors,
      tcp:
        stats.tcp === null
          ? null
          : {
              accepted: stats.tcp.accepted,
              protocolErrors: stats.tcp.protocolErrors,
              descriptorLimit: stats.tcp.descriptorLimit,
            },
    }),
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
