// The baseline over UDP: node:dgram feeding the hand-written Map detector (map-detector.js). It
// parses the v1 header it needs and keeps no per-packet garbage beyond what dgram allocates.
const dgram = require('node:dgram');
const { looksLikeV1, mapDetector } = require('./map-detector.js');

/**
 * Starts the baseline server. `onEvent({ type: 'up' | 'down', id, at, lastSeen })` gets each
 * transition; times are epoch ms. Resolves with { port, stats(), close() } once bound.
 */
function startDgramMap({ host = '127.0.0.1', port = 0, timeoutMs, scanIntervalMs = 100, onEvent }) {
  const detector = mapDetector({ timeoutMs, scanIntervalMs, onEvent });
  const socket = dgram.createSocket({
    type: host.includes(':') ? 'udp6' : 'udp4',
    recvBufferSize: 8 << 20,
  });

  socket.on('message', (msg) => {
    if (!looksLikeV1(msg)) {
      detector.counters.received++;
      detector.counters.malformed++;
      return;
    }
    detector.beat(msg.readBigUInt64BE(4));
  });

  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, host, () => {
      socket.off('error', reject);
      resolve({
        port: socket.address().port,
        stats: () => ({ ...detector.counters, trackedHosts: detector.trackedHosts() }),
        close: () =>
          new Promise((done) => {
            detector.stop();
            socket.close(() => done());
          }),
      });
    });
  });
}

module.exports = { startDgramMap };
