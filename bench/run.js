// `npm run bench [-- --quick]`: the benchmark suite. Every scenario (bench/scenarios/*.js) runs
// against every contender on the same work in one run: heartwatch's native engine, its pure-TS
// engine, the node:dgram + Map baseline (bench/baselines/dgram-map.js), for receiver capacity a
// bare recvmmsg loop, and in the peer scenarios Redis (key expiry, a sorted-set poller) and etcd
// leases, each a real server started for the run (bench/peers/). Each figure is the median of
// several runs (3 quick, 5 full; the peer scenarios 1 quick, 3 full), also quoted as a ratio to
// the baseline measured in the same run.
//
// Writes bench/results/latest.json, latest.md and latest.svg, and puts the tables into
// bench/README.md between its suite-results markers.
//
//   node bench/run.js [--quick]
//        [--scenarios capacity,sustained,sustained-status,precision,pause,mass-failure,churn,peers,
//                     peers-pause,tcp]
//        [--contenders heartwatch-native,heartwatch-native-tcp,heartwatch-native-auth,heartwatch-js,
//                      node-dgram,node-net,bare-recvmmsg,redis-ttl,redis-zset,etcd-lease] [--runs N]
//        [--server-cpu N] [--sender-cpu N] [--hosts N]
//        [--out DIR] [--merge]
//
// --hosts N runs the scenarios that take one fleet size (capacity, sustained-status, pause,
// precision, peers-pause) at N hosts instead of their own default; the others ignore it.
//
// --merge keeps, from the latest.json already in the output directory, the rows of the scenarios
// this run does not run (the results say which came from which command).
const fs = require('node:fs');
const path = require('node:path');
const { parseArgs } = require('node:util');
const { ensurePackageBuilt, machine } = require('./lib/build.js');
const { markdown, scenarioTable, svg } = require('./lib/report.js');
const { defaultCpus } = require('./lib/suite.js');

const scenarioNames = [
  'capacity',
  'sustained',
  'sustained-status',
  'precision',
  'pause',
  'mass-failure',
  'churn',
  'peers',
  'peers-pause',
  'tcp',
];
const allContenders = [
  'bare-recvmmsg',
  'heartwatch-native',
  'heartwatch-native-tcp',
  'heartwatch-native-auth',
  'heartwatch-js',
  'node-dgram',
  'node-net',
  'redis-ttl',
  'redis-zset',
  'etcd-lease',
];

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    scenarios: { type: 'string', default: scenarioNames.join(',') },
    contenders: { type: 'string', default: allContenders.join(',') },
    runs: { type: 'string' },
    'server-cpu': { type: 'string', default: String(defaultCpus().server) },
    'sender-cpu': { type: 'string', default: String(defaultCpus().sender) },
    hosts: { type: 'string' },
    out: { type: 'string', default: path.join(__dirname, 'results') },
    merge: { type: 'boolean', default: false },
  },
});

function list(flag, known) {
  const names = values[flag].split(',').filter(Boolean);
  for (const name of names) {
    if (!known.includes(name)) {
      console.error(`bench: unknown ${flag} entry "${name}"; known: ${known.join(', ')}`);
      process.exit(2);
    }
  }
  return names;
}

/** The command as typed, so that the results say how to reproduce them. */
function commandLine() {
  const args = process.argv.slice(2).join(' ');
  if (process.env.npm_lifecycle_event === 'bench') {
    return args ? `npm run bench -- ${args}` : 'npm run bench';
  }
  return `node bench/run.js${args ? ` ${args}` : ''}`;
}

/** Replaces what lies between the suite-results markers of bench/README.md, if it has them. */
function updateReadme(tables) {
  const readme = path.join(__dirname, 'README.md');
  if (!fs.existsSync(readme)) return;
  const text = fs.readFileSync(readme, 'utf8');
  const begin = '<!-- suite-results:begin -->';
  const end = '<!-- suite-results:end -->';
  const from = text.indexOf(begin);
  const to = text.indexOf(end);
  if (from < 0 || to < from) return;
  fs.writeFileSync(readme, `${text.slice(0, from + begin.length)}\n${tables}\n${text.slice(to)}`);
}

