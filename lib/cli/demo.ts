import type { HostEvent } from '../events.js';
import { Heartwatch } from '../heartwatch.js';
import { HeartbeatSender } from '../sender/heartbeat-sender.js';
import { fleetSimulatorAvailable, simulateFleet } from '../simulator.js';
import type { HeartwatchStats } from '../stats.js';
import {
  type Command,
  formatDuration,
  parseChoice,
  parseDuration,
  parseFlags,
  parseInteger,
  UsageError,
  untilSignal,
} from './args.js';
import { count } from './format.js';

const spec = {
  hosts: { type: 'string' },
  duration: { type: 'string' },
  fleet: { type: 'string' },
  engine: { type: 'string' },
} as const;

/** Every simulated host beats this often; the server declares it down this long after its last beat. */
const intervalMs = 250;
const timeoutMs = 1000;
const maxSenderHosts = 500;

const help = `Usage: heartwatch demo [--hosts N] [--duration D]

Shows failure detection live, on loopback, with nothing to set up: starts a server on an
ephemeral port and a simulated fleet that beats every ${intervalMs} ms, then
  at 25% of the run  crashes 5% of the hosts (they go quiet): each is reported down once
                     ${timeoutMs} ms have passed since its last heartbeat (its deadline)
  at 35%             stops 2% cleanly (they send LEAVE): down at once, reason "left"
  at 45%             restarts 1% (new incarnation): a "restart" event each
  at 65%             revives the crashed hosts: "up" again, recovered
and prints what died when and how long after its deadline it was detected. Ends by itself
with a summary; exit 0 when every planned failure was detected and nothing else was.

Flags:
  --hosts N          simulated hosts, 20 to 100000                     (default 2000)
  --duration D       length of the run, 4s to 10m                      (default 20s)
  --fleet KIND       auto: the native fleet simulator when the addon loads, else one
                     HeartbeatSender per host (at most ${maxSenderHosts} hosts); native; senders
                                                                       (default auto)
  --engine E         server engine: auto, native or js                 (default auto)
  -h, --help         show this help

Exit codes: 0 detection matched the plan, 1 it did not (or a runtime error), 2 usage error,
130 interrupted.
`;

/** Which hosts each step of the demo touches (index ranges) and when (ms after the start). */
interface Plan {
  hosts: number;
  durationMs: number;
  crash: { first: number; count: number; atMs: number };
  leave: { first: number; count: number; atMs: number };
  restart: { first: number; count: number; atMs: number };
  reviveAtMs: number;
}

function makePlan(hosts: number, durationMs: number): Plan {
  const crash = Math.max(1, Math.round(hosts * 0.05));
  const leave = Math.max(1, Math.round(hosts * 0.02));
  const restart = Math.max(1, Math.round(hosts * 0.01));
  return {
    hosts,
    durationMs,
    crash: { first: 0, count: crash, atMs: Math.round(durationMs * 0.25) },
    leave: { first: crash, count: leave, atMs: Math.round(durationMs * 0.35) },
    restart: { first: crash + leave, count: restart, atMs: Math.round(durationMs * 0.45) },
    reviveAtMs: Math.round(durationMs * 0.65),
  };
}

/** A running fleet: sends until `stop()`, which resolves with a line about what it sent. */
interface Fleet {
  stop(): Promise<string>;
}

async function nativeFleet(plan: Plan, port: number): Promise<Fleet> {
  const controller = new AbortController();
  const run = simulateFleet({
    server: `udp://127.0.0.1:${port}`,
    hosts: plan.hosts,
    packetsPerSecond: (plan.hosts * 1000) / intervalMs,
    durationMs: 0,
    intervalMs,
    kills: [
      { firstHost: plan.crash.first, hosts: plan.crash.count, atMs: plan.crash.atMs },
      { firstHost: plan.leave.first, hosts: plan.leave.count, atMs: plan.leave.atMs, leave: true },
    ],
    restarts: [
      { firstHost: plan.restart.first, hosts: plan.restart.count, atMs: plan.restart.atMs },
      { firstHost: plan.crash.first, hosts: plan.crash.count, atMs: plan.reviveAtMs },
    ],
    signal: controller.signal,
  });
  // A run that fails at once (bad socket) should fail the demo before the timeline starts.
  await Promise.race([run, new Promise((resolve) => setTimeout(resolve, 20))]);
  return {
    async stop() {
      controller.abort();
      const report = await run;
      const errors = Object.entries(report.errors).map(([name, n]) => `${name} ${n}`);
      return `fleet sent ${count(report.packetsSent)} datagrams (${count(report.leavesSent)} LEAVE) at ${count(report.packetsPerSecond)}/s${errors.length > 0 ? `, send errors: ${errors.join(', ')}` : ''}`;
    },
  };
}

