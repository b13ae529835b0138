// Hosts 1..N beating every `interval` ms towards 127.0.0.1:port, from their own process, so that
// stopping or starving the server does not stop them. argv: port hosts interval. A stdin line
// "stop FROM TO" silences hosts FROM..TO; it answers {"stopped":[FROM,TO],"lastSent":epoch ms},
// the time their last heartbeat left.
const dgram = require('node:dgram');
const readline = require('node:readline');
const { encodeHeartbeat } = require('../../../dist/protocol/wire-v1.js');

const [port, hosts, interval] = process.argv.slice(2).map(Number);
const socket = dgram.createSocket('udp4');
const silent = new Uint8Array(hosts + 1);
const lastSent = new Float64Array(hosts + 1);
const datagrams = [];
for (let id = 1; id <= hosts; id++) {
  datagrams[id] = encodeHeartbeat({
    hostId: BigInt(id),
    incarnation: 1,
    seq: 0,
    intervalMs: 0,
    leave: false,
  });
}
function round() {
  for (let id = 1; id <= hosts; id++) {
    if (silent[id]) continue;
    lastSent[id] = Date.now();
    socket.send(datagrams[id], port, '127.0.0.1');
  }
}
round();
setInterval(round, interval);
readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const [command, from, to] = line.split(' ');
  if (command !== 'stop') return;
  let last = 0;
  for (let id = Number(from); id <= Number(to); id++) {
    silent[id] = 1;
    last = Math.max(last, lastSent[id]);
  }
  process.stdout.write(
    `${JSON.stringify({ stopped: [Number(from), Number(to)], lastSent: last })}\n`,
  );
});
process.stdin.on('end', () => process.exit(0));
