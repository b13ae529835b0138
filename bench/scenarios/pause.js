// The precision scenario's `pause` variant: the server process is stopped (SIGSTOP) for
// `pauseMs` (2 s) at the moment K hosts stop, then continued, while the other hosts keep beating
// into its socket. A long GC pause, a VM steal or a swap storm look like this. A down of a host
// that kept beating is a false down; the stopped hosts' lateness includes the pause (whoever
// reports them earlier than the pause's end reported them from a clock, not from the socket).
const { addRatios, defaultCpus, measure, serverContenders } = require('../lib/suite.js');
const precision = require('./precision.js');

/** Rows: one per contender, each the median of `runs` runs (worst run for the counts). */
async function pause({
  quick = false,
  runs = quick ? 2 : 3,
  contenders = serverContenders,
  cpus = defaultCpus(),
  hosts = 10_000,
  kill = 200,
  timeoutMs = 1000,
  intervalMs = 200,
  scanIntervalMs = 100,
  pauseMs = 2000,
  log,
} = {}) {
  log?.(
    `pause: ${hosts} hosts beating every ${intervalMs} ms, ${kill} stop as the server is stopped for ${pauseMs} ms, timeout ${timeoutMs} ms`,
  );
  const rows = await measure({
    contenders: contenders.filter((c) => serverContenders.includes(c)),
    runs,
    metrics: precision.metrics,
    worst: precision.worst,
    once: (contender, run) =>
      precision.once({
        contender,
        hosts,
        kill,
        timeoutMs,
        scanIntervalMs,
        intervalMs,
        cpus,
        run,
        pauseMs,
      }),
    log,
  });
  return addRatios(rows, { metrics: precision.metrics });
}

module.exports = {
  scenario: 'pause',
  title: 'Detection around a 2 s stop of the server (SIGSTOP)',
  run: pause,
  columns: [
    { field: 'falseDowns', label: 'false downs', ratio: false },
    { field: 'p50Ms', label: 'p50 ms late', better: 'lower' },
    { field: 'p99Ms', label: 'p99 ms late', better: 'lower' },
    { field: 'maxMs', label: 'max ms late', better: 'lower' },
    { field: 'earlyCount', label: 'early', ratio: false },
    { field: 'eventsLost', label: 'missed', ratio: false },
  ],
  headline: { field: 'falseDowns', better: 'lower', label: 'false downs', floor: 1 },
};