async function senderFleet(plan: Plan, port: number): Promise<Fleet> {
  const server = `udp://127.0.0.1:${port}`;
  const all: HeartbeatSender[] = [];
  const open = async (index: number): Promise<HeartbeatSender> => {
    const sender = new HeartbeatSender({ server, hostId: BigInt(index + 1), intervalMs });
    all.push(sender);
    sender.on('error', (err) =>
      process.stderr.write(`heartwatch demo: host ${index + 1}: ${err.message}\n`),
    );
    await sender.start();
    return sender;
  };
  const senders = await Promise.all(Array.from({ length: plan.hosts }, (_, i) => open(i)));
  const retire = (index: number, leave: boolean): Promise<void> =>
    (senders[index] as HeartbeatSender).close({ leave });
  const range = (first: number, n: number): number[] =>
    Array.from({ length: n }, (_, i) => first + i);
  const timers = [
    setTimeout(() => {
      for (const i of range(plan.crash.first, plan.crash.count)) void retire(i, false);
    }, plan.crash.atMs),
    setTimeout(() => {
      for (const i of range(plan.leave.first, plan.leave.count)) void retire(i, true);
    }, plan.leave.atMs),
    setTimeout(() => {
      for (const i of range(plan.restart.first, plan.restart.count)) {
        void retire(i, false).then(async () => {
          senders[i] = await open(i);
        });
      }
    }, plan.restart.atMs),
    setTimeout(() => {
      for (const i of range(plan.crash.first, plan.crash.count)) {
        void open(i).then((sender) => {
          senders[i] = sender;
        });
      }
    }, plan.reviveAtMs),
  ];
  return {
    async stop() {
      for (const timer of timers) clearTimeout(timer);
      await Promise.all(all.map((s) => s.close({ leave: false })));
      return `senders sent ${count(all.reduce((sum, s) => sum + s.sent, 0))} datagrams`;
    },
  };
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? Number.NaN;
}

const ms = (n: number): string => `${n.toFixed(1)} ms`;

/**
 * Follows the events against the plan: counts each expected kind, prints the first few of each
 * and a line when a group is complete, and counts anything the plan did not cause.
 */
class Tracker {
  readonly #plan: Plan;
  readonly #startEpoch: number;
  readonly latencies: number[] = [];
  firstUps = 0;
  crashed = 0;
  left = 0;
  restarted = 0;
  recovered = 0;
  readonly unexpected: HostEvent[] = [];
  #shown = new Map<string, number>();

  constructor(plan: Plan, startEpoch: number) {
    this.#plan = plan;
    this.#startEpoch = startEpoch;
  }

  #role(id: string): 'crash' | 'leave' | 'restart' | 'steady' {
    const index = Number(id) - 1;
    const within = (r: { first: number; count: number }): boolean =>
      index >= r.first && index < r.first + r.count;
    if (within(this.#plan.crash)) return 'crash';
    if (within(this.#plan.leave)) return 'leave';
    if (within(this.#plan.restart)) return 'restart';
    return 'steady';
  }

  #stamp(at: number): string {
    return `[${((at - this.#startEpoch) / 1000).toFixed(2).padStart(6)}s]`;
  }

  #show(kind: string, at: number, text: string): void {
    const shown = this.#shown.get(kind) ?? 0;
    this.#shown.set(kind, shown + 1);
    if (shown < 3) process.stdout.write(`${this.#stamp(at)} ${text}\n`);
  }

  say(text: string, at = Date.now()): void {
    process.stdout.write(`${this.#stamp(at)} ${text}\n`);
  }

  events(batch: readonly HostEvent[]): void {
    for (const e of batch) this.#one(e);
  }

  #one(e: HostEvent): void {
    const role = this.#role(e.id);
    const { crash, leave, restart } = this.#plan;
    if (e.type === 'up' && !e.recovered) {
      this.firstUps += 1;
      if (this.firstUps === this.#plan.hosts)
        this.say(`all ${count(this.#plan.hosts)} hosts up`, e.at);
    } else if (e.type === 'down' && e.reason === 'timeout' && role === 'crash') {
      this.crashed += 1;
      const late = e.at - (e.lastSeen + timeoutMs);
      this.latencies.push(late);
      this.#show(
        'crash',
        e.at,
        `down     host ${e.id.padStart(5)} ${e.address}  last heartbeat at ${((e.lastSeen - this.#startEpoch) / 1000).toFixed(2)}s, deadline +${timeoutMs} ms, detected ${ms(late)} after it`,
      );
      if (this.crashed === crash.count) {
        const sorted = [...this.latencies].sort((a, b) => a - b);
        this.say(
          `all ${crash.count} crashed hosts detected; after their deadline: p50 ${ms(percentile(sorted, 50))}, p99 ${ms(percentile(sorted, 99))}, max ${ms(sorted[sorted.length - 1] as number)}`,
          e.at,
        );
      }
    } else if (e.type === 'down' && e.reason === 'left' && role === 'leave') {
      this.left += 1;
      this.#show(
        'leave',
        e.at,
        `down     host ${e.id.padStart(5)} ${e.address}  reason "left" (it sent LEAVE)`,
      );
      if (this.left === leave.count)
        this.say(`all ${leave.count} leaving hosts down, reason "left"`, e.at);
    } else if (e.type === 'restart' && role === 'restart') {
      this.restarted += 1;
      this.#show(
        'restart',
        e.at,
        `restart  host ${e.id.padStart(5)} ${e.address}  incarnation ${e.previousIncarnation} -> ${e.incarnation}`,
      );
      if (this.restarted === restart.count)
        this.say(`all ${restart.count} restarts reported`, e.at);
    } else if (e.type === 'up' && e.recovered && role === 'crash') {
      this.recovered += 1;
      this.#show(
        'recover',
        e.at,
        `up       host ${e.id.padStart(5)} ${e.address}  recovered, incarnation ${e.incarnation}`,
      );
      if (this.recovered === crash.count)
        this.say(`all ${crash.count} crashed hosts recovered`, e.at);
    } else {
      this.unexpected.push(e);
      if (this.unexpected.length <= 10)
        process.stdout.write(
          `${this.#stamp(e.at)} UNEXPECTED ${e.type} of host ${e.id} (${JSON.stringify(e)})\n`,
        );
    }
  }
}

