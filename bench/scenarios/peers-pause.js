// The peer scenario's pause variant: no host stops, but the whole server side is frozen with
// SIGSTOP for 2 s at a steady state (a GC pause, a VM stall, a stopped container), then resumed
// with SIGCONT while every host keeps beating. Every down is false. For heartwatch and the
// node:dgram baseline the server side is the one server process; for a peer it is its server
// (redis-server, etcd) and the Node process that turns its output into downs.
//
// Hosts beat every 1 s with a timeout of 3 s, so a 2 s pause leaves every host a beat that
// arrived (queued in the socket) before its deadline: a detector that reads what is queued before
// it judges reports none down.
//
// Unless the sender itself went quiet: the fleet simulator (heartwatch, node-dgram) and the
// peers' load generator each report the hosts they left silent longer than the timeout, and a
// down whose whole timeout, from the beat the detector saw last to its deadline, falls in such a
// gap is counted as `senderLateDowns`, not as a false down (no beat was sent for the detector to
// see). A peer says no last-seen time: its down's is the host's last send a timeout or more
// before the down (bench/peers/sender-gaps.js, one rule for every contender).
const { peers } = require('../peers/adapters.js');
const { runHeartwatch } = require('../peers/run-heartwatch.js');
const { runPeer } = require('../peers/run-peer.js');
const { countSenderLate } = require('../peers/sender-gaps.js');
const { defaultCpus, measure, serverContenders } = require('../lib/suite.js');

const metrics = ['falseDowns', 'senderLateDowns', 'kernelDrops', 'beatsPerSecond', 'clientErrors'];
const configsOf = (contender) => peers[contender]?.configs ?? ['defaults'];

async function once({ contender, config, hosts, intervalMs, timeoutMs, pauseMs, cpus, run }) {
  const base = {
    ...{ bench: 'detection', scenario: 'peers-pause', contender, config, hosts },
    ...{ intervalMs, timeoutMs, pauseMs },
  };
  const work = { hosts, intervalMs, timeoutMs, pauseMs, observeMs: pauseMs + 2 * timeoutMs, cpus };
  const result = peers[contender]
    ? await runPeer({ contender, config, setupBudgetMs: 90_000, ...work })
    : await runHeartwatch({ contender, run, ...work });
  if (result.status !== 'ok') {
    return { ...base, status: result.status, reason: result.reason, falseDowns: null };
  }
  const downs = result.downs.filter(([, at]) => at >= result.steadyAt);
  const late = countSenderLate(downs, result.load.longGaps, timeoutMs, {
    lastSeenKnown: !peers[contender],
  });
  return {
    ...base,
    status: 'ok',
    falseDowns: downs.length - late,
    senderLateDowns: late,
    kernelDrops: result.kernelDrops ?? null,
    beatsPerSecond: result.load.beatsPerSecond,
    clientErrors: result.load.errors,
    ...(result.load.lastError ? { reason: `last client error: ${result.load.lastError}` } : {}),
  };
}

/** Rows: one per contender and config; the worst run's false downs. */
async function peersPause({
  quick = false,
  runs = 3,
  contenders = [...serverContenders, ...Object.keys(peers)],
  cpus = defaultCpus(),
  hosts = 10_000,
  intervalMs = 1000,
  timeoutMs = 3000,
  pauseMs = 2000,
  log,
} = {}) {
  log?.(
    `peers-pause: ${hosts} hosts every ${intervalMs} ms, timeout ${timeoutMs} ms, server side stopped ${pauseMs} ms`,
  );
  return measure({
    contenders: contenders.filter((c) => serverContenders.includes(c) || peers[c]),
    runs: Math.min(runs, quick ? 1 : 3),
    keys: ['config'],
    metrics,
    worst: ['falseDowns', 'senderLateDowns', 'kernelDrops', 'clientErrors'],
    once: async (contender, run) => {
      const out = [];
      for (const config of configsOf(contender)) {
        out.push(
          await once({ contender, config, hosts, intervalMs, timeoutMs, pauseMs, cpus, run }),
        );
      }
      return out;
    },
    log,
  });
}

module.exports = {
  scenario: 'peers-pause',
  title: 'Against Redis and etcd: the server side paused 2 s',
  run: peersPause,
  keys: ['config'],
  notes: (rows) =>
    rows
      .filter((r) => r.reason)
      .map((r) => `- ${r.contender} (${r.config}): ${r.status}: ${r.reason}.`),
  columns: [
    { field: 'hosts', label: 'hosts', ratio: false },
    { field: 'config', label: 'config', ratio: false },
    { field: 'status', label: 'status', ratio: false },
    { field: 'pauseMs', label: 'pause ms', ratio: false },
    { field: 'falseDowns', label: 'false downs', ratio: false },
    { field: 'senderLateDowns', label: 'sender late', ratio: false },
    { field: 'kernelDrops', label: 'kernel drops', ratio: false },
    { field: 'beatsPerSecond', label: 'beats/s', ratio: false },
    { field: 'clientErrors', label: 'sender errors', ratio: false },
  ],
  // Every figure here is a count whose target is zero: nothing to chart as a ratio.
  headline: null,
};
