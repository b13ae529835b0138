// The TCP transport against UDP on the same fleet, one transport thread each: a server in this
// process (heartwatch's native engine with 1 receiver, 1 reactor and 1 worker; or a baseline, the
// hand-written Map detector behind node:net for TCP or node:dgram for UDP, on the JS thread), and
// `heartwatch simulate` in a child process holding one connection per host (or sending UDP).
//
//   node bench/tcp-fleet.js [--hosts 19500] [--payload 0] [--seconds 20] [--transport tcp|udp]
//                           [--server heartwatch|baseline] [--reap 0]
//
// Prints one JSON line: heartbeats/s, CPU ns per heartbeat on the transport thread (hw-tcp-0 or
// hw-rx-0; the JS thread for a baseline, from /proc over the steady window after every connection
// is up), RSS growth per connection, and the down events seen while the fleet was beating (false
// downs: should be 0).
//
// `--reap N` (heartwatch over TCP only) also times idle-connection reaping: the server runs with
// `tcp.idleTimeoutMs` 3000 (below the hosts' 5 s timeout, 2 s above their 1 s interval) and
// `tcp.closeMeansDown`; once the steady window is over, the simulator's kill plan silences hosts
// 1..N, their connections staying open. The reactor's deadline wheel then resets each one, and
// its host goes down 'disconnected': lateness is down.at - (lastSeen + idleTimeoutMs), on the
// engine's clock, as the precision scenario times a timeout (bench/scenarios/tcp.js `idleReaping`).
// The idle timeout holds for the whole run: each connection's lazy deadline is re-filed about
// every third frame instead of once a minute.
// Hosts are limited by the descriptor limit of each process (hard RLIMIT_NOFILE).
//
// Never waits without bound: if the simulator exits (a connection it could not open ends it)
// or overruns its run, this exits 1 saying how many hosts came up and what the simulator said.
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { parseArgs } = require('node:util');
const { Heartwatch } = require('../dist/index.js');
const { startDgramMap } = require('./baselines/dgram-map.js');
const { startNetMap } = require('./baselines/net-map.js');
const { watchChild, waitUntil } = require('./lib/wait.js');
const { idleReaping } = require('./scenarios/tcp.js');

const { values } = parseArgs({
  options: {
    hosts: { type: 'string', default: '19500' },
    payload: { type: 'string', default: '0' },
    seconds: { type: 'string', default: '20' },
    transport: { type: 'string', default: 'tcp' },
    server: { type: 'string', default: 'heartwatch' },
    reap: { type: 'string', default: '0' },
  },
});
const hosts = Number(values.hosts);
const seconds = Number(values.seconds);
const tcp = values.transport === 'tcp';
const reap = Number(values.reap);
const idleTimeoutMs = 3000;
// The silenced hosts stop where the run used to end: 2 s or more after the steady window.
const killAtMs = seconds * 1000;
// The reaping window closes this long after the last reap is due. The simulator keeps beating
// (and holding every connection) 3 s longer: its own closes at exit must not fall in the window,
// which is counted from when every host was up, up to a second after the simulator's clock began.
const reapSlackMs = 2000;
const durationMs = reap > 0 ? killAtMs + idleTimeoutMs + reapSlackMs + 3000 : killAtMs;
// The simulator's start (a process, then every connection) and exit, beyond its run's duration.
const simulatorSlackMs = 15_000;
const tick = 1e9 / 100; // ns per clock tick (USER_HZ)

/** CPU ticks of the thread named `name`, or of the JS thread (the one whose id is the pid). */
function threadTicks(name) {
  for (const task of fs.readdirSync('/proc/self/task')) {
    const dir = `/proc/self/task/${task}`;
    const found =
      name === 'js'
        ? Number(task) === process.pid
        : fs.readFileSync(`${dir}/comm`, 'utf8').trim() === name;
    if (!found) continue;
    const fields = fs.readFileSync(`${dir}/stat`, 'utf8').split(') ')[1].split(' ');
    return Number(fields[11]) + Number(fields[12]);
  }
  throw new Error(`no thread ${name}`);
}

