// One server contender for the benchmarks, run as its own process (pinned by the parent with
// taskset) so its CPU time and memory are its own.
//
//   node bench/ingest-server.js --contender heartwatch-native|heartwatch-js|node-dgram
//        [--hosts N] [--timeout MS] [--scan-interval MS] [--forget-after MS] [--recv-buffer BYTES]
//        [--record-downs] [--receive-backend auto|recvmmsg|io_uring]
//   (`--contender heartwatch [--engine native|js]` is the older spelling of the first two.)
//
// Prints {"port":N,"rssBaseBytes":N} once listening, rssBaseBytes being the RSS before the server
// was created. Then answers each JSON line on stdin with one JSON line on stdout:
//   {"cmd":"stats"}   counters so far, CPU time and RSS
//   {"cmd":"downs"}   with --record-downs, every down event so far:
//                     {"downs":[[id, at, lastSeen, deliveredAt, uncertain], ...]} (epoch ms;
//                     deliveredAt is when the event reached this process's listener; uncertain:
//                     the down followed a window in which datagrams were lost)
//   {"cmd":"drain","packets":N,"hosts":H,"order":"sequential"|"random","firstHost":F,
//    "firstSeq":S,"cpu":C}
//                     receiver capacity: blocks the event loop while bench/lib/prefill.js (on CPU
//                     C) fills the socket's backlog, then times how long the server takes to
//                     receive and apply it: {"packets":n,"ms":t}
// On SIGTERM: one JSON line with the final stats (what bench/ingest.js reads), then it exits.
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { performance } = require('node:perf_hooks');
const readline = require('node:readline');
const { parseArgs } = require('node:util');
const { startDgramMap } = require('./baselines/dgram-map.js');

const { values } = parseArgs({
  options: {
    contender: { type: 'string' },
    timeout: { type: 'string', default: '10000' },
    engine: { type: 'string', default: 'native' },
    hosts: { type: 'string', default: '1000000' },
    'scan-interval': { type: 'string', default: '1000' },
    'forget-after': { type: 'string', default: '0' },
    'recv-buffer': { type: 'string', default: String(64 << 20) },
    'record-downs': { type: 'boolean', default: false },
    'receive-backend': { type: 'string', default: 'auto' },
  },
});
const timeoutMs = Number(values.timeout);
const engines = { 'heartwatch-native': 'native', 'heartwatch-js': 'js', heartwatch: values.engine };

