// The detector a Node team would write by hand, shared by the baselines (node:dgram and node:net):
// a Map from host id to its last-seen time, and a setInterval that scans the whole Map. Written
// plainly and fairly: it keeps no per-heartbeat garbage and reports up/down transitions like
// heartwatch does.
const { performance } = require('node:perf_hooks');

/**
 * `onEvent({ type: 'up' | 'down', id, at, lastSeen })` gets each transition; times are epoch ms.
 * Returns { beat(id), counters, trackedHosts(), stop() }; `counters.received` counts beats.
 */
function mapDetector({ timeoutMs, scanIntervalMs = 100, onEvent }) {
  const hosts = new Map();
  const counters = { received: 0, malformed: 0, hostsUp: 0, hostsDown: 0 };
  const epoch = performance.timeOrigin;

  function beat(id) {
    counters.received++;
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
  }

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

  return {
    beat,
    counters,
    trackedHosts: () => hosts.size,
    stop: () => clearInterval(scan),
  };
}

/** Whether `bytes` starts like a v1 heartbeat (magic "HW", version 1) of at least the header. */
const HEADER_BYTES = 28;
function looksLikeV1(bytes) {
  return bytes.length >= HEADER_BYTES && bytes[0] === 0x48 && bytes[1] === 0x57 && bytes[2] === 1;
}

module.exports = { mapDetector, looksLikeV1, HEADER_BYTES };