const rssKb = () => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))[1]);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The server under test: { port, received(), hostsUp(), thread, close(), tcpStats(),
 * tcpCounters() (the whole `stats().tcp`, or null) }; `onDown(event)` gets each down event.
 */
async function startServer(onDown) {
  if (values.server === 'baseline') {
    const start = tcp ? startNetMap : startDgramMap;
    const onEvent = (event) => event.type === 'down' && onDown(event);
    const server = await start({ host: '127.0.0.1', port: 0, timeoutMs: 5000, onEvent });
    return {
      port: server.port,
      received: () => server.stats().received,
      hostsUp: () => server.stats().hostsUp,
      thread: 'js',
      close: () => server.close(),
      tcpStats: () => null,
      tcpCounters: () => null,
    };
  }
  const hw = new Heartwatch({
    host: '127.0.0.1',
    port: 0,
    engine: 'native',
    receivers: 1,
    workers: 1,
    timeoutMs: 5000,
    missedBeats: 0,
    ...(tcp
      ? {
          tcp: {
            port: 0,
            reactors: 1,
            ...(reap > 0 ? { idleTimeoutMs, closeMeansDown: true } : {}),
          },
        }
      : {}),
  });
  hw.on('down', onDown);
  const info = await hw.listen();
  return {
    port: tcp ? info.tcpPort : info.port,
    received: () => (tcp ? hw.stats().tcp.frames : hw.stats().received),
    hostsUp: () => hw.stats().hostsUp,
    thread: tcp ? 'hw-tcp-0' : 'hw-rx-0',
    close: () => hw.close(),
    tcpStats: () => {
      const stats = hw.stats().tcp;
      return stats === null
        ? null
        : {
            accepted: stats.accepted,
            protocolErrors: stats.protocolErrors,
            descriptorLimit: stats.descriptorLimit,
          };
    },
    tcpCounters: () => hw.stats().tcp,
  };
}

/**
 * After the steady window: waits until every silenced host went down 'disconnected', or until the
 * last reap is `reapSlackMs` overdue (counted from `simStartMs`, at or after the simulator's clock
 * started), then returns the reaping figures with the reactor's own count of idle closes.
 */
async function watchReaping(server, reaped, downsAfterSteady, silenced, simStartMs) {
  const until = simStartMs + killAtMs + idleTimeoutMs + reapSlackMs;
  while (reaped.size < silenced.size && performance.now() < until) await sleep(20);
  const counters = server.tcpCounters();
  if (counters.closedByPeer > 0) {
    throw new Error(
      `the reaping window overlapped the simulator's exit (${counters.closedByPeer} peer closes)`,
    );
  }
  return {
    idleTimeoutMs,
    ...idleReaping(downsAfterSteady, silenced, idleTimeoutMs),
    idleCloses: counters.idleTimeouts,
  };
}

/**
 * Starts `heartwatch simulate` against `port` in a child process. Returns `{ child, watched,
 * output() }`: the process, its {@link watchChild} record (exit, stderr), and what it printed on
 * stdout so far (its JSON report, once it has exited).
 */
