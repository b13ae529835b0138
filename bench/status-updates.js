// Status updates delivered to JavaScript (issue 13): H hosts each send R heartbeats over loopback
// UDP, every one with a new 64-byte status, so every beat after a host's first is one 'update'
// event (the first is its 'up'). A child process sends, so the server's JS thread only takes
// events. Reports update events per second from the first datagram sent to the last update
// delivered, for each engine, with what was dropped (counted) and whether any came out of order.
//   node bench/status-updates.js [--hosts 10000] [--rounds 20] [--engine native,js]
const { spawn } = require('node:child_process');
const dgram = require('node:dgram');
const path = require('node:path');
const { parseArgs } = require('node:util');
const { Heartwatch, encodeHeartbeat } = require(path.join(__dirname, '..', 'dist', 'index.js'));

const { values } = parseArgs({
  options: {
    hosts: { type: 'string', default: '10000' },
    rounds: { type: 'string', default: '20' },
    engine: { type: 'string', default: 'native,js' },
    'send-to': { type: 'string' },
  },
});
const hosts = Number(values.hosts);
const rounds = Number(values.rounds);
const statusBytes = 64;

function datagram(id, round) {
  const payload = Buffer.alloc(statusBytes, 0x20);
  payload.write(`host ${id} round ${round}`);
  return encodeHeartbeat({
    hostId: BigInt(id),
    incarnation: 1,
    seq: round,
    intervalMs: 0,
    payload,
  });
}

/** Sends one datagram, again after a pause while the kernel refuses it (a full send buffer). */
async function sendOne(socket, port, message) {
  for (;;) {
    const error = await new Promise((resolve) => socket.send(message, port, '127.0.0.1', resolve));
    if (!error) return;
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

async function sendRound(socket, port, round) {
  for (let id = 1; id <= hosts; id += 256) {
    const sends = [];
    for (let k = id; k < Math.min(id + 256, hosts + 1); k++) {
      sends.push(sendOne(socket, port, datagram(k, round)));
    }
    await Promise.all(sends);
  }
}

async function measure(engine) {
  const hw = new Heartwatch({
    engine,
    host: '127.0.0.1',
    port: 0,
    timeoutMs: 60_000,
    missedBeats: 0,
    cpus: null,
    recvBufferBytes: 64 << 20,
  });
  let updates = 0;
  let lastAt = 0;
  const lastRound = new Map();
  let disorder = 0;
  hw.on('update', (e) => {
    updates++;
    lastAt = performance.now();
    const round = Number(/round (\d+)/.exec(e.status.toString())[1]);
    if (round <= (lastRound.get(e.id) ?? -1)) disorder++;
    lastRound.set(e.id, round);
  });
  const { port } = await hw.listen();
  const start = performance.now();
  const sender = spawn(
    process.execPath,
    [__filename, '--hosts', `${hosts}`, '--rounds', `${rounds}`, '--send-to', `${port}`],
    { stdio: 'inherit' },
  );
  await new Promise((resolve) => sender.on('exit', resolve));
  const expected = hosts * (rounds - 1);
  const deadline = Date.now() + 30_000;
  while (updates < expected && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  const stats = hw.stats();
  await hw.close();
  const seconds = (lastAt - start) / 1000;
  const line = {
    bench: 'status-updates',
    engine,
    hosts,
    rounds,
    statusBytes,
    updates,
    expected,
    disorder,
    updatesPerSecond: Math.round(updates / seconds),
    statusBytesHeld: stats.statuses.bytes,
    lost: stats.statuses.lost + stats.ringDrops + stats.kernelDrops,
    eventsDropped: stats.statuses.eventsDropped,
  };
  console.log(JSON.stringify(line));
}

(async () => {
  if (values['send-to'] !== undefined) {
    const socket = dgram.createSocket('udp4');
    for (let round = 0; round < rounds; round++)
      await sendRound(socket, Number(values['send-to']), round);
    socket.close();
    return;
  }
  for (const engine of values.engine.split(',')) await measure(engine);
})();
