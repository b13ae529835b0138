// The peer servers of bench/scenarios/peers.js: Debian's redis-server and etcd, each started on
// loopback on free ports, pinned to the server CPU, with its data directory on tmpfs (/dev/shm),
// and stopped (its directory removed) after the run. Also reads a process's CPU time and RSS from
// /proc, which is how every server-side process of a peer is measured.
//
// Runs on: the bench's main thread (child processes do the serving).
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { waitUntil, watchChild } = require('../lib/wait.js');

const binaries = { redis: 'redis-server', etcd: 'etcd' };
const installHint = 'bash scripts/system-deps.sh installs redis-server and etcd-server';

/** The first line of `binary --version`, or null when it is not installed. */
function versionOf(server) {
  const result = spawnSync(binaries[server], ['--version'], { encoding: 'utf8' });
  if (result.error || result.status !== 0) return null;
  return result.stdout.split('\n')[0].trim();
}

/**
 * Each peer server's configuration as the bench runs it. `defaults` is the server as installed
 * (persistence off: the data would be thrown away anyway); `tuned` is the best documented tuning
 * for expiry: Redis runs its expiry cycle 100 times a second (`hz`) and at its highest effort;
 * etcd has no documented knob for lease expiry (its lessor checks every 500 ms, revokes at most
 * 1000 leases per second), so tmpfs for its WAL is its tuning in both.
 */
const configs = {
  redis: {
    defaults: ['--hz', '10', '--active-expire-effort', '1'],
    tuned: ['--hz', '100', '--active-expire-effort', '10'],
  },
  etcd: { defaults: [], tuned: [] },
};

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function connects(port) {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function argsFor(server, config, dataDir) {
  if (server === 'redis') {
    const port = await freePort();
    const args = [
      ...['--bind', '127.0.0.1', '--port', String(port), '--dir', dataDir],
      ...['--save', '', '--appendonly', 'no', '--daemonize', 'no', '--logfile', ''],
      ...['--notify-keyspace-events', 'Ex', '--maxclients', '1000'],
      ...configs.redis[config],
    ];
    return { args, port, url: `redis://127.0.0.1:${port}` };
  }
  const port = await freePort();
  const peerPort = await freePort();
  const client = `http://127.0.0.1:${port}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const args = [
    ...['--name', 'hwbench', '--data-dir', dataDir, '--log-level', 'error'],
    ...['--listen-client-urls', client, '--advertise-client-urls', client],
    ...['--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer],
    ...['--initial-cluster', `hwbench=${peer}`, '--initial-cluster-state', 'new'],
    ...configs.etcd[config],
  ];
  return { args, port, url: `127.0.0.1:${port}` };
}

/**
 * Starts `server` ('redis' | 'etcd') with `config` ('defaults' | 'tuned') pinned to `cpu`.
 * Resolves once it accepts connections with { pid, url, version, args, dataDir, stop() }; rejects with
 * a reason a row can carry when the binary is missing or the server does not come up in 15 s.
 */
async function startPeerServer({ server, config = 'defaults', cpu }) {
  const version = versionOf(server);
  if (version === null) throw new Error(`${binaries[server]} is not installed (${installHint})`);
  const shm = fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();
  const dataDir = fs.mkdtempSync(path.join(shm, `heartwatch-bench-${server}-`));
  const { args, port, url } = await argsFor(server, config, dataDir);
  // taskset execs the server: the child's pid is the server's own.
  const child = spawn('taskset', ['-c', String(cpu), binaries[server], ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const watched = watchChild(child, binaries[server], { echo: false });
  const stop = async () => {
    if (watched.exit === null) {
      child.kill('SIGCONT');
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await watched.exited;
      clearTimeout(timer);
    }
    fs.rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    await waitUntil(() => connects(port), {
      what: `${binaries[server]} to accept connections on port ${port}`,
      timeoutMs: 15_000,
      child: watched,
      pollMs: 50,
    });
  } catch (error) {
    await stop();
    throw new Error(`${binaries[server]} did not start: ${error.message}`);
  }
  return { pid: child.pid, url, version, config, args: configs[server][config], dataDir, stop };
}

const clockTicks = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout) || 100;

/** CPU time (user + system, µs) and RSS (bytes) of a live process, from /proc. */
function procUsage(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces) start at the state, field 3.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  const rssPages = Number(fields[21]);
  return { cpuMicros: (ticks * 1e6) / clockTicks, rssBytes: rssPages * 4096 };
}

module.exports = { startPeerServer, procUsage, versionOf, configs, installHint };
