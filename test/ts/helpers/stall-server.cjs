// A heartwatch server in its own process, for tests that stop or starve it (SIGSTOP, CPU hogs)
// while heartbeats keep coming from elsewhere. Options come as JSON in argv[2]; it prints
// {"port":N} once listening, then one JSON line per event ('storm' included), and one
// {"stats":...} line for every line read on stdin.
const readline = require('node:readline');
const { Heartwatch } = require('../../../dist/index.js');

const hw = new Heartwatch(JSON.parse(process.argv[2]));
const print = (value) => process.stdout.write(`${JSON.stringify(value)}\n`);
hw.on('events', (batch) => {
  for (const event of batch) print(event);
});
hw.on('storm', (storm) => print({ type: 'storm', ...storm }));
hw.on('error', (error) => print({ type: 'error', message: error.message }));
hw.listen().then(({ port }) => print({ port }));
readline.createInterface({ input: process.stdin }).on('line', () => print({ stats: hw.stats() }));
process.stdin.on('end', () => hw.close().then(() => process.exit(0)));
