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
 * uncertain], and `load.longGaps` holds, per host the simulator itself left silent longer than
 * the timeout, [id, its last send before that gap, the send that ended it] (epoch ms), so a down
 * can be told from the sender's own lateness. The steady state starts 3 intervals after the fleet
 * starts (every host has beaten); kills and pauses are timed from there. `load.killed` holds, per
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

// How far the server's times and the simulator's may disagree: lastSeen is stamped in whole
// milliseconds rounded down and turned into epoch time with the server's own clock offset, the
// send times with this process's (measured: within 2 ms). Beats of one host are an interval
// apart, so no other send of the host falls this close to lastSeen.
const clockSlackMs = 5;

/**
 * Whether a down ([id, deliveredAt, lastSeen, ...]) is the sender's doing: the simulator sent the
 * host nothing from the beat heartwatch saw last until after its deadline. `gaps` maps an id to
 * its longest silence, [last send before it, the send (or run end) that ended it], as in
 * `load.longGaps`. Where the clocks leave it unclear, the down counts as the detector's.
 */
function senderLate([id, , lastSeen], gaps, timeoutMs) {
  const gap = gaps.get(id);
  return (
    gap !== undefined &&
    gap[0] <= lastSeen + clockSlackMs &&
    gap[1] > lastSeen + timeoutMs + clockSlackMs
  );
}

module.exports = { runHeartwatch, senderLate };
