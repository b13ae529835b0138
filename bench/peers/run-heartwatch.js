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
 * Same options and result as runPeer, and more: each down is [id, deliveredAt, lastSeen,
 * uncertain]. `load.longGaps` holds, per host the simulator itself left silent longer than the
 * timeout, [id, its last send before that gap, the send that ended it] (epoch ms), as the peers'
 * load generator reports it, so that a down can be told from the sender's own lateness
 * (bench/peers/sender-gaps.js). The steady state starts 3 intervals after the fleet starts
 * (every host has beaten); kills and pauses are timed from there. `load.killed` holds, per
 * stopped host, [id, the simulator's time of its last datagram] (epoch ms).
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
  receiveBackend = 'auto',
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
    receiveBackend,
  });
  try {
    const steadyMs = 3 * intervalMs;
    const eventMs = steadyMs + intervalMs;
    const endMs = eventMs + observeMs;
    // The fleet beats until the downs have been read, however late this process's timers run
    // on a loaded machine: a fixed duration could end before the observation does, and every
    // host would then go down for real.
    const sending = new AbortController();
    const fleet = simulateFleet({
      server: `udp://127.0.0.1:${server.port}`,
      hosts,
      packetsPerSecond: (hosts * 1000) / intervalMs,
      durationMs: 0,
      signal: sending.signal,
      cpu: cpus.sender,
      seed: run + 1,
      kills: kill > 0 ? [{ hosts: kill, firstHost: firstKill, atMs: eventMs }] : [],
      longGapMs: timeoutMs,
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
    sending.abort();
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
      downs: downs.map(([id, , lastSeen, deliveredAt, uncertain]) => [
        id,
        deliveredAt,
        lastSeen,
        uncertain,
      ]),
      load: {
        killed,
        longGaps: report.longGaps.map(({ host, gapMs, endedAt }) => [
          String(1 + host),
          epoch(endedAt - gapMs),
          epoch(endedAt),
        ]),
        beatsPerSecond: report.packetsSent / (report.elapsedMs / 1000),
        senderLagMaxMs: null,
        errors: report.sendErrors,
        lastError: null,
      },
      cpuMicros: after.cpuMicros - before.cpuMicros,
      rssBytes: after.rssBytes,
      beats: after.received - before.received,
      kernelDrops: after.kernelDrops === null ? null : after.kernelDrops - before.kernelDrops,
      ringDrops: after.ringDrops - before.ringDrops,
    };
  } finally {
    await server.stop();
  }
}

module.exports = { runHeartwatch };
