import { simulatorLimits } from '../engine/limits.js';
import { maxUdpPayloadBytes } from '../protocol/wire-v1.js';
import { parseUdpAddress } from '../sender/udp-address.js';
import {
  type FleetKill,
  type FleetReport,
  type FleetRestart,
  type SimulateFleetOptions,
  simulateFleet,
} from '../simulator.js';
import {
  type Command,
  formatDuration,
  optionErrorAsUsage,
  parseChoice,
  parseDuration,
  parseFlags,
  parseInteger,
  parseNumber,
  UsageError,
  untilSignal,
} from './args.js';
import { count, rate } from './format.js';
import { readKeyFile } from './key-file.js';

/**
 * The default first host id: a simulated fleet (at most 2^24 hosts) stays clear of the small
 * ids people pick by hand (`heartwatch send --id 42`), so both can run against one server.
 */
const defaultFirstId = 1_000_000_000n;

const spec = {
  to: { type: 'string' },
  hosts: { type: 'string' },
  rate: { type: 'string' },
  duration: { type: 'string' },
  interval: { type: 'string' },
  kill: { type: 'string', multiple: true },
  leave: { type: 'string', multiple: true },
  restart: { type: 'string', multiple: true },
  revive: { type: 'string' },
  'first-id': { type: 'string' },
  'payload-bytes': { type: 'string' },
  'status-host-stride': { type: 'string' },
  'status-bytes': { type: 'string' },
  'status-change-every': { type: 'string' },
  cpu: { type: 'string' },
  seed: { type: 'string' },
  transport: { type: 'string' },
  json: { type: 'boolean' },
  'auth-key-file': { type: 'string' },
} as const;

const flagOf: Record<string, string> = {
  server: '--to',
  hosts: '--hosts',
  packetsPerSecond: '--rate',
  durationMs: '--duration',
  intervalMs: '--interval',
  firstHostId: '--first-id',
  payloadBytes: '--payload-bytes',
  statusHostStride: '--status-host-stride',
  statusBytes: '--status-bytes',
  statusChangeEvery: '--status-change-every',
  cpu: '--cpu',
  seed: '--seed',
  transport: '--transport',
};

const help = `Usage: heartwatch simulate --to IP:PORT [--hosts N] [--rate R] [flags]

Runs the native fleet simulator: N simulated hosts sending wire-protocol v1 heartbeats to a
server, R datagrams per second in total (so each host beats every N/R seconds), paced and sent
with sendmmsg on a thread of its own. Shows a progress line on stderr and prints a report when
the run ends (after --duration, or at Ctrl-C / SIGTERM).

Flags:
  --to IP:PORT        server address, e.g. 127.0.0.1:7700 or [::1]:7700 (required)
  --hosts N           simulated hosts, 1 to 16777216                       (default 1000)
  --rate R            datagrams per second, whole fleet, up to 100000000
                                              (default: one beat per host per --interval)
  --duration D        how long to send; 0 = until interrupted               (default 10s)
  --interval D        interval announced in each heartbeat; 0 = "unknown"
                                                  (default: the real period, N/R seconds)
  --kill N@T          at time T, N hosts go quiet (a crash); repeatable
  --leave N@T         at time T, N hosts send LEAVE and stop (a clean shutdown); repeatable
  --restart N@T       at time T, N hosts restart with a new incarnation; repeatable
  --revive T          at time T, every host stopped by --kill/--leave restarts
  --first-id N        host id of the first host; host i sends first-id + i
                      (default 1000000000, above ids picked by hand like send --id 42)
  --payload-bytes N   payload size per heartbeat, 0 to 65479                 (default 0)
  --status-host-stride N
                      every Nth host (0, N, 2N...) sends a status instead of a payload,
                      its host id and change count then a fixed pattern     (default: none)
  --status-bytes N    status size, 12 to 65479, with --status-host-stride    (default 64)
  --status-change-every N
                      a status changes every Nth beat of its host, staggered (default 1)
  --cpu N             pin the sending thread to CPU N                        (default: unpinned)
  --seed N            seed for the send order and incarnations, a u32        (default: random)
  --auth-key-file F   sign every heartbeat with the first key in F (one hex key per line,
                      mode 0600); incarnations are then start time + restarts
  --transport T       udp, or tcp: one connection per host to a server run with
                      --tcp-port (opened before sending starts)             (default udp)
  --json              print the final report as one JSON object on stdout
  -h, --help          show this help

Which hosts: --kill and --leave take hosts from the first one upward, in the order given
(--kill 100@5s --leave 10@6s: hosts 0-99 crash, 100-109 leave); --restart takes hosts from
the last one downward, so it never picks a stopped host. Times are durations from the start.
Durations: plain milliseconds or 500ms, 10s, 2m, 1h.

Exit codes: 0 done, 1 runtime error (e.g. the addon is unavailable), 2 usage error.

Example:
  heartwatch simulate --to 127.0.0.1:7700 --hosts 100000 --rate 50000 --duration 30s --kill 100@10s
`;

