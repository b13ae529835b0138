// The three peers of bench/scenarios/peers.js, each as two halves that speak its own protocol
// through a well-kept client (ioredis, etcd3):
//   beater (bench/peers/load.js, the load generator):  prepare(index) once per host, then
//          beat(indices) for every heartbeat, fire and forget; replies are counted.
//   watcher (bench/peers/detector.js, the server side): turns what the peer tells it into
//          onDown(id) calls.
// Host i (0-based) has the id String(i + 1), like the fleet simulator's firstHostId 1.
//
// Runs on: the main thread of the process that loads it.
const { performance } = require('node:perf_hooks');

const now = () => performance.timeOrigin + performance.now();

/** Counts what a beater sent and what came back, so the generator can tell when it runs ahead. */
function counters() {
  return { sent: 0, replied: 0, errors: 0, lastError: null };
}

function redisClient(url) {
  const Redis = require('ioredis');
  // No retries behind the bench's back: a lost connection is an error the row reports.
  return new Redis(url, {
    maxRetriesPerRequest: 0,
    enableAutoPipelining: false,
    lazyConnect: true,
  });
}

/** Beats through a pipeline of one command per host: each beat is its own command. */
function redisBeater(url, command) {
  const redis = redisClient(url);
  const count = counters();
  return {
    count,
    async open() {
      await redis.connect();
    },
    prepare: async () => {},
    beat(indices) {
      const pipeline = redis.pipeline();
      const at = now();
      for (const i of indices) command(pipeline, String(i + 1), at);
      count.sent += indices.length;
      pipeline.exec().then(
        (results) => {
          for (const [error] of results) {
            if (error) {
              count.errors++;
              count.lastError = String(error.message);
            } else count.replied++;
          }
        },
        (error) => {
          count.errors += indices.length;
          count.lastError = String(error.message);
        },
      );
      return at;
    },
    close: () => redis.quit().catch(() => redis.disconnect()),
  };
}

// `takeDue`: the members whose deadline has passed, removed in the same step so that two pollers
// (or a beat that lands between the read and the removal) cannot make a host down twice.
const takeDueScript = `
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
if #due > 0 then redis.call('ZREM', KEYS[1], unpack(due)) end
return due`;

const deadlinesKey = 'hb:deadlines';

// etcd renews one stream's keepalives in order, and holds the renewal of a lease that has
// expired until that lease is revoked (lessor.Renew; revokes are checked every 500 ms, 1000 a
// second at most). On a single stream one expired lease therefore stalls every other host's
// keepalive behind it and more leases expire (a 10K-host run here on one stream lost 96% of its
// leases while being set up). A few streams bound the stall to the hosts that share one.
const keepaliveStreams = 8;

const peers = {
  'redis-ttl': {
    server: 'redis',
    configs: ['defaults', 'tuned'],
    describe: (timeoutMs) =>
      `each beat \`SET hb:<id> 1 PX ${timeoutMs}\` (pipelined); a down is an \`expired\` keyspace notification (\`notify-keyspace-events Ex\`)`,
    beater: ({ url, timeoutMs }) =>
      redisBeater(url, (pipeline, id) => pipeline.set(`hb:${id}`, '1', 'PX', timeoutMs)),
    async watcher({ url, onDown }) {
      const sub = redisClient(url);
      await sub.connect();
      sub.on('message', (_channel, key) => {
        if (key.startsWith('hb:')) onDown(key.slice(3));
      });
      await sub.subscribe('__keyevent@0__:expired');
      return { close: () => sub.quit().catch(() => sub.disconnect()) };
    },
  },
  'redis-zset': {
    server: 'redis',
    configs: ['defaults'],
    describe: (timeoutMs, pollMs) =>
      `each beat \`ZADD ${deadlinesKey} <now + ${timeoutMs}> <id>\` (pipelined); a poller every ${pollMs} ms takes due members with \`ZRANGEBYSCORE\` + \`ZREM\` (one Lua script, 1000 at a time)`,
    beater: ({ url, timeoutMs }) =>
      redisBeater(url, (pipeline, id, at) => pipeline.zadd(deadlinesKey, at + timeoutMs, id)),
    async watcher({ url, pollMs, onDown }) {
      const redis = redisClient(url);
      await redis.connect();
      redis.defineCommand('takeDue', { numberOfKeys: 1, lua: takeDueScript });
      const limit = 1000;
      let stopped = false;
      let timer = null;
      const poll = async () => {
        timer = null;
        if (stopped) return;
        let due = [];
        try {
          due = await redis.takeDue(deadlinesKey, now(), limit);
        } catch {
          // A closing connection: the next poll (if any) tries again.
        }
        for (const id of due) onDown(id);
        if (!stopped) timer = setTimeout(poll, due.length === limit ? 0 : pollMs);
      };
      await redis.del(deadlinesKey);
      timer = setTimeout(poll, pollMs);
      return {
        close: () => {
          stopped = true;
          if (timer) clearTimeout(timer);
          return redis.quit().catch(() => redis.disconnect());
        },
      };
    },
  },
  'etcd-lease': {
    server: 'etcd',
    configs: ['defaults'],
    setsUpHosts: true,
    describe: (timeoutMs) =>
      `one lease per host (TTL ${ttlSeconds(timeoutMs)} s) holding key \`hb/<id>\`; each beat is a \`LeaseKeepAlive\` request, the hosts multiplexed over ${keepaliveStreams} gRPC streams, host i on stream i mod ${keepaliveStreams} (etcd3's \`Lease\` opens one stream per lease); a down is a watch \`DELETE\` on \`hb/\``,
    beater({ url, timeoutMs }) {
      const { Etcd3 } = require('etcd3');
      const client = new Etcd3({ hosts: url });
      const count = counters();
      const leases = [];
      const streams = [];
      return {
        count,
        async open() {
          for (let s = 0; s < keepaliveStreams; s++) {
            const stream = await client.leaseClient.leaseKeepAlive();
            stream.on('data', () => count.replied++);
            stream.on('error', (error) => {
              count.errors++;
              count.lastError = String(error.message);
            });
            streams.push(stream);
          }
        },
        async prepare(i) {
          const { ID } = await client.leaseClient.leaseGrant({ TTL: ttlSeconds(timeoutMs) });
          await client.kv.put({
            key: Buffer.from(`hb/${i + 1}`),
            value: Buffer.from('1'),
            lease: ID,
          });
          leases[i] = ID;
        },
        beat(indices) {
          const at = now();
          for (const i of indices) {
            if (leases[i] === undefined) continue;
            streams[i % keepaliveStreams].write({ ID: leases[i] });
            count.sent++;
          }
          return at;
        },
        ready: (i) => leases[i] !== undefined,
        close: async () => {
          for (const stream of streams) stream.end();
          client.close();
        },
      };
    },
    async watcher({ url, onDown }) {
      const { Etcd3 } = require('etcd3');
      const client = new Etcd3({ hosts: url });
      const watcher = await client.watch().prefix('hb/').create();
      watcher.on('delete', (kv) => onDown(kv.key.toString().slice(3)));
      return {
        close: async () => {
          await watcher.cancel();
          client.close();
        },
      };
    },
  },
};

/** etcd lease TTLs are whole seconds, 2 s at least (1.5 x the default election timeout). */
function ttlSeconds(timeoutMs) {
  return Math.max(2, Math.ceil(timeoutMs / 1000));
}

module.exports = { peers, ttlSeconds, now };
