// The detector a Node team would write by hand, as the baseline for the benchmarks: node:dgram,
// a Map from host id to its last-seen time, and a setInterval that scans the whole Map. Written
// plainly and fairly: it parses the v1 header it needs, keeps no per-packet garbage beyond what
// dgram itself allocates, and reports up/down transitions like heartwatch does.
const dgram = require('node:dgram');
const { performance } = require('node:perf_hooks');

const HEADER_BYTES = 28;

/**
 * Starts the baseline server. `onEvent({ type: 'up' | 'down', id, at, lastSeen })` gets each
 * transition; times are epoch ms. Resolves with { port, stats(), close() } once bound.
 */
function startDgramMap({ host = '127.0.0.1', port = 0, timeoutMs, scanIntervalMs = 100, onEvent }) {
  const hosts = new Map();
  const counters = { received: 0, malformed: 0, hostsUp: 0, hostsDown: 0 };
  const epoch = performance.timeOrigin;
  const socket = dgram.createSocket({
    type: host.includes(':') ? 'udp6' : 'udp4',
    recvBufferSize: 8 << 20,
  });

  socket.on('message', (msg) => {
    counters.received++;
    if (msg.length < HEADER_BYTES || msg[0] !== 0x48 || msg[1] !== 0x57 || msg[2] !== 1) {
      counters.malformed++;
      return;
    }
    const id = msg.readBigUInt64BE(4);
    const now = performance.now();
    const entry = hosts.get(id);
    if (entry === undefined) {
      hosts.set(id, { lastSeen: now, up: true });
      counters.hostsUp++;
      onEvent({ type: 'up', id, at: epoch + now });
    } else {
      entry.lastSeen = now;
      if (!entry.up) {
        entry.up = true;
        counters.hostsUp++;
        counters.hostsDown--;
        onEvent({ type: 'up', id, at: epoch + now });
      }
    }
  });

  const scan = setInterval(() => {
    const now = performance.now();
    for (const [id, entry] of hosts) {
      if (entry.up && now - entry.lastSeen >= timeoutMs) {
        entry.up = false;
        counters.hostsUp--;
        counters.hostsDown++;
        onEvent({ type: 'down', id, at: epoch + now, lastSeen: epoch + entry.lastSeen });
      }
    }
  }, scanIntervalMs);

  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, host, () => {
      socket.off('error', reject);
      resolve({
        port: socket.address().port,
        stats: () => ({ ...counters, trackedHosts: hosts.size }),
        close: () =>
          new Promise((done) => {
            clearInterval(scan);
            socket.close(() => done());
          }),
      });
    });
  });
}

module.exports = { startDgramMap };