function parseEvent(flag: string, text: string, maxTime: number): { hosts: number; atMs: number } {
  const at = text.indexOf('@');
  if (at < 0) {
    throw new UsageError(
      `heartwatch simulate: ${flag} must be N@TIME, e.g. 100@10s, got "${text}"`,
    );
  }
  const hosts = parseInteger('simulate', `${flag} (N in N@TIME)`, text.slice(0, at), 1, 16_777_216);
  const atMs = parseDuration(
    'simulate',
    `${flag} (TIME in N@TIME)`,
    text.slice(at + 1),
    0,
    maxTime,
  );
  // At or past the end the run is over before the event: it would never happen.
  if (atMs >= maxTime) {
    throw new UsageError(
      `heartwatch simulate: ${flag} ${text} comes at or after the end of the run (--duration ${formatDuration(maxTime)}); give a TIME before it, or a longer --duration`,
    );
  }
  return { hosts, atMs };
}

function plural(n: number, word: string): string {
  return `${count(n)} ${word}${n === 1 ? '' : 's'}`;
}

function reportText(report: FleetReport, options: SimulateFleetOptions): string {
  const lines = [
    `sent ${count(report.packetsSent)} heartbeats (${count(report.leavesSent)} LEAVE) in ${(report.elapsedMs / 1000).toFixed(2)} s: ${rate(report.packetsPerSecond)}/s (asked ${rate(options.packetsPerSecond)}/s)${report.stoppedEarly ? ', stopped early' : ''}`,
  ];
  const since = (at: number): string =>
    Number.isNaN(at) ? 'never' : `${((at - report.startedAt) / 1000).toFixed(2)} s`;
  (options.kills ?? []).forEach((kill, i) => {
    const record = report.kills[i];
    lines.push(
      `${kill.leave === true ? 'leave' : 'kill'}: ${plural(kill.hosts, 'host')} (${kill.firstHost ?? 0}-${(kill.firstHost ?? 0) + kill.hosts - 1}) at ${record === undefined ? 'never' : since(record.at)}`,
    );
  });
  (options.restarts ?? []).forEach((restart, i) => {
    const at = report.restartsAt[i];
    lines.push(
      `restart: ${plural(restart.hosts, 'host')} (${restart.firstHost ?? 0}-${(restart.firstHost ?? 0) + restart.hosts - 1}) at ${at === undefined ? 'never' : since(at)}`,
    );
  });
  const errors = Object.entries(report.errors);
  lines.push(
    `send errors: ${errors.length === 0 ? 'none' : errors.map(([name, n]) => `${name} ${count(n)}`).join(', ')}`,
  );
  return `${lines.join('\n')}\n`;
}

/**
 * --status-host-stride, --status-bytes, --status-change-every: each a whole number in its range,
 * the last two only with the first. Checked before the run starts (and prints its first line).
 */
function parseStatusFlags(
  values: ReturnType<typeof parseFlags<typeof spec>>,
  options: SimulateFleetOptions,
): void {
  if (values['status-host-stride'] === undefined) {
    for (const flag of ['status-bytes', 'status-change-every'] as const) {
      if (values[flag] !== undefined) {
        throw new UsageError(
          `heartwatch simulate: --${flag} needs --status-host-stride, got "${values[flag]}" without it`,
        );
      }
    }
    return;
  }
  if (values['payload-bytes'] !== undefined) {
    throw new UsageError(
      'heartwatch simulate: --payload-bytes and --status-host-stride exclude each other (hosts without a status send 28-byte beats)',
    );
  }
  options.statusHostStride = parseInteger(
    'simulate',
    '--status-host-stride',
    values['status-host-stride'],
    1,
    16_777_216,
  );
  if (values['status-bytes'] !== undefined) {
    options.statusBytes = parseInteger(
      'simulate',
      '--status-bytes',
      values['status-bytes'],
      simulatorLimits.minStatusBytes,
      maxUdpPayloadBytes,
    );
  }
  if (values['status-change-every'] !== undefined) {
    options.statusChangeEvery = parseInteger(
      'simulate',
      '--status-change-every',
      values['status-change-every'],
      1,
      0xffff_ffff,
    );
  }
}

