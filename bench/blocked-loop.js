// Mass failure while the JS thread is blocked: N hosts beat once, then the event loop is held
// busy well past every deadline. Afterwards every host must have exactly one 'up' then one
// 'down' (reason timeout, never early), with nothing lost or reordered.
//   node bench/blocked-loop.js [--hosts 100000] [--block-ms 3000] [--timeout-ms 500]
const dgram = require('node:dgram');
const path = require('node:path');
const { parseArgs } = require('node:util');
const { Heartwatch, encodeHeartbeat } = require(path.join(__dirname, '..', 'dist', 'index.js'));
const { waitUntil } = require('./lib/wait.js');

const { values } = parseArgs({
  options: {
    hosts: { type: 'string', default: '100000' },
    'block-ms': { type: 'string', default: '3000' },
    'timeout-ms': { type: 'string', default: '500' },
  },
});
const hosts = Number(values.hosts);
const blockMs = Number(values['block-ms']);
const timeoutMs = Number(values['timeout-ms']);

async function main() {
  const hw = new Heartwatch({
    engine: 'native',
    host: '127.0.0.1',
    port: 0,
    timeoutMs,
    missedBeats: 0,
    cpus: null,
    recvBufferBytes: 256 << 20,
  });
  const byHost = new Map();
  hw.on('events', (batch) => {
    for (const e of batch) {
      const list = byHost.get(e.id);
      if (list) list.push(e);
      else byHost.set(e.id, [e]);
    }
  });
  const { port } = await hw.listen();
  const socket = dgram.createSocket('udp4');
  for (let id = 1; id <= hosts; id += 500) {
    const sends = [];
    for (let j = id; j < Math.min(id + 500, hosts + 1); j++) {
      const datagram = encodeHeartbeat({
        hostId: BigInt(j),
        incarnation: 1,
        seq: 0,
        intervalMs: 0,
      });
      sends.push(new Promise((resolve) => socket.send(datagram, port, '127.0.0.1', resolve)));
    }
    await Promise.all(sends);
  }
  socket.close();
  await waitUntil(
    () => hw.stats().received >= hosts && hw.stats().eventsDelivered >= hw.stats().trackedHosts,
    {
      what: 'the up events',
      progress: () => `${hw.stats().received} of ${hosts} beats received`,
      timeoutMs: 30_000,
      pollMs: 10,
    },
  );
  const tracked = hw.stats().trackedHosts;

  const blockedAt = Date.now();
  while (Date.now() - blockedAt < blockMs) {
    // The event loop is blocked: every deadline passes while no event can be delivered.
  }
  const pendingAfterBlock = hw.stats().eventsPending;
  await waitUntil(() => hw.stats().hostsDown >= tracked && hw.stats().eventsPending === 0, {
    what: 'the down events',
    progress: () => `${hw.stats().hostsDown} of ${tracked} down`,
    timeoutMs: 30_000,
    pollMs: 10,
  });
  const lastEventAfterUnblockMs = Date.now() - (blockedAt + blockMs);
  let lost = 0;
  let early = 0;
  let disordered = 0;
  for (const [, list] of byHost) {
    if (list.length !== 2) lost++;
    else if (list[0].type !== 'up' || list[1].type !== 'down') disordered++;
    else if (list[1].at < list[1].lastSeen + timeoutMs) early++;
  }
  const stats = hw.stats();
  await hw.close();
  const result = {
    bench: 'blocked-loop',
    hosts: tracked,
    blockMs,
    pendingAfterBlock,
    eventsDelivered: stats.eventsDelivered,
    eventsLost: lost,
    disordered,
    early,
    ringDrops: stats.ringDrops,
    kernelDrops: stats.kernelDrops,
    lastEventAfterUnblockMs,
  };
  console.log(JSON.stringify(result));
  if (lost || disordered || early || tracked !== hosts) process.exit(1);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
