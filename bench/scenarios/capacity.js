// Receiver capacity: how fast each contender drains a prefilled socket backlog and applies every
// heartbeat, on one pinned core with nothing else to do.
//
// Every contender drains the same backlog size: as many 28-byte heartbeats as the socket buffer
// node can get holds (node's dgram asks for SO_RCVBUF, which the kernel caps at
// net.core.rmem_max; SO_RCVBUFFORCE is out of its reach), 8000 by default. The native pair, bare
// recvmmsg and heartwatch's receiver + worker, comes from bench/native/ingest_bench.cc; the js
// engine and the baseline run in bench/ingest-server.js, whose event loop is held in spawnSync
// while bench/lib/prefill.js fills the backlog. All of them first see every host once, untimed,
// so the figure is the steady state of a known fleet. The native pair also drains a large
// backlog (`largeBacklog`, SO_RCVBUFFORCE), where a drain lasts long enough that a scheduler tick
// taken by another process on the core weighs little; those rows have no baseline to compare to.
const { spawnSync } = require('node:child_process');
const path = require('node:path');
const { buildNativeBench } = require('../lib/build.js');
const { addRatios, defaultCpus, reduce, round, startServer } = require('../lib/suite.js');

const metrics = ['packetsPerSecond'];
/** ingest_bench's contender names -> the suite's. */
const nativeName = { heartwatch: 'heartwatch-native', 'heartwatch-auth': 'heartwatch-native-auth' };

/** One ingest_bench process: the median of its `innerRuns` alternating bare / heartwatch drains. */
function nativePair({ binary, backlog, hosts, innerRuns, cpu }) {
  const args = ['--packets', backlog, '--hosts', hosts, '--runs', innerRuns, '--cpu', cpu];
  // No threads rows: their end is read every 200 us, too coarse for a drain of a few ms.
  args.push('--threads', 0);
  const result = spawnSync(binary, args.map(String), {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (result.status !== 0) {
    throw new Error(`ingest_bench exited with ${result.status ?? result.signal}: ${result.stderr}`);
  }
  // The suite compares heartwatch's default receiver; the io_uring row is `npm run bench:ingest`'s.
  return result.stdout
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line))
    .filter((row) => row.contender !== 'heartwatch-io_uring')
    .map((row) => {
      return {
        bench: 'ingest',
        scenario: 'capacity',
        contender: nativeName[row.contender] ?? row.contender,
        hosts,
        packets: row.packets,
        packetsPerSecond: row.packetsPerSecond,
      };
    });
}

/** One js contender: warm-up drains of every host, then `cycles` timed drains of `backlog`. */
async function jsContender({ contender, backlog, hosts, cycles, cpus }) {
  const server = await startServer({
    contender,
    cpu: cpus.server,
    hosts,
    timeoutMs: 600_000,
    scanIntervalMs: 1000,
    recvBufferBytes: 8 << 20,
  });
  let seq = 0;
  const drain = async (order, firstHost) => {
    const reply = await server.ask({
      cmd: 'drain',
      packets: backlog,
      hosts,
      order,
      firstHost,
      firstSeq: seq,
      cpu: cpus.sender,
    });
    seq += backlog;
    return reply;
  };
  try {
    for (let first = 1; first <= hosts; first += backlog) await drain('sequential', first);
    let drained = 0;
    let ms = 0;
    let shortDrains = 0;
    for (let c = 0; c < cycles; c++) {
      const reply = await drain('random', 1);
      drained += reply.packets;
      ms += reply.ms;
      if (reply.packets < backlog) shortDrains++;
    }
    return {
      bench: 'ingest',
      scenario: 'capacity',
      contender,
      hosts,
      // Datagrams per drain, as ingest_bench counts them; `cycles` drains are timed.
      packets: backlog,
      cycles,
      packetsPerSecond: drained / (ms / 1000),
      // Drains that got less than the backlog: the kernel dropped part of it (buffer too small).
      shortDrains,
    };
  } finally {
    await server.stop();
  }
}

/**
 * Rows: one per contender among bare-recvmmsg, heartwatch-native, heartwatch-native-auth (every
 * datagram signed, tags required and replay-checked), heartwatch-js and node-dgram (as
 * `contenders` asks), each the median of `runs` runs, with `ratioToBare` and `vsBaseline`.
 */
async function capacity({
  quick = false,
  runs = quick ? 3 : 5,
  contenders = [
    'bare-recvmmsg',
    'heartwatch-native',
    'heartwatch-native-auth',
    'heartwatch-js',
    'node-dgram',
  ],
  cpus = defaultCpus(),
  backlog = 8000,
  largeBacklog = quick ? 100_000 : 200_000,
  hosts = quick ? 20_000 : 100_000,
  cycles = quick ? 4 : 8,
  log,
} = {}) {
  const wantsNative = ['bare-recvmmsg', 'heartwatch-native', 'heartwatch-native-auth'].some((c) =>
    contenders.includes(c),
  );
  const binary = wantsNative ? path.join(buildNativeBench('ingest_bench'), 'ingest_bench') : null;
  const raw = [];
  for (let run = 0; run < runs; run++) {
    const rows = [];
    if (wantsNative) {
      rows.push(...nativePair({ binary, backlog, hosts, innerRuns: 5, cpu: cpus.server }));
      const large = { binary, backlog: largeBacklog, hosts, innerRuns: 3, cpu: cpus.server };
      rows.push(...nativePair(large));
    }
    for (const contender of ['heartwatch-js', 'node-dgram']) {
      if (contenders.includes(contender)) {
        rows.push(await jsContender({ contender, backlog, hosts, cycles, cpus }));
      }
    }
    for (const row of rows.filter((r) => contenders.includes(r.contender))) {
      log?.(
        `  run ${run + 1}/${runs} ${row.contender}, backlog ${row.packets}: ${round(row.packetsPerSecond)} packets/s`,
      );
      raw.push(row);
    }
  }
  const keys = ['packets'];
  const rows = reduce(raw, { keys, metrics: [...metrics, 'shortDrains'], worst: ['shortDrains'] });
  for (const row of rows) {
    const bare = rows.find((r) => r.contender === 'bare-recvmmsg' && r.packets === row.packets);
    row.ratioToBare = bare ? round(row.packetsPerSecond / bare.packetsPerSecond) : null;
  }
  return addRatios(rows, { keys, metrics });
}

module.exports = {
  scenario: 'capacity',
  title: 'Receiver capacity',
  run: capacity,
  keys: ['packets'],
  columns: [
    { field: 'packets', label: 'backlog (datagrams)', ratio: false },
    { field: 'packetsPerSecond', label: 'packets/s', better: 'higher' },
    { field: 'ratioToBare', label: 'of bare recvmmsg', ratio: false },
  ],
  headline: { field: 'packetsPerSecond', better: 'higher', label: 'packets/s drained' },
};