async function run(argv: string[]): Promise<number> {
  const values = parseFlags('simulate', argv, spec);
  if (values.to === undefined) {
    throw new UsageError('heartwatch simulate: --to is required, e.g. --to 127.0.0.1:7700');
  }
  const address = parseUdpAddress(values.to, undefined);
  if ('error' in address || address.family === 0) {
    throw new UsageError(
      `heartwatch simulate: --to must be IP:PORT such as 127.0.0.1:7700 or [::1]:7700, got "${values.to}"${'error' in address ? ` (${address.error})` : ' (a host name; give an IP address)'}`,
    );
  }
  const hosts =
    values.hosts === undefined
      ? 1000
      : parseInteger('simulate', '--hosts', values.hosts, 1, 16_777_216);
  const durationMs =
    values.duration === undefined
      ? 10_000
      : parseDuration('simulate', '--duration', values.duration, 0, 0xffff_ffff);
  const announced =
    values.interval === undefined
      ? undefined
      : parseDuration('simulate', '--interval', values.interval, 0, 0xffff_ffff);
  const packetsPerSecond =
    values.rate !== undefined
      ? parseNumber('simulate', '--rate', values.rate, 0.001, 1e8)
      : (hosts * 1000) / (announced === undefined || announced === 0 ? 1000 : announced);
  const maxTime = durationMs === 0 ? 0xffff_ffff : durationMs;

  const kills: FleetKill[] = [];
  let nextStopped = 0;
  for (const [flag, list] of [
    ['--kill', values.kill],
    ['--leave', values.leave],
  ] as const) {
    for (const text of list ?? []) {
      const event = parseEvent(flag, text, maxTime);
      if (nextStopped + event.hosts > hosts) {
        throw new UsageError(
          `heartwatch simulate: ${flag} ${text} stops hosts past the fleet of ${hosts} (--kill and --leave together stop ${nextStopped + event.hosts})`,
        );
      }
      kills.push({
        firstHost: nextStopped,
        hosts: event.hosts,
        atMs: event.atMs,
        leave: flag === '--leave',
      });
      nextStopped += event.hosts;
    }
  }
  const restarts: FleetRestart[] = [];
  let restartFloor = hosts;
  for (const text of values.restart ?? []) {
    const event = parseEvent('--restart', text, maxTime);
    if (event.hosts > restartFloor) {
      throw new UsageError(
        `heartwatch simulate: --restart ${text} restarts more hosts than the fleet of ${hosts} has left`,
      );
    }
    restartFloor -= event.hosts;
    restarts.push({ firstHost: restartFloor, hosts: event.hosts, atMs: event.atMs });
  }
  if (restartFloor < nextStopped) {
    throw new UsageError(
      `heartwatch simulate: --kill/--leave (${nextStopped} hosts) and --restart (${hosts - restartFloor} hosts) overlap in a fleet of ${hosts}; use --revive to restart stopped hosts`,
    );
  }
  let reviveAtMs: number | undefined;
  if (values.revive !== undefined) {
    const atMs = parseDuration('simulate', '--revive', values.revive, 0, maxTime);
    if (atMs >= maxTime) {
      throw new UsageError(
        `heartwatch simulate: --revive ${values.revive} comes at or after the end of the run (--duration ${formatDuration(maxTime)}); give a TIME before it, or a longer --duration`,
      );
    }
    if (nextStopped === 0) {
      throw new UsageError(
        'heartwatch simulate: --revive needs hosts stopped by --kill or --leave',
      );
    }
    reviveAtMs = atMs;
    const lastStop = Math.max(...kills.map((k) => k.atMs));
    if (atMs <= lastStop) {
      throw new UsageError(
        `heartwatch simulate: --revive must come after every --kill and --leave (the last at ${formatDuration(lastStop)}), got "${values.revive}"`,
      );
    }
    restarts.push({ firstHost: 0, hosts: nextStopped, atMs });
  }

  const controller = new AbortController();
  const options: SimulateFleetOptions = {
    server: `udp://${values.to.replace(/^udp:\/\//, '')}`,
    hosts,
    packetsPerSecond,
    durationMs,
    kills,
    restarts,
    signal: controller.signal,
  };
  if (values.transport !== undefined) {
    options.transport = parseChoice('simulate', '--transport', values.transport, [
      'udp',
      'tcp',
    ] as const);
  }
  if (announced !== undefined) options.intervalMs = announced;
  options.firstHostId = defaultFirstId;
  if (values['first-id'] !== undefined) {
    const text = values['first-id'];
    const id = /^[0-9]{1,20}$/.test(text) ? BigInt(text) : 0n;
    if (id < 1n || id > (1n << 64n) - BigInt(hosts)) {
      throw new UsageError(
        `heartwatch simulate: --first-id must be an integer from 1 to 2^64-${hosts} (2^64 - hosts), got "${text}"`,
      );
    }
    options.firstHostId = id;
  }
  if (values['payload-bytes'] !== undefined) {
    options.payloadBytes = parseInteger(
      'simulate',
      '--payload-bytes',
      values['payload-bytes'],
      0,
      maxUdpPayloadBytes,
    );
  }
  parseStatusFlags(values, options);
  if (values.cpu !== undefined) {
    // Which CPUs are allowed (the affinity mask) is checked with the simulator's options.
    options.cpu = parseInteger('simulate', '--cpu', values.cpu, 0, 2 ** 31 - 1);
  }
  if (values.seed !== undefined)
    options.seed = parseInteger('simulate', '--seed', values.seed, 0, 0xffff_ffff);
  if (values['auth-key-file'] !== undefined) {
    options.key = readKeyFile('simulate', values['auth-key-file']).keys[0] as Buffer;
  }

  const running = simulateFleet(options).catch((err: unknown) => {
    throw optionErrorAsUsage('simulate', err, flagOf);
  });

  const period = (hosts * 1000) / packetsPerSecond;
  process.stderr.write(
    `simulating ${plural(hosts, 'host')} -> ${values.to}: ${rate(packetsPerSecond)} heartbeats/s, each host every ${formatDuration(Math.round(period))}, ${durationMs === 0 ? 'until interrupted' : `for ${formatDuration(durationMs)}`}\n`,
  );
  const stop = untilSignal();
  void stop.then(() => controller.abort());

  const started = performance.now();
  const live = process.stderr.isTTY === true;
  const progress = setInterval(
    () => {
      const elapsed = (performance.now() - started) / 1000;
      const of = durationMs === 0 ? '' : ` / ${(durationMs / 1000).toFixed(1)}s`;
      const revived = reviveAtMs !== undefined && reviveAtMs <= elapsed * 1000;
      const stopped = revived
        ? 0
        : kills.filter((k) => k.atMs <= elapsed * 1000).reduce((n, k) => n + k.hosts, 0);
      const line = `[${elapsed.toFixed(1)}s${of}] ~${count((Math.min(elapsed * 1000, maxTime) * packetsPerSecond) / 1000)} heartbeats offered at ${rate(packetsPerSecond)}/s${stopped > 0 ? `, ${count(stopped)} hosts stopped` : ''}`;
      process.stderr.write(live ? `\r\x1b[K${line}` : `${line}\n`);
    },
    live ? 1000 : 5000,
  );
  let report: FleetReport;
  try {
    report = await running;
  } finally {
    clearInterval(progress);
    if (live) process.stderr.write('\r\x1b[K');
  }
  if (values.json === true) {
    // Per-host send times stay out: with a million hosts they would be megabytes on one line.
    // So does longGaps, which this command never asks for (always empty).
    const killed = report.kills.map((k, i) => ({ ...kills[i], at: k.at }));
    process.stdout.write(`${JSON.stringify({ ...report, kills: killed, longGaps: undefined })}\n`);
  } else {
    process.stdout.write(reportText(report, options));
  }
  return 0;
}

export const simulate: Command = {
  name: 'simulate',
  summary:
    'send heartbeats for a simulated fleet (native fleet simulator), with kills and restarts',
  help,
  run,
};
