// The server side of a peer, beside the peer server itself: the Node process a team would run to
// turn what Redis or etcd says into down events (bench/peers/adapters.js `watcher`). Pinned with
// the peer server to the server CPU; its CPU time and RSS count as the server side's.
//
//   node bench/peers/detector.js --peer redis-ttl|redis-zset|etcd-lease --url URL [--poll-ms 5]
//
// Prints {"ready":true} once it listens for downs; then answers {"cmd":"downs"} with
// {"downs":[[id, at], ...]} (at: epoch ms when the down reached this process). Exits when its
// stdin closes or on SIGTERM.
//
// Runs on: its main thread.
const readline = require('node:readline');
const { parseArgs } = require('node:util');
const { peers, now } = require('./adapters.js');

const { values } = parseArgs({
  options: {
    peer: { type: 'string' },
    url: { type: 'string' },
    'poll-ms': { type: 'string', default: '5' },
  },
});

async function main() {
  const peer = peers[values.peer];
  if (!peer) throw new Error(`unknown --peer ${values.peer}`);
  const ids = [];
  const at = [];
  const watcher = await peer.watcher({
    url: values.url,
    pollMs: Number(values['poll-ms']),
    onDown: (id) => {
      ids.push(id);
      at.push(now());
    },
  });
  const reply = (value) => process.stdout.write(`${JSON.stringify(value)}\n`);
  const finish = async () => {
    await watcher.close();
    process.exit(0);
  };
  const commands = readline.createInterface({ input: process.stdin });
  commands.on('line', (line) => {
    const command = JSON.parse(line);
    if (command.cmd === 'downs') reply({ downs: ids.map((id, i) => [id, at[i]]) });
    else throw new Error(`unknown command ${line}`);
  });
  commands.once('close', finish);
  process.once('SIGTERM', finish);
  reply({ ready: true });
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