/** The demo's flags, checked. */
function parseDemoFlags(argv: string[]) {
  const values = parseFlags('demo', argv, spec);
  const hosts =
    values.hosts === undefined ? 2000 : parseInteger('demo', '--hosts', values.hosts, 20, 100_000);
  const durationMs =
    values.duration === undefined
      ? 20_000
      : parseDuration('demo', '--duration', values.duration, 4000, 600_000);
  const fleetChoice =
    values.fleet === undefined
      ? 'auto'
      : parseChoice('demo', '--fleet', values.fleet, ['auto', 'native', 'senders'] as const);
  const engine =
    values.engine === undefined
      ? 'auto'
      : parseChoice('demo', '--engine', values.engine, ['auto', 'native', 'js'] as const);
  return { hosts, durationMs, fleetChoice, engine };
}

/** Which fleet runs and how many hosts it can hold; says so on stderr. */
function chooseFleet(
  fleetChoice: 'auto' | 'native' | 'senders',
  hosts: number,
): { useNative: boolean; fleetHosts: number } {
  const native = fleetSimulatorAvailable();
  if (fleetChoice === 'native' && !native) {
    throw new UsageError(
      'heartwatch demo: --fleet native: the native fleet simulator is not available (the addon did not load)',
    );
  }
  const useNative = fleetChoice === 'native' || (fleetChoice === 'auto' && native);
  const fleetHosts = useNative ? hosts : Math.min(hosts, maxSenderHosts);
  if (!useNative) {
    process.stderr.write(
      `heartwatch demo: ${fleetChoice === 'senders' ? 'as asked,' : 'the native fleet simulator is not available, so'} the fleet is ${fleetHosts} HeartbeatSender instances in this process${fleetHosts < hosts ? ` (not ${hosts})` : ''}\n`,
    );
  } else {
    process.stderr.write(
      'heartwatch demo: the fleet is the native fleet simulator (sendmmsg on its own thread)\n',
    );
  }
  return { useNative, fleetHosts };
}

/** Announces each step of the plan when it is due; resolves when the run ends or is interrupted. */
async function playPlan(
  plan: Plan,
  tracker: Tracker,
  startEpoch: number,
  durationMs: number,
): Promise<'done' | 'signal'> {
  const range = (r: { first: number; count: number }): string =>
    `ids ${r.first + 1}-${r.first + r.count}`;
  const steps: [number, string][] = [
    [
      plan.crash.atMs,
      `CRASH    ${plan.crash.count} hosts (${range(plan.crash)}) stop sending without a word`,
    ],
    [
      plan.leave.atMs,
      `LEAVE    ${plan.leave.count} hosts (${range(plan.leave)}) shut down cleanly`,
    ],
    [
      plan.restart.atMs,
      `RESTART  ${plan.restart.count} hosts (${range(plan.restart)}) restart with a new incarnation`,
    ],
    [plan.reviveAtMs, `REVIVE   the ${plan.crash.count} crashed hosts start again`],
  ];
  const timers = steps.map(([at, text]) =>
    setTimeout(() => tracker.say(text), at - (Date.now() - startEpoch)),
  );
  const stop = untilSignal();
  const ended = new Promise<'done'>((resolve) =>
    setTimeout(() => resolve('done'), durationMs - (Date.now() - startEpoch)),
  );
  const outcome = await Promise.race([stop, ended]);
  for (const timer of timers) clearTimeout(timer);
  return outcome === 'done' ? 'done' : 'signal';
}

