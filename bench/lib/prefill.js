// Fills a server's socket backlog for the receiver-capacity benchmark: sends `packets` v1
// heartbeats to 127.0.0.1:port and exits once the kernel has taken them all. `sequential` sends
// hosts first-host, first-host + 1, ... in order, wrapping after `hosts` (a warm-up that
// introduces every host once); `random` picks each host at random among 1..hosts, as a fleet's
// arrivals look to the server.
//   node bench/lib/prefill.js --port N --packets N --hosts N --order sequential|random
//        [--first-host H] [--first-seq S]
const dgram = require('node:dgram');
const path = require('node:path');
const { parseArgs } = require('node:util');

const { values } = parseArgs({
  options: {
    port: { type: 'string' },
    packets: { type: 'string' },
    hosts: { type: 'string' },
    order: { type: 'string', default: 'random' },
    'first-host': { type: 'string', default: '1' },
    'first-seq': { type: 'string', default: '0' },
  },
});
const { encodeHeartbeat } = require(path.join(__dirname, '..', '..', 'dist', 'index.js'));
const port = Number(values.port);
const packets = Number(values.packets);
const hosts = Number(values.hosts);
const firstHost = Number(values['first-host']);
const firstSeq = Number(values['first-seq']);

// xorshift32 with a fixed seed: every contender drains the same sequence of hosts.
let state = 0x9e3779b9 ^ firstSeq || 1;
function nextHost(i) {
  if (values.order === 'sequential') return ((firstHost - 1 + i) % hosts) + 1;
  state ^= state << 13;
  state ^= state >>> 17;
  state ^= state << 5;
  return ((state >>> 0) % hosts) + 1;
}

const socket = dgram.createSocket('udp4');
let sent = 0;
let acknowledged = 0;
// Bounded bursts, so the send queue (and this process's memory) stays small.
function burst() {
  const end = Math.min(packets, sent + 1024);
  for (; sent < end; sent++) {
    const datagram = encodeHeartbeat({
      hostId: BigInt(nextHost(sent)),
      incarnation: 0x1234,
      seq: (firstSeq + sent) >>> 0,
      intervalMs: 0,
    });
    socket.send(datagram, port, '127.0.0.1', (error) => {
      if (error) throw error;
      if (++acknowledged === packets) socket.close();
      else if (acknowledged === sent && sent < packets) burst();
    });
  }
}
if (packets > 0) burst();
