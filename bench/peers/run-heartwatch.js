// One run of a UDP contender (heartwatch-native, heartwatch-js, node-dgram) on the peer
// scenarios' work, shaped like bench/peers/run-peer.js's result so that one function turns both
// into rows: the server (bench/ingest-server.js) on the server CPU, the native fleet simulator on
// the sender CPU.
//
// Runs on: the bench's main thread.
const path = require('node:path');
const { performance } = require('node:perf_hooks');
const { root } = require('../lib/build.js');
const { sleep, startServer } = require('../lib/suite.js');

/**
 * Same options and result as runPeer. The steady state starts 3 intervals after the fleet starts
 * (every host has beaten); kills and pauses are timed from there. `load.killed` holds, per stopped
 * host, [id, the simulator's time of its last datagram] (epoch ms).
 */
async function runHeartwatch({
  contender,
  hosts,
  intervalMs,
  timeoutMs,
  kill = 0,
  firstKill = 0,
  pauseMs = 0,
  observeMs,
  cpus,
  run = 0,
}) {
  const { simulateFleet } = require(path.join(root, 'dist', 'index.js'));
  const server = await startServer({
    contender,
    cpu: cpus.server,
    hosts,
    timeoutMs,
    scanIntervalMs: 100,
    recvBufferBytes: 8 << 20,
    recordDowns: true,
  });
  try {
    const steadyMs = 3 * intervalMs;
    const eventMs = steadyMs + intervalMs;
    const endMs = eventMs + observeMs;
    const fleet = simulateFleet({
      server: `udp://127.0.0.1:${server.port}`,
      hosts,
      packetsPerSecond: (hosts * 1000) / intervalMs,
      durationMs: endMs + 200,
      cpu: cpus.sender,
      seed: run + 1,
      kills: kill > 0 ? [{ hosts: kill, firstHost: firstKill, atMs: eventMs }] : [],
    });
    await sleep(steadyMs);
    const steadyAt = performance.timeOrigin + performance.now();
    const before = await server.ask({ cmd: 'stats' });
    if (pauseMs > 0) {
      await sleep(intervalMs);
      process.kill(server.pid, 'SIGSTOP');
      await sleep(pauseMs);
      process.kill(server.pid, 'SIGCONT');
      await sleep(endMs - eventMs - pauseMs);
    } else {
      await sleep(endMs - steadyMs);
    }
    const after = await server.ask({ cmd: 'stats' });
    const { downs } = await server.ask({ cmd: 'downs' });
    const report = await fleet;
    // The simulator's times are performance.now() of this process: epoch ms once shifted.
    const epoch = (at) => performance.timeOrigin + at;
    const killed =
      kill > 0
        ? report.kills[0].lastSendAt.map((at, i) => [String(1 + firstKill + i), epoch(at)])
        : [];
    return {
      status: 'ok',
      peer: null,
      steadyAt,
      // When the event reached the server's JS listener, as for the peers' detectors.
      downs: downs.map(([id, , , deliveredAt]) => [id, deliveredAt]),
      load: {
        killed,
        beatsPerSecond: report.packetsSent / (report.elapsedMs / 1000),
        senderLagMaxMs: null,
        errors: report.sendErrors,
        lastError: null,
      },
      cpuMicros: after.cpuMicros - before.cpuMicros,
      rssBytes: after.rssBytes,
      beats: after.received - before.received,
    };
  } finally {
    await server.stop();
  }
}

module.exports = { runHeartwatch };