async function main() {
  const rssBaseBytes = process.memoryUsage().rss;
  let downs = 0;
  let ups = 0;
  let updates = 0;
  // Down events in parallel arrays: cheap to fill at a million events, and turned into JSON only
  // when asked. Only where asked for: they would count as the server's memory.
  const record = values['record-downs'];
  const downIds = [];
  const downAt = [];
  const downLastSeen = [];
  const downDeliveredAt = [];
  const downUncertain = [];
  const epoch = performance.timeOrigin;
  const onEvent = (event) => {
    if (event.type === 'down') {
      downs++;
      if (!record) return;
      downIds.push(String(event.id));
      downAt.push(event.at);
      downLastSeen.push(event.lastSeen);
      downDeliveredAt.push(epoch + performance.now());
      downUncertain.push(event.uncertain === true);
    } else if (event.type === 'up') {
      ups++;
    } else if (event.type === 'update') {
      updates++;
    }
  };
  let stats;
  let close;
  let port;
  if (values.contender === 'node-dgram') {
    const server = await startDgramMap({
      timeoutMs,
      scanIntervalMs: Number(values['scan-interval']),
      onEvent,
    });
    port = server.port;
    stats = () => {
      const s = server.stats();
      return {
        received: s.received,
        kernelDrops: null,
        ringDrops: 0,
        trackedHosts: s.trackedHosts,
        eventsPending: 0,
      };
    };
    close = server.close;
  } else if (values.contender in engines) {
    const { Heartwatch } = require(path.join(__dirname, '..', 'dist', 'index.js'));
    const forgetAfterMs = Number(values['forget-after']);
    const hw = new Heartwatch({
      engine: engines[values.contender],
      host: '127.0.0.1',
      port: 0,
      timeoutMs,
      missedBeats: 0,
      receivers: 1,
      workers: 1,
      cpus: null,
      maxHosts: Number(values.hosts) * 2,
      recvBufferBytes: Number(values['recv-buffer']),
      ...(engines[values.contender] === 'native'
        ? { receiveBackend: values['receive-backend'] }
        : {}),
      ...(forgetAfterMs > 0 ? { forgetAfterMs } : {}),
    });
    hw.on('events', (batch) => {
      for (const event of batch) onEvent(event);
    });
    port = (await hw.listen()).port;
    stats = () => {
      const s = hw.stats();
      return {
        received: s.received,
        kernelDrops: s.engine === 'native' ? s.kernelDrops : null,
        ringDrops: s.ringDrops,
        trackedHosts: s.trackedHosts,
        eventsPending: s.eventsPending,
        lossyDeferred: s.lossyDeferred,
        uncertainDowns: s.uncertainDowns,
        receiveBackend: s.receivers[0]?.backend ?? null,
      };
    };
    close = () => hw.close();
  } else {
    throw new Error(`unknown --contender ${values.contender}`);
  }

  const snapshot = () => {
    const cpu = process.cpuUsage();
    return {
      ...stats(),
      ups,
      updates,
      downs,
      falseDowns: downs,
      cpuMicros: cpu.user + cpu.system,
      rssBytes: process.memoryUsage().rss,
    };
  };
  const reply = (value) => process.stdout.write(`${JSON.stringify(value)}\n`);

  // Receiver capacity: the backlog is filled while this thread is blocked in spawnSync, so
  // nothing reads it early; then the event loop drains it, checking the count once per turn.
  const drain = (command) => {
    const before = stats().received;
    const prefill = spawnSync(
      'taskset',
      [
        '-c',
        String(command.cpu),
        process.execPath,
        path.join(__dirname, 'lib', 'prefill.js'),
        '--port',
        String(port),
        '--packets',
        String(command.packets),
        '--hosts',
        String(command.hosts),
        '--order',
        command.order,
        '--first-host',
        String(command.firstHost),
        '--first-seq',
        String(command.firstSeq),
      ],
      { stdio: ['ignore', 'ignore', 'inherit'] },
    );
    if (prefill.status !== 0) throw new Error(`prefill exited with ${prefill.status}`);
    const start = performance.now();
    let seen = before;
    let lastAt = start;
    return new Promise((resolve) => {
      const check = () => {
        const now = performance.now();
        const received = stats().received;
        if (received !== seen) {
          seen = received;
          lastAt = now;
        }
        // A quiet 200 ms means the backlog is empty: the kernel dropped the rest.
        if (seen - before >= command.packets || now - lastAt > 200) {
          resolve({ packets: seen - before, ms: lastAt - start });
        } else {
          setImmediate(check);
        }
      };
      setImmediate(check);
    });
  };

  const commands = readline.createInterface({ input: process.stdin });
  commands.on('line', async (line) => {
    const command = JSON.parse(line);
    if (command.cmd === 'stats') reply(snapshot());
    else if (command.cmd === 'downs') {
      const list = downIds.map((id, i) => [
        id,
        downAt[i],
        downLastSeen[i],
        downDeliveredAt[i],
        downUncertain[i],
      ]);
      reply({ downs: list });
    } else if (command.cmd === 'drain') reply(await drain(command));
    else throw new Error(`unknown command ${line}`);
  });
  // A parent that talks over a pipe and goes away (crashed, interrupted) takes this server with
  // it; with stdin on /dev/null (bench/ingest.js) only SIGTERM ends it.
  const stdin = fs.fstatSync(0);
  if (stdin.isFIFO() || stdin.isSocket()) {
    commands.once('close', async () => {
      await close();
      process.exit(0);
    });
  }

  process.stdout.write(`${JSON.stringify({ port, rssBaseBytes })}\n`);
  process.once('SIGTERM', async () => {
    const result = snapshot();
    await close();
    reply(result);
    process.exit(0);
  });
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