/**
 * --merge: the rows (and errors) of scenarios not in `ran` from the latest.json in --out, and
 * where each kept scenario came from: the runs that file itself kept rows from, then its own run.
 */
function keptRows(ran) {
  const file = path.join(values.out, 'latest.json');
  if (!fs.existsSync(file)) return null;
  const old = JSON.parse(fs.readFileSync(file, 'utf8'));
  const rows = old.rows.filter((r) => !ran.has(r.scenario));
  const earlier = old.kept ?? [];
  const inherited = new Set(earlier.flatMap((k) => k.scenarios));
  const own = [...new Set(old.rows.map((r) => r.scenario))].filter((s) => !inherited.has(s));
  const from = [
    ...earlier,
    { scenarios: own, command: old.command, generatedAt: old.generatedAt, runs: old.runs },
  ]
    .map((k) => ({ ...k, scenarios: k.scenarios.filter((s) => !ran.has(s)) }))
    .filter((k) => k.scenarios.length > 0);
  return { rows, errors: old.errors.filter((e) => !ran.has(e.scenario)), from };
}

async function main() {
  const scenarios = list('scenarios', scenarioNames).map((name) =>
    require(`./scenarios/${name}.js`),
  );
  const contenders = list('contenders', allContenders);
  const quick = values.quick;
  const runs = values.runs === undefined ? (quick ? 3 : 5) : Number(values.runs);
  const cpus = { server: Number(values['server-cpu']), sender: Number(values['sender-cpu']) };
  const hosts = values.hosts === undefined ? {} : { hosts: Number(values.hosts) };
  if (hosts.hosts !== undefined && !(Number.isInteger(hosts.hosts) && hosts.hosts > 0)) {
    console.error(`bench: --hosts must be a positive integer, got "${values.hosts}"`);
    process.exit(2);
  }
  ensurePackageBuilt();
  const started = Date.now();
  const log = (line) => console.error(line);
  const rows = [];
  const errors = [];
  for (const meta of scenarios) {
    const t0 = Date.now();
    try {
      const scenarioRows = await meta.run({ quick, runs, contenders, cpus, log, ...hosts });
      rows.push(...scenarioRows);
      console.log(`\n${meta.title}\n\n${scenarioTable(meta, scenarioRows)}`);
    } catch (error) {
      console.error(`${meta.scenario} failed:`, error);
      errors.push({ scenario: meta.scenario, message: String(error?.message ?? error) });
    }
    log(`${meta.scenario}: ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  }
  const kept = values.merge ? keptRows(new Set(scenarios.map((m) => m.scenario))) : null;
  const result = {
    machine: machine(),
    generatedAt: new Date().toISOString(),
    quick,
    runs,
    command: commandLine(),
    cpus,
    durationSeconds: Math.round((Date.now() - started) / 1000),
    errors: [...(kept?.errors ?? []), ...errors],
    rows: [...(kept?.rows ?? []), ...rows],
    ...(kept ? { kept: kept.from } : {}),
  };
  // Every scenario that has rows, in the suite's order.
  const reported = scenarioNames
    .map((name) => require(`./scenarios/${name}.js`))
    .filter((meta) => result.rows.some((r) => r.scenario === meta.scenario));
  fs.mkdirSync(values.out, { recursive: true });
  const md = markdown(result, reported);
  fs.writeFileSync(path.join(values.out, 'latest.json'), `${JSON.stringify(result, null, 2)}\n`);
  fs.writeFileSync(path.join(values.out, 'latest.md'), md);
  fs.writeFileSync(path.join(values.out, 'latest.svg'), svg(result, reported));
  if (path.resolve(values.out) === path.join(__dirname, 'results')) {
    // The README shows the tables without the page title and with the chart's path from bench/.
    updateReadme(
      md
        .replace(/^# .*\n\n/, '')
        .replace('](latest.svg)', '](results/latest.svg)')
        .replace(/^## /gm, '#### ')
        .trimEnd(),
    );
  }
  console.log(
    `\nwrote ${path.relative(process.cwd(), values.out)}/latest.{json,md,svg} in ${result.durationSeconds} s`,
  );
  if (errors.length > 0) process.exitCode = 1;
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
