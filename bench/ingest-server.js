// One server contender for the sustained-load benchmark, run as its own process (pinned by the
// parent with taskset) so its CPU time is its own. Prints {"port":N} once listening, then, on
// SIGTERM, one JSON line with what it received, dropped and spent.
//   node bench/ingest-server.js --contender heartwatch|node-dgram --timeout MS [--engine native|js]
const { parseArgs } = require('node:util');
const path = require('node:path');
const { startDgramMap } = require('./baselines/dgram-map.js');

const { values } = parseArgs({
  options: {
    contender: { type: 'string' },
    timeout: { type: 'string', default: '10000' },
    engine: { type: 'string', default: 'native' },
    hosts: { type: 'string', default: '1000000' },
  },
});
const timeoutMs = Number(values.timeout);

async function main() {
  let downs = 0;
  let ups = 0;
  const onEvent = (event) => {
    if (event.type === 'down') downs++;
    else if (event.type === 'up') ups++;
  };
  let stats;
  let close;
  let port;
  if (values.contender === 'node-dgram') {
    // A scan per second: fine-grained enough for a 10 s timeout, cheap enough for a million hosts.
    const server = await startDgramMap({ timeoutMs, scanIntervalMs: 1000, onEvent });
    port = server.port;
    stats = () => {
      const s = server.stats();
      return {
        received: s.received,
        kernelDrops: null,
        ringDrops: 0,
        trackedHosts: s.trackedHosts,
      };
    };
    close = server.close;
  } else {
    const { Heartwatch } = require(path.join(__dirname, '..', 'dist', 'index.js'));
    const hw = new Heartwatch({
      engine: values.engine,
      host: '127.0.0.1',
      port: 0,
      timeoutMs,
      missedBeats: 0,
      receivers: 1,
      workers: 1,
      cpus: null,
      maxHosts: Number(values.hosts) * 2,
      recvBufferBytes: 64 << 20,
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
      };
    };
    close = () => hw.close();
  }
  process.stdout.write(`${JSON.stringify({ port })}\n`);
  process.once('SIGTERM', async () => {
    const cpu = process.cpuUsage();
    const result = {
      ...stats(),
      ups,
      falseDowns: downs,
      cpuMicros: cpu.user + cpu.system,
      rssBytes: process.memoryUsage().rss,
    };
    await close();
    process.stdout.write(`${JSON.stringify(result)}\n`);
    process.exit(0);
  });
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
