// The baseline over TCP: a node:net server cutting the stream into v1 frames (28-byte header,
// payload_len bytes, 16 more with AUTH; docs/protocol.md "Over TCP") and feeding the hand-written
// Map detector (map-detector.js), as a Node team would write it. A stream that breaks the framing
// is counted malformed and its connection destroyed.
const net = require('node:net');
const { HEADER_BYTES, looksLikeV1, mapDetector } = require('./map-detector.js');

const TAG_BYTES = 16;
const FLAG_AUTH = 0x02;

/** Bytes of the frame starting at `buffer[at]`, once its header is in: header, payload, tag. */
function frameBytes(buffer, at) {
  const withTag = (buffer[at + 3] & FLAG_AUTH) !== 0 ? TAG_BYTES : 0;
  return HEADER_BYTES + buffer.readUInt16BE(at + 24) + withTag;
}

/**
 * Starts the baseline server. `onEvent({ type: 'up' | 'down', id, at, lastSeen })` gets each
 * transition; times are epoch ms. Resolves with { port, stats(), close() } once listening.
 */
function startNetMap({ host = '127.0.0.1', port = 0, timeoutMs, scanIntervalMs = 100, onEvent }) {
  const detector = mapDetector({ timeoutMs, scanIntervalMs, onEvent });
  const sockets = new Set();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let pending = Buffer.alloc(0);
    socket.on('data', (chunk) => {
      const buffer = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      let at = 0;
      while (buffer.length - at >= HEADER_BYTES) {
        if (!looksLikeV1(buffer.subarray(at, at + HEADER_BYTES))) {
          detector.counters.malformed++;
          socket.destroy();
          return;
        }
        const bytes = frameBytes(buffer, at);
        if (buffer.length - at < bytes) break;
        detector.beat(buffer.readBigUInt64BE(at + 4));
        at += bytes;
      }
      pending = buffer.subarray(at);
    });
  });

  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host, backlog: 4096 }, () => {
      server.off('error', reject);
      resolve({
        port: server.address().port,
        stats: () => ({ ...detector.counters, trackedHosts: detector.trackedHosts() }),
        close: () =>
          new Promise((done) => {
            detector.stop();
            for (const socket of sockets) socket.destroy();
            server.close(() => done());
          }),
      });
    });
  });
}

module.exports = { startNetMap };
