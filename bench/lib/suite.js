// Shared by the suite's scenarios (bench/scenarios/*.js): the contenders, a server contender in
// its own pinned process (bench/ingest-server.js), repeated measurements reduced to medians, and
// ratios to the baseline measured in the same run.
const { spawn } = require('node:child_process');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');

/** Server contenders, in the order every table lists them. */
const serverContenders = ['heartwatch-native', 'heartwatch-js', 'node-dgram'];
/** The contender every ratio is taken against: what a Node team would write. */
const baseline = 'node-dgram';

/** CPUs: servers on the last one, the fleet simulator on CPU 0, where interrupts land anyway. */
function defaultCpus() {
  const last = os.cpus().length - 1;
  return { server: Math.max(0, last), sender: 0 };
}

/**
 * Starts one server contender pinned to `cpu` (taskset); `recordDowns` keeps every down event for
 * `ask({ cmd: 'downs' })`; `receiveBackend` is the native engine's (the others ignore it). Resolves once it listens, with its port, its RSS before the server was
 * created, its `pid`, `ask(command)` (one JSON reply per command, in order) and `stop()` (SIGTERM; resolves
 * with its final stats).
 */
async function startServer({
  contender,
  cpu,
  hosts,
  timeoutMs,
  scanIntervalMs,
  forgetAfterMs = 0,
  recvBufferBytes,
  recordDowns = false,
  receiveBackend = 'auto',
}) {
  const args = [
    '-c',
    String(cpu),
    process.execPath,
    path.join(__dirname, '..', 'ingest-server.js'),
    '--contender',
    contender,
    '--hosts',
    String(hosts),
    '--timeout',
    String(timeoutMs),
    '--scan-interval',
    String(scanIntervalMs),
    '--forget-after',
    String(forgetAfterMs),
    '--recv-buffer',
    String(recvBufferBytes),
    ...(recordDowns ? ['--record-downs'] : []),
    '--receive-backend',
    receiveBackend,
  ];
  const child = spawn('taskset', args, { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const pending = [];
  const waiters = [];
  readline.createInterface({ input: child.stdout }).on('line', (line) => {
    const waiter = waiters.shift();
    if (waiter) waiter.resolve(JSON.parse(line));
    else pending.push(JSON.parse(line));
  });
  exited.then(({ code, signal }) => {
    for (const waiter of waiters.splice(0)) {
      waiter.reject(new Error(`${contender} server exited (${code ?? signal}) before answering`));
    }
  });
  const next = () =>
    pending.length > 0
      ? Promise.resolve(pending.shift())
      : new Promise((resolve, reject) => waiters.push({ resolve, reject }));
  const { port, rssBaseBytes } = await next();
  return {
    port,
    rssBaseBytes,
    /** The server process (taskset execs it): the pause variant stops it with SIGSTOP. */
    pid: child.pid,
    ask(command) {
      child.stdin.write(`${JSON.stringify(command)}\n`);
      return next();
    },
    async stop() {
      const final = next();
      child.kill('SIGTERM');
      const result = await final;
      await exited;
      return result;
    },
  };
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function median(values) {
  const sorted = values.filter((v) => v !== null && v !== undefined).sort((a, b) => a - b);
  if (sorted.length === 0) return null;
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** The p-th percentile (0..1) of an ascending array, nearest rank. */
function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))];
}

/** Four significant digits: enough for figures that vary by more than that from run to run. */
function round(value) {
  return value === null || !Number.isFinite(value) ? value : Number(value.toPrecision(4));
}

/**
 * Runs `once(contender, run)` for every contender, `runs` times, interleaved (run 1 of each
 * contender, then run 2, ...) so that a noisy stretch of time hits all of them alike. Each call
 * resolves with one raw row, or an array of rows where one measurement yields several. Returns
 * the rows reduced by {@link reduce}.
 */
async function measure({ contenders, runs, keys = [], metrics, worst = [], once, log }) {
  const raw = [];
  for (let run = 0; run < runs; run++) {
    for (const contender of contenders) {
      for (const row of [await once(contender, run)].flat()) {
        log?.(`  run ${run + 1}/${runs} ${row.contender}: ${summarize(row, metrics)}`);
        raw.push(row);
      }
    }
  }
  return reduce(raw, { keys, metrics, worst });
}

/**
 * One row per contender and distinct `keys` values: fields in `worst` (counts whose target is
 * zero) quote the largest of the runs, every other field in `metrics` the median; `runs` says
 * how many runs that was. Other fields are taken from the first run.
 */
function reduce(raw, { keys = [], metrics, worst = [] }) {
  const groups = new Map();
  for (const row of raw) {
    const key = JSON.stringify([row.contender, ...keys.map((k) => row[k])]);
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(row);
  }
  return [...groups.values()].map((group) => {
    const out = { ...group[0], runs: group.length };
    for (const field of metrics) {
      const values = group.map((r) => r[field]).filter((v) => v !== null && v !== undefined);
      if (values.length === 0) out[field] = null;
      else out[field] = round(worst.includes(field) ? Math.max(...values) : median(values));
    }
    return out;
  });
}

function summarize(row, metrics) {
  return metrics.map((m) => `${m}=${round(row[m])}`).join(' ');
}

/**
 * Adds `vsBaseline`: each metric divided by the baseline's in the same group (same scenario and
 * `keys`), or null where the baseline's figure is 0 or missing and no ratio exists.
 */
function addRatios(rows, { keys = [], metrics }) {
  const groupOf = (row) => JSON.stringify([row.scenario, ...keys.map((k) => row[k])]);
  const baselines = new Map(
    rows.filter((r) => r.contender === baseline).map((r) => [groupOf(r), r]),
  );
  return rows.map((row) => {
    const base = baselines.get(groupOf(row));
    const vsBaseline = {};
    for (const field of metrics) {
      const a = row[field];
      const b = base?.[field];
      vsBaseline[field] =
        typeof a === 'number' && typeof b === 'number' && b !== 0 ? round(a / b) : null;
    }
    return { ...row, vsBaseline };
  });
}

module.exports = {
  serverContenders,
  baseline,
  defaultCpus,
  startServer,
  sleep,
  median,
  percentile,
  round,
  measure,
  reduce,
  addRatios,
};