function startSimulator(port) {
  const child = spawn(
    process.execPath,
    [
      path.join(__dirname, '..', 'dist', 'cli', 'main.js'),
      'simulate',
      ...['--to', `127.0.0.1:${port}`, '--transport', values.transport],
      ...['--hosts', String(hosts), '--rate', String(hosts), '--payload-bytes', values.payload],
      ...['--duration', `${durationMs}ms`, '--first-id', '1'],
      ...(reap > 0 ? ['--kill', `${reap}@${killAtMs}ms`] : []),
      '--json',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout.on('data', (d) => {
    out += d;
  });
  return { child, watched: watchChild(child, 'the simulator'), output: () => out };
}

/**
 * The run once the server listens: waits (bounded) until every host is up, then measures the
 * steady window and the reaping, and waits (bounded) for the simulator's report. `tally` counts
 * the server's downs (`downs`, `steady`, `afterSteady`, `silenced`, `reaped`); `rssBefore` is
 * this process's RSS (KiB) before the fleet connected.
 */
async function measureFleet(server, simulator, tally, rssBefore) {
  const { watched } = simulator;
  // Steady window: from when every host has beaten once to 2 s before the run (or the kill plan)
  // ends.
  await waitUntil(() => server.hostsUp() >= hosts, {
    what: `all ${hosts} hosts up`,
    progress: () => `${server.hostsUp()} of ${hosts} up`,
    timeoutMs: durationMs + simulatorSlackMs,
    child: watched,
  });
  // The simulator's clock (and its kill plan) began before this, by the second its first beats
  // took: the reaping window counted from here ends later than the plan's, never earlier. (Not
  // polled any closer while the fleet connects: stats() garbage would show in the RSS figure.)
  const simStartMs = performance.now();
  const rssFleet = rssKb();
  const c0 = threadTicks(server.thread);
  const n0 = server.received();
  const t0 = process.hrtime.bigint();
  await sleep(Math.max(1000, (seconds - 4) * 1000));
  const c1 = threadTicks(server.thread);
  const n1 = server.received();
  const t1 = process.hrtime.bigint();
  const downsWhileBeating = tally.downs;
  tally.steady = false;
  const reaping =
    reap > 0
      ? await watchReaping(server, tally.reaped, tally.afterSteady, tally.silenced, simStartMs)
      : {};
  await waitUntil(() => watched.exit !== null, {
    what: 'the simulator to end its run',
    timeoutMs: durationMs + simulatorSlackMs,
  });
  if (watched.exit.code !== 0) throw new Error(`the run failed: ${watched.describeExit()}`);
  const beats = n1 - n0;
  return {
    heartbeatsPerSecond: Math.round((beats * 1e9) / Number(t1 - t0)),
    cpuNsPerHeartbeat: Math.round(((c1 - c0) * tick) / Math.max(1, beats)),
    rssGrowthBytesPerHost: Math.round(((rssFleet - rssBefore) * 1024) / hosts),
    downsWhileBeating,
    ...reaping,
    simulatorSendErrors: JSON.parse(simulator.output()).sendErrors,
  };
}

async function main() {
  if (!['heartwatch', 'baseline'].includes(values.server)) {
    throw new Error(`--server must be heartwatch or baseline, got ${values.server}`);
  }
  if (reap > 0 && !(tcp && values.server === 'heartwatch')) {
    throw new Error(
      '--reap needs --server heartwatch --transport tcp (the baselines reap nothing)',
    );
  }
  const tally = {
    downs: 0,
    steady: true,
    afterSteady: [],
    // Ids of the silenced hosts (--first-id 1: host i is id i + 1), and those reaped so far.
    silenced: new Set(Array.from({ length: reap }, (_, i) => String(i + 1))),
    reaped: new Set(),
  };
  const server = await startServer((event) => {
    tally.downs++;
    if (tally.steady) return;
    tally.afterSteady.push(event);
    if (event.reason === 'disconnected' && tally.silenced.has(event.id)) {
      tally.reaped.add(event.id);
    }
  });
  const rssBefore = rssKb();
  const simulator = startSimulator(server.port);
  let figures;
  try {
    figures = await measureFleet(server, simulator, tally, rssBefore);
  } finally {
    // A simulator still running when the run failed is not left behind.
    if (simulator.watched.exit === null) simulator.child.kill('SIGKILL');
  }
  const tcpStats = server.tcpStats();
  await server.close();
  console.log(
    JSON.stringify({
      server: values.server,
      transport: values.transport,
      hosts,
      payloadBytes: Number(values.payload),
      ...figures,
      tcp: tcpStats,
    }),
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