/** Prints the summary; returns whether every planned event was seen and nothing else. */
function printSummary(
  plan: Plan,
  tracker: Tracker,
  stats: HeartwatchStats,
  run: { engine: string; useNative: boolean; fleetLine: string; durationMs: number; done: boolean },
): boolean {
  const sorted = [...tracker.latencies].sort((a, b) => a - b);
  const line = (label: string, got: number, want: number, extra = ''): string =>
    `  ${label.padEnd(9)}${got}/${want}${extra}\n`;
  process.stdout.write(
    `\nsummary (${run.engine} engine, ${run.useNative ? 'native fleet simulator' : 'HeartbeatSender fleet'}, ${run.done ? formatDuration(run.durationMs) : 'interrupted'}):\n` +
      `  ${count(plan.hosts)} hosts; server received ${count(stats.received)} datagrams, ${count(stats.malformed)} malformed, drops: kernel ${count(stats.kernelDrops)}, ring ${count(stats.ringDrops)}; ${run.fleetLine}\n` +
      line(
        'crashed',
        tracker.crashed,
        plan.crash.count,
        sorted.length > 0
          ? ` detected; after the deadline p50 ${ms(percentile(sorted, 50))}, p99 ${ms(percentile(sorted, 99))}, max ${ms(sorted[sorted.length - 1] as number)} (at - lastSeen - ${timeoutMs} ms, from the events)`
          : ' detected',
      ) +
      line('left', tracker.left, plan.leave.count, ' down with reason "left"') +
      line('restart', tracker.restarted, plan.restart.count, ' restarts reported') +
      line('revived', tracker.recovered, plan.crash.count, ' recovered') +
      `  unexpected events: ${tracker.unexpected.length}\n`,
  );
  return (
    tracker.crashed === plan.crash.count &&
    tracker.left === plan.leave.count &&
    tracker.restarted === plan.restart.count &&
    tracker.recovered === plan.crash.count &&
    tracker.unexpected.length === 0
  );
}

async function run(argv: string[]): Promise<number> {
  const { hosts, durationMs, fleetChoice, engine } = parseDemoFlags(argv);
  const { useNative, fleetHosts } = chooseFleet(fleetChoice, hosts);
  const plan = makePlan(fleetHosts, durationMs);

  const hw = new Heartwatch({
    host: '127.0.0.1',
    port: 0,
    timeoutMs,
    missedBeats: 0,
    receivers: 1,
    workers: 1,
    cpus: null,
    engine,
  });
  hw.on('warning', (w) => process.stderr.write(`heartwatch demo: warning: ${w.message}\n`));
  const info = await hw.listen();
  // The fleet's clock for the plan starts now; steps and events are stamped against it.
  const startEpoch = Date.now();
  const tracker = new Tracker(plan, startEpoch);
  hw.on('events', (batch) => tracker.events(batch));
  hw.on('error', (err) => process.stderr.write(`heartwatch demo: error: ${err.message}\n`));

  process.stdout.write(
    `heartwatch demo: server on 127.0.0.1:${info.port} (${hw.engine} engine), ${count(fleetHosts)} hosts beating every ${intervalMs} ms; a host is down ${timeoutMs} ms after its last heartbeat; ${formatDuration(durationMs)} run\n`,
  );
  let fleet: Fleet;
  try {
    fleet = useNative ? await nativeFleet(plan, info.port) : await senderFleet(plan, info.port);
  } catch (err) {
    await hw.close();
    throw err;
  }
  const outcome = await playPlan(plan, tracker, startEpoch, durationMs);
  const fleetLine = await fleet.stop();
  const stats = hw.stats();
  await hw.close();

  const done = outcome === 'done';
  const ok = printSummary(plan, tracker, stats, {
    engine: hw.engine,
    useNative,
    fleetLine,
    durationMs,
    done,
  });
  if (!done) return 130;
  if (!ok) {
    process.stderr.write('heartwatch demo: detection did not match the plan (see the summary)\n');
    return 1;
  }
  return 0;
}

export const demo: Command = {
  name: 'demo',
  summary: 'watch failure detection live on loopback: crashes, leaves, restarts (ends by itself)',
  help,
  run,
};
