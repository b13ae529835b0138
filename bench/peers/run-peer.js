// One run of one peer (redis-ttl, redis-zset, etcd-lease) for the peer scenarios: its server on
// the server CPU, its detector process beside it, the load generator on the sender CPU; then
// everything stopped. Server-side CPU and RSS are the server's and the detector's together.
//
// Runs on: the bench's main thread.
const { peers } = require('./adapters.js');
const { startChild } = require('./child.js');
const { procUsage, startPeerServer } = require('./servers.js');

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function usageOf(pids) {
  const total = { cpuMicros: 0, rssBytes: 0 };
  for (const pid of pids) {
    const u = procUsage(pid);
    total.cpuMicros += u.cpuMicros;
    total.rssBytes += u.rssBytes;
  }
  return total;
}

/**
 * Runs `contender` in `config` for `hosts` beating every `intervalMs` (timeout `timeoutMs`).
 * With `kill`, that block of hosts stops `intervalMs` after the steady state and the run ends
 * `observeMs` later; with `pauseMs`, every server-side process is stopped (SIGSTOP) for that long
 * `intervalMs` after the steady state, and the run ends `observeMs` after the pause began.
 * Resolves with { status: 'ok', peer, steadyAt, downs: [[id, at]], load (the generator's 'done'
 * report), cpuMicros, rssBytes, beats } or { status: 'failed' | 'skipped', reason, peer }.
 */
async function runPeer(options) {
  const { contender, config, cpus } = options;
  let server;
  try {
    server = await startPeerServer({ server: peers[contender].server, config, cpu: cpus.server });
  } catch (error) {
    return { status: 'skipped', reason: String(error.message), peer: null };
  }
  const { version, args, dataDir, pid } = server;
  const info = { version, args, dataDir, pid };
  const children = [];
  try {
    return await drive({ ...options, server, info, children });
  } catch (error) {
    return { status: 'failed', reason: String(error.message), peer: info };
  } finally {
    for (const child of children.reverse()) await child.stop();
    await server.stop();
  }
}

/** The run once the server is up: its detector, the load generator, the pause, the figures. */
async function drive(options) {
  const { contender, server, info, children, intervalMs, observeMs, pauseMs = 0 } = options;
  const detector = startChild({
    script: 'detector.js',
    args: ['--peer', contender, '--url', server.url, '--poll-ms', String(options.pollMs ?? 5)],
    cpu: options.cpus.server,
    name: `${contender} detector`,
  });
  children.push(detector);
  await detector.next(30_000);
  const load = startLoad(options);
  children.push(load);
  const serverSide = [server.pid, detector.pid];
  let message = await load.next(options.setupBudgetMs + 30_000);
  if (message.event === 'done') return { status: 'failed', reason: message.reason, peer: info };
  const before = usageOf(serverSide);
  const { at: steadyAt, sent: steadySent } = message;
  if (pauseMs > 0) {
    await sleep(intervalMs);
    for (const pid of serverSide) process.kill(pid, 'SIGSTOP');
    await sleep(pauseMs);
    for (const pid of serverSide) process.kill(pid, 'SIGCONT');
  }
  do message = await load.next(intervalMs + observeMs + 30_000);
  while (message.event !== 'done');
  const after = usageOf(serverSide);
  // Downs that the peer delivers a little late still count if they arrive within this last look.
  await sleep(100);
  const { downs } = await detector.ask({ cmd: 'downs' }, 30_000);
  if (message.status !== 'ok') return { status: 'failed', reason: message.reason, peer: info };
  return {
    status: 'ok',
    peer: info,
    steadyAt,
    downs,
    load: message,
    cpuMicros: after.cpuMicros - before.cpuMicros,
    rssBytes: after.rssBytes,
    beats: message.sent - steadySent,
  };
}

/** The load generator on the sender CPU, driving the peer at `options.server.url`. */
function startLoad(options) {
  const { contender, server, hosts, intervalMs, timeoutMs, kill = 0, firstKill = 0 } = options;
  const { setupBudgetMs, observeMs, cpus } = options;
  return startChild({
    script: 'load.js',
    args: [
      ...['--peer', contender, '--url', server.url, '--hosts', String(hosts)],
      ...['--interval', String(intervalMs), '--timeout', String(timeoutMs)],
      ...['--kill', String(kill), '--first-kill', String(firstKill)],
      ...['--kill-after', String(intervalMs), '--setup-budget', String(setupBudgetMs)],
      ...['--end-after', String(intervalMs + observeMs)],
    ],
    cpu: cpus.sender,
    name: `${contender} load generator`,
  });
}

module.exports = { runPeer };
