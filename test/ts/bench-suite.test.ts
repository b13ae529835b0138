// The benchmark suite's plumbing (bench/run.js): the reductions, the report, and one tiny
// scenario through the same code path as `npm run bench`. Nothing here is timed: the figures of
// a run on a shared machine are not something a test can pin down; their shape is.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { fleetSimulatorAvailable } from '../../lib/simulator.js';

const require = createRequire(import.meta.url);

type Row = Record<string, unknown> & {
  scenario: string;
  contender: string;
  vsBaseline?: Record<string, number | null>;
};
interface ScenarioModule {
  scenario: string;
  title: string;
  keys?: string[];
  columns: { field: string; label: string; ratio?: boolean }[];
  headline: { field: string; better: 'higher' | 'lower'; label: string; floor?: number };
  run(options: Record<string, unknown>): Promise<Row[]>;
}

const suite = require('../../bench/lib/suite.js') as {
  reduce(raw: Row[], o: { keys?: string[]; metrics: string[]; worst?: string[] }): Row[];
  addRatios(rows: Row[], o: { keys?: string[]; metrics: string[] }): Row[];
  defaultCpus(): { server: number; sender: number };
};
const report = require('../../bench/lib/report.js') as {
  markdown(result: unknown, scenarios: ScenarioModule[]): string;
  svg(result: unknown, scenarios: ScenarioModule[]): string;
  targets(rows: Row[]): { target: string; contender: string; figure: string; met: boolean }[];
};
const pause = require('../../bench/scenarios/pause.js') as ScenarioModule;
const sustainedStatus = require('../../bench/scenarios/sustained-status.js') as ScenarioModule;
const precision = require('../../bench/scenarios/precision.js') as ScenarioModule & {
  lateness(
    downs: [string, number, number, number][],
    killed: Set<string>,
    timeoutMs: number,
  ): Record<string, number | null>;
};
const tcpScenario = require('../../bench/scenarios/tcp.js') as ScenarioModule & {
  idleReaping(
    downs: { id: string; reason: string; at: number; lastSeen: number }[],
    silenced: Set<string>,
    idleTimeoutMs: number,
  ): Record<string, number | null>;
};

const precisionMetrics = [
  'p50Ms',
  'p99Ms',
  'maxMs',
  'listenerP50Ms',
  'listenerP99Ms',
  'listenerMaxMs',
  'earlyCount',
  'falseDowns',
  'eventsLost',
];

describe('bench suite reductions', () => {
  it('lateness: percentiles of down.at - deadline, early, false and missing downs', () => {
    const t = 1_000_000;
    const downs: [string, number, number, number][] = [
      ['1', t + 1000 + 2, t, t + 1000 + 3],
      ['2', t + 1000 + 4, t, t + 1000 + 5],
      ['2', t + 1000 + 9, t, t + 1000 + 9], // a second down of the same host is not counted twice
      ['3', t + 1000 - 1, t, t + 1000], // one millisecond early
      ['9', t + 1000, t, t + 1000], // never stopped: a false down
    ];
    const figures = precision.lateness(downs, new Set(['1', '2', '3', '4']), 1000);
    expect(figures).toEqual({
      p50Ms: 2,
      p99Ms: 4,
      maxMs: 4,
      listenerP50Ms: 3,
      listenerP99Ms: 5,
      listenerMaxMs: 5,
      earlyCount: 1,
      falseDowns: 1,
      eventsLost: 1,
    });
  });

  it('reduce: the median per metric, the worst run for zero-target counts, grouped by keys', () => {
    const raw = [3, 1, 2].flatMap((v, run) => [
      { scenario: 's', contender: 'node-dgram', hosts: 10, rate: v * 10, drops: run },
      { scenario: 's', contender: 'heartwatch-native', hosts: 10, rate: v * 40, drops: 0 },
      { scenario: 's', contender: 'node-dgram', hosts: 20, rate: v, drops: 0 },
    ]);
    const rows = suite.reduce(raw, {
      keys: ['hosts'],
      metrics: ['rate', 'drops'],
      worst: ['drops'],
    });
    expect(rows).toHaveLength(3);
    const dgram10 = rows.find((r) => r.contender === 'node-dgram' && r.hosts === 10);
    expect(dgram10).toMatchObject({ rate: 20, drops: 2, runs: 3 });
    const withRatios = suite.addRatios(rows, { keys: ['hosts'], metrics: ['rate', 'drops'] });
    const native = withRatios.find((r) => r.contender === 'heartwatch-native');
    expect(native?.vsBaseline).toEqual({ rate: 4, drops: 0 });
    const dgram20 = withRatios.find((r) => r.hosts === 20);
    // The baseline's own drops are 0 there: no ratio exists.
    expect(dgram20?.vsBaseline).toEqual({ rate: 1, drops: null });
  });

  it('report: a table per scenario with ratios, targets checked, a chart with a bar per contender', () => {
    const rows = [
      { contender: 'heartwatch-native', p99Ms: 1, listenerP99Ms: 2, earlyCount: 0, falseDowns: 0 },
      { contender: 'heartwatch-js', p99Ms: 12, listenerP99Ms: 13, earlyCount: 0, falseDowns: 3 },
      { contender: 'node-dgram', p99Ms: 96, listenerP99Ms: 96, earlyCount: 0, falseDowns: 0 },
    ].map((r) => ({ bench: 'detection', scenario: 'precision', ...r }));
    const result = {
      machine: { cpuModel: 'test cpu', cpus: 2, memoryGiB: 1, kernel: '6', node: 'v20' },
      generatedAt: '2026-01-01T00:00:00.000Z',
      quick: true,
      runs: 3,
      command: 'npm run bench -- --quick',
      cpus: { server: 1, sender: 0 },
      errors: [],
      rows: suite.addRatios(rows, { metrics: ['p99Ms', 'listenerP99Ms'] }),
    };
    const md = report.markdown(result, [precision]);
    expect(md).toContain('## Detection precision');
    expect(md).toMatch(/^\| heartwatch-native +\| – +\| 1 \(×0\.0104\) +\|/m);
    expect(md).toMatch(
      /^\| precision: p99 of down.at - deadline <= 10 ms +\| heartwatch-js +\| 12 ms +\| \*\*no\*\* +\|$/m,
    );
    expect(report.targets(result.rows).filter((t) => !t.met)).toHaveLength(2);
    const svg = report.svg(result, [precision]);
    expect(svg.startsWith('<svg')).toBe(true);
    // 96 / 2 and 96 / 13: the chart's labels, one bar per contender.
    expect(svg).toContain('<title>heartwatch-native: 48×</title>');
    expect(svg).toContain('<title>heartwatch-js: 7.38×</title>');
    expect(svg).toContain('<title>node-dgram: 1×</title>');
  });
});

describe('bench tcp: idle-connection reaping', () => {
  const t = 1_000_000;
  const down = (id: string, reason: string, lastSeen: number, lateMs: number) => ({
    id,
    reason,
    at: lastSeen + 3000 + lateMs,
    lastSeen,
  });

  it('figures: lateness after the idle deadline, early, missed and other downs apart', () => {
    const figures = tcpScenario.idleReaping(
      [
        down('1', 'disconnected', t, 20),
        down('2', 'disconnected', t + 400, 35),
        down('2', 'disconnected', t + 400, 90), // a second down of one host counts once
        down('3', 'disconnected', t, -1), // reset a millisecond before its deadline
        down('9', 'disconnected', t, 5), // a host that kept beating: not a reap
        down('4', 'timeout', t, 2000), // a silenced host that timed out instead: missed
      ],
      new Set(['1', '2', '3', '4']),
      3000,
    );
    expect(figures).toEqual({
      idleSilenced: 4,
      idleReaped: 3,
      idleMinMs: -1,
      idleP50Ms: 20,
      idleP99Ms: 35,
      idleMaxMs: 35,
      idleEarly: 1,
      idleMissed: 1,
      idleOtherDowns: 2,
    });
  });

  it('report: reaping columns, n/a where a contender has no idle timeout, targets checked', () => {
    const reaping = {
      ...tcpScenario.idleReaping(
        [down('1', 'disconnected', t, 12), down('2', 'disconnected', t, 40)],
        new Set(['1', '2']),
        3000,
      ),
      idleCloses: 1, // the reactor counted one idle close for two reaps: a mismatch
    };
    const row = (contender: string, transport: string, extra: Record<string, unknown> = {}) => ({
      bench: 'tcp',
      scenario: 'tcp',
      contender,
      transport,
      hosts: 2000,
      payloadBytes: 0,
      heartbeatsPerSecond: 2000,
      cpuNsPerHeartbeat: 3000,
      rssGrowthBytesPerHost: 500,
      downsWhileBeating: 0,
      ...extra,
    });
    const rows = suite.addRatios(
      [
        row('heartwatch-native-tcp', 'tcp', reaping),
        row('node-net', 'tcp'),
        row('node-dgram', 'udp'),
      ],
      { keys: ['payloadBytes'], metrics: ['cpuNsPerHeartbeat'] },
    );
    const result = {
      machine: { cpuModel: 'test cpu', cpus: 2, memoryGiB: 1, kernel: '6', node: 'v20' },
      generatedAt: '2026-01-01T00:00:00.000Z',
      quick: true,
      runs: 1,
      command: 'npm run bench -- --scenarios tcp',
      cpus: { server: 1, sender: 0 },
      errors: [],
      rows,
    };
    const md = report.markdown(result, [tcpScenario]);
    expect(md).toContain('| reap p99 ms late |');
    expect(md).toMatch(
      /^\| heartwatch-native-tcp +\| tcp .*\| 0 +\| 2 +\| 12 +\| 12 +\| 40 +\| 40 +\| 0 +\| 0 +\|$/m,
    );
    expect(md).toMatch(
      /^\| node-net +\| tcp .*\| 0 +\| n\/a +\| n\/a +\| n\/a +\| n\/a +\| n\/a +\| n\/a +\| n\/a +\|$/m,
    );
    const tcpTargets = report.targets(result.rows).filter((r) => r.target.startsWith('tcp'));
    expect(tcpTargets.map((r) => [r.contender, r.figure, r.met])).toEqual([
      ['heartwatch-native-tcp', '2/2 (1 idle closes)', false],
      ['heartwatch-native-tcp', '0 early (min 12 ms late), 0 other', true],
    ]);
  });
});

describe.runIf(fleetSimulatorAvailable())('bench suite scenario, tiny', () => {
  it('precision with 200 hosts: one row per contender, every figure a finite number', async () => {
    const rows = await precision.run({
      runs: 1,
      hosts: 200,
      kill: 20,
      timeoutMs: 300,
      intervalMs: 50,
      scanIntervalMs: 50,
      cpus: suite.defaultCpus(),
    });
    expect(rows.map((r) => r.contender)).toEqual([
      'heartwatch-native',
      'heartwatch-js',
      'node-dgram',
    ]);
    for (const row of rows) {
      expect(row).toMatchObject({
        bench: 'detection',
        scenario: 'precision',
        hosts: 200,
        killed: 20,
        timeoutMs: 300,
        runs: 1,
      });
      for (const field of precisionMetrics) {
        expect(Number.isFinite(row[field]), `${row.contender} ${field}: ${row[field]}`).toBe(true);
      }
      expect(Object.keys(row.vsBaseline ?? {})).toEqual(precisionMetrics);
    }
    const baseline = rows.find((r) => r.contender === 'node-dgram');
    expect(baseline?.vsBaseline?.p99Ms).toBe(1);
  }, 20_000);

  it('pause with 400 hosts: heartwatch reports no false down around a stop of its process', async () => {
    const rows = await pause.run({
      runs: 1,
      hosts: 400,
      kill: 20,
      timeoutMs: 300,
      intervalMs: 50,
      scanIntervalMs: 50,
      pauseMs: 900,
      cpus: suite.defaultCpus(),
    });
    expect(rows.map((r) => r.contender)).toEqual([
      'heartwatch-native',
      'heartwatch-js',
      'node-dgram',
    ]);
    for (const row of rows) {
      expect(row).toMatchObject({ scenario: 'pause', hosts: 400, killed: 20, pauseMs: 900 });
      if (row.contender.startsWith('heartwatch')) {
        expect(row).toMatchObject({ falseDowns: 0, earlyCount: 0, eventsLost: 0 });
      }
    }
  }, 30_000);

  it('sustained-status with 2,000 hosts: a plain and a status row, updates a thousandth of beats', async () => {
    const rows = (await sustainedStatus.run({
      runs: 1,
      hosts: 2000,
      durationMs: 1000,
      contenders: ['heartwatch-native'],
      cpus: suite.defaultCpus(),
    })) as (Record<string, unknown> & { vsBaseline?: Record<string, number | null> })[];
    expect(rows.map((r) => [r.contender, r.statuses])).toEqual([
      ['heartwatch-native', 'none'],
      ['heartwatch-native', '10% x 64 B, new every 100th beat'],
    ]);
    type Figures = Record<
      'updatesPerSecond' | 'receivedPerSecond' | 'cpuNsPerHeartbeat' | 'rssBytesPerHost',
      number
    >;
    const [plain, status] = rows as [Figures, Figures];
    expect(plain.updatesPerSecond).toBe(0);
    expect(rows[0]?.vsBaseline?.receivedPerSecond).toBe(1);
    // 10% of beats carry a status and 1 in 100 of those changes it: 2,000 hosts beat hundreds
    // of times each in the run, so the staggered changes come to a thousandth of received beats.
    const expected = status.receivedPerSecond / 1000;
    expect(status.updatesPerSecond).toBeGreaterThan(expected * 0.8);
    expect(status.updatesPerSecond).toBeLessThan(expected * 1.2);
    expect(Number.isFinite(status.cpuNsPerHeartbeat)).toBe(true);
    expect(Number.isFinite(status.rssBytesPerHost)).toBe(true);
  }, 30_000);
});

// Bounded waits (bench/lib/wait.js): a run whose simulator died must fail, saying why, not hang.
interface WatchedChild {
  name: string;
  exit: { code: number | null; signal: string | null } | null;
  exited: Promise<{ code: number | null; signal: string | null }>;
  stderrTail(): string;
}
const wait = require('../../bench/lib/wait.js') as {
  watchChild(child: ChildProcess, name: string, o?: { echo?: boolean }): WatchedChild;
  waitUntil(
    done: () => boolean,
    o: {
      what: string;
      progress?: () => string;
      timeoutMs: number;
      child?: WatchedChild | null;
      pollMs?: number;
    },
  ): Promise<void>;
};

/** A real child process running `script` under node, its stderr piped and watched. */
function nodeChild(script: string): WatchedChild & { kill(): void } {
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'ignore', 'pipe'] });
  return Object.assign(wait.watchChild(child, 'the test child', { echo: false }), {
    kill: () => child.kill('SIGKILL'),
  });
}

describe('bench waits: bounded, and failing with what was missing', () => {
  it('a child that exits first: rejects at once with the progress, its exit code and stderr', async () => {
    const child = nodeChild('process.stderr.write("connect: ECONNRESET\\n"); process.exit(3)');
    const start = performance.now();
    await expect(
      wait.waitUntil(() => false, {
        what: 'all 5 hosts up',
        progress: () => '2 of 5 up',
        timeoutMs: 60_000,
        child,
      }),
    ).rejects.toThrow(
      /^gave up waiting for all 5 hosts up \(2 of 5 up\) after \d+ ms: the test child exited with code 3; its stderr ends: connect: ECONNRESET$/,
    );
    expect(performance.now() - start).toBeLessThan(10_000);
  });

  it('a child killed by a signal is named by the signal', async () => {
    const child = nodeChild('process.kill(process.pid, "SIGKILL")');
    await expect(
      wait.waitUntil(() => false, { what: 'x', timeoutMs: 60_000, child }),
    ).rejects.toThrow(/the test child exited on SIGKILL \(no stderr\)$/);
  });

  it('a child that never gets there: rejects at the deadline, the child still running', async () => {
    const child = nodeChild(
      'process.stderr.write("still connecting\\n"); setTimeout(() => {}, 30_000)',
    );
    // Once it has said something (a Node process takes a while to start on a loaded machine).
    await wait.waitUntil(() => child.stderrTail() !== '', {
      what: 'its stderr',
      timeoutMs: 10_000,
    });
    const start = performance.now();
    await expect(
      wait.waitUntil(() => false, { what: 'the end', timeoutMs: 300, child, pollMs: 20 }),
    ).rejects.toThrow(
      /^timed out after \d+ ms waiting for the end; the test child still running, its stderr ends: still connecting$/,
    );
    expect(performance.now() - start).toBeGreaterThanOrEqual(299);
    expect(child.exit).toBeNull();
    child.kill();
  });

  it('a condition that holds, even as the child exits, resolves', async () => {
    const child = nodeChild('process.exit(0)');
    await child.exited;
    await expect(
      wait.waitUntil(() => true, { what: 'x', timeoutMs: 1000, child }),
    ).resolves.toBeUndefined();
  });

  // The descriptor limit is too low for the simulator to open every connection: it exits (EMFILE)
  // before any host has beaten, as when a connect failed with ECONNRESET on a loaded machine.
  const underFdLimit = (script: string) =>
    spawnSync('/bin/sh', ['-c', 'ulimit -n 200 && exec "$0" -e "$1"', process.execPath, script], {
      encoding: 'utf8',
      timeout: 60_000,
    });

  it.runIf(fleetSimulatorAvailable())(
    'tcp-fleet: a simulator that dies connecting fails the run within a bound, saying why',
    () => {
      const fleet = JSON.stringify(require.resolve('../../bench/tcp-fleet.js'));
      const result = underFdLimit(
        `process.argv.push('--hosts', '400', '--seconds', '5'); require(${fleet})`,
      );
      expect(result.signal, 'tcp-fleet hung and was killed').toBeNull();
      expect(result.status).toBe(1);
      expect(result.stdout).toBe('');
      expect(result.stderr).toMatch(
        /gave up waiting for all 400 hosts up \(0 of 400 up\) after \d+ ms: the simulator exited with code 1; its stderr ends: .*EMFILE/s,
      );
    },
    70_000,
  );

  it.runIf(fleetSimulatorAvailable())(
    'the tcp scenario: that run fails, naming the contender and quoting what tcp-fleet said',
    () => {
      const scenario = JSON.stringify(require.resolve('../../bench/scenarios/tcp.js'));
      const result = underFdLimit(
        `require(${scenario}).run({ quick: true, runs: 1, contenders: ['heartwatch-native-tcp'] })` +
          '.then(() => process.exit(0), (e) => { console.error(e.message); process.exit(1); })',
      );
      expect(result.signal, 'the scenario hung and was killed').toBeNull();
      expect(result.status).toBe(1);
      expect(result.stderr).toMatch(
        /^heartwatch-native-tcp, 2000 hosts: tcp-fleet exited with code 1; its stderr ends: .*gave up waiting for all 2000 hosts up \(0 of 2000 up\)/s,
      );
    },
    70_000,
  );
});

// The peer contenders (bench/peers/): Redis and etcd started for real on loopback. `npm test`
// needs neither; where one is missing its smoke test is skipped and says how to install it.
type PeerResult = {
  status: 'ok' | 'failed' | 'skipped';
  reason?: string;
  peer: { version: string; args: string[]; dataDir: string; pid: number } | null;
  steadyAt: number;
  downs: [string, number][];
  load: {
    killed: [string, number][];
    longGaps: [string, number, number][];
    errors: number;
    beatsPerSecond: number;
  };
  cpuMicros: number;
  rssBytes: number;
  beats: number;
};
const { runPeer } = require('../../bench/peers/run-peer.js') as {
  runPeer(options: Record<string, unknown>): Promise<PeerResult>;
};
const servers = require('../../bench/peers/servers.js') as { versionOf(s: string): string | null };
const peersScenario = require('../../bench/scenarios/peers.js') as ScenarioModule & {
  figures(
    result: Pick<PeerResult, 'downs' | 'steadyAt' | 'load' | 'cpuMicros' | 'rssBytes' | 'beats'>,
    work: { timeoutMs: number; intervalMs: number; hosts: number },
  ): Record<string, number | boolean | null>;
  notes(rows: Row[]): string[];
};

describe('bench peers: figures and report', () => {
  it('figures: lateness from the last beat sent, downs before the steady state kept apart', () => {
    const t = 1_000_000;
    const result = {
      steadyAt: t,
      downs: [
        ['7', t - 500], // a host lost while the peer was being set up
        ['1', t + 5000 + 3000 + 40],
        ['2', t + 5000 + 3000 + 250],
        ['9', t + 6000], // kept beating: a false down
        ['3', t + 4000], // a stopped host down before its last beat: false, and still missed
      ] as [string, number][],
      load: {
        killed: [
          ['1', t + 5000],
          ['2', t + 5000],
          ['3', t + 5000], // never reported: missed
        ] as [string, number][],
        longGaps: [] as [string, number, number][],
        errors: 0,
        beatsPerSecond: 1000,
      },
      cpuMicros: 2000,
      rssBytes: 1 << 20,
      beats: 4000,
    };
    expect(
      peersScenario.figures(result, { timeoutMs: 3000, intervalMs: 1000, hosts: 1000 }),
    ).toEqual({
      p50Ms: 40,
      p99Ms: 250,
      maxMs: 250,
      eventsLost: 1,
      falseDowns: 2,
      beatsPerSecond: 1000,
      senderLagMaxMs: undefined,
      cpuNsPerHeartbeat: 500,
      rssBytes: 1 << 20,
      warmupDowns: 1,
      clientErrors: 0,
      senderShort: false,
    });
  });

  it('report: a contender that could not take a size is a row with its reason, and no bar', () => {
    const row = (contender: string, p99Ms: number | null, extra: Record<string, unknown> = {}) => ({
      bench: 'detection',
      scenario: 'peers',
      contender,
      config: 'defaults',
      hosts: 100_000,
      status: p99Ms === null ? 'failed' : 'ok',
      p50Ms: p99Ms,
      p99Ms,
      maxMs: p99Ms,
      ...extra,
    });
    const rows = suite.addRatios(
      [
        row('heartwatch-native', 2),
        row('node-dgram', 100),
        row('etcd-lease', null, { reason: 'set up 41000 of 100000 hosts in 180000 ms' }),
        // A size the baseline did not run: no ratio, no bar.
        row('heartwatch-native', 904, { hosts: 1_000_000 }),
        row('node-dgram', null, { hosts: 1_000_000, status: 'skipped' }),
      ],
      { keys: ['hosts'], metrics: ['p99Ms'] },
    );
    const result = {
      machine: { cpuModel: 'test cpu', cpus: 2, memoryGiB: 1, kernel: '6', node: 'v20' },
      generatedAt: '2026-01-01T00:00:00.000Z',
      quick: false,
      runs: 3,
      command: 'npm run bench',
      cpus: { server: 1, sender: 0 },
      errors: [],
      rows,
    };
    const md = report.markdown(result, [peersScenario]);
    expect(md).toMatch(/^\| etcd-lease +\| 100k +\| defaults +\| failed +\| – +\| – +\|/m);
    expect(md).toContain(
      '- etcd-lease (defaults), 100000 hosts: failed: set up 41000 of 100000 hosts in 180000 ms.',
    );
    const svg = report.svg(result, [peersScenario]);
    expect(svg).toContain('<title>heartwatch-native: 50×</title>');
    expect(svg).not.toContain('<title>etcd-lease');
    expect(svg.match(/<title>heartwatch-native: /g)).toHaveLength(1);
  });

  it('a peer whose server is not installed is reported skipped, with how to install it', async () => {
    const path = process.env.PATH;
    process.env.PATH = '/nonexistent';
    try {
      const result = await runPeer({
        contender: 'redis-ttl',
        config: 'defaults',
        hosts: 10,
        intervalMs: 500,
        timeoutMs: 2000,
        observeMs: 1000,
        setupBudgetMs: 1000,
        cpus: suite.defaultCpus(),
      });
      expect(result.status).toBe('skipped');
      expect(result.reason).toBe(
        'redis-server is not installed (bash scripts/system-deps.sh installs redis-server and etcd-server)',
      );
    } finally {
      process.env.PATH = path;
    }
  });
});

// Sender gaps (bench/peers/sender-gaps.js): one rule for the simulator's and the peers' downs.
type Gap = [string, number, number];
const senderGaps = require('../../bench/peers/sender-gaps.js') as {
  countSenderLate(
    downs: (string | number)[][],
    longGaps: Gap[],
    timeoutMs: number,
    o: { lastSeenKnown: boolean },
  ): number;
  withLastSent(down: [string, number], gaps: Map<string, number[]>, timeoutMs: number): unknown[];
  GapTracker: new (
    hosts: number,
  ) => {
    lastSent: Float64Array;
    sent(i: number, at: number): void;
    restart(): void;
    report(endAt: number, overMs: number): Gap[];
  };
};
const peersPause = require('../../bench/scenarios/peers-pause.js') as ScenarioModule;

describe('bench peers: downs the sender caused', () => {
  it('GapTracker: each host longest silence, to the end of the run, after a restart', () => {
    const tracker = new senderGaps.GapTracker(4);
    // Host 0 beats every 100 ms but for one 400 ms silence; host 1 every 100 ms; host 2 stops at
    // 300 (silent to the end); host 3 is never sent anything (not yet set up).
    for (let at = 100; at <= 1000; at += 100) {
      if (at < 500 || at > 800) tracker.sent(0, at);
      tracker.sent(1, at);
      if (at <= 300) tracker.sent(2, at);
    }
    expect(tracker.report(1000, 250)).toEqual([
      ['1', 400, 900],
      ['3', 300, 1000],
    ]);
    expect(tracker.report(1000, 500)).toEqual([['3', 300, 1000]]);
    expect(tracker.report(1000, 700)).toEqual([]);
    // A silence before the restart is forgotten; one that spans it is kept whole.
    tracker.restart();
    tracker.sent(0, 1100);
    tracker.sent(1, 1500);
    expect(tracker.report(1500, 250)).toEqual([
      ['1', 1100, 1500],
      ['2', 1000, 1500],
      ['3', 300, 1500],
    ]);
    expect(tracker.lastSent[2]).toBe(300);
  });

  it("one rule: a down is the sender's when no beat was sent from the last one seen to its deadline", () => {
    const timeoutMs = 3000;
    // Host 1: silent from 10,000 to 14,000; host 2: from 10,000 to 12,000 (shorter than a timeout,
    // as a long gap never is, but the rule must not need that).
    const longGaps: Gap[] = [
      ['1', 10_000, 14_000],
      ['2', 10_000, 12_000],
    ];
    const hw = (id: string, lastSeen: number) => [id, lastSeen + timeoutMs + 20, lastSeen];
    const known = { lastSeenKnown: true };
    // Heartwatch: its own lastSeen. The beat before the gap, then a deadline inside it: late.
    expect(senderGaps.countSenderLate([hw('1', 10_000)], longGaps, timeoutMs, known)).toBe(1);
    // The last beat seen came before the gap: the one sent at 10,000 was not read.
    expect(senderGaps.countSenderLate([hw('1', 9000)], longGaps, timeoutMs, known)).toBe(0);
    // The gap ended before the deadline: a beat was sent in time, the down is the detector's.
    expect(senderGaps.countSenderLate([hw('2', 10_000)], longGaps, timeoutMs, known)).toBe(0);
    expect(senderGaps.countSenderLate([hw('3', 10_000)], longGaps, timeoutMs, known)).toBe(0);
    // A peer: no lastSeen; delivered at 13,500, its last beat was sent by 10,500: the gap's start.
    const gaps = new Map(longGaps.map(([id, ...gap]) => [id, gap]));
    expect(senderGaps.withLastSent(['1', 13_500], gaps, timeoutMs)).toEqual(['1', 13_500, 10_000]);
    const peer = { lastSeenKnown: false };
    expect(senderGaps.countSenderLate([['1', 13_500]], longGaps, timeoutMs, peer)).toBe(1);
    // Delivered after the gap ended, a timeout later: the beat sent at 14,000 was not read.
    expect(senderGaps.countSenderLate([['1', 17_500]], longGaps, timeoutMs, peer)).toBe(0);
    // Before the gap's first deadline: beats sent within its timeout were not read.
    expect(senderGaps.countSenderLate([['1', 12_500]], longGaps, timeoutMs, peer)).toBe(0);
    expect(senderGaps.countSenderLate([['2', 13_500]], longGaps, timeoutMs, peer)).toBe(0);
    expect(senderGaps.countSenderLate([['3', 13_500]], longGaps, timeoutMs, peer)).toBe(0);
  });
});

const peerServers = { 'redis-ttl': 'redis', 'redis-zset': 'redis', 'etcd-lease': 'etcd' } as const;
const binaries = { redis: 'redis-server', etcd: 'etcd' } as const;
for (const [contender, server] of Object.entries(peerServers)) {
  const installed = servers.versionOf(server) !== null;
  const name = installed
    ? `${contender}: a real ${binaries[server]} on loopback; 5 of 50 hosts stop, each reported once, none falsely, then the server is gone`
    : `${contender}: skipped, ${binaries[server]} is not installed (bash scripts/system-deps.sh installs it)`;
  it.skipIf(!installed)(
    name,
    async () => {
      const result = await runPeer({
        contender,
        config: 'defaults',
        hosts: 50,
        intervalMs: 500,
        timeoutMs: 2000,
        kill: 5,
        firstKill: 10,
        observeMs: 4000,
        setupBudgetMs: 20_000,
        cpus: suite.defaultCpus(),
      });
      expect(result.status, result.reason).toBe('ok');
      expect(result.peer?.version).toBeTruthy();
      const killed = new Map(result.load.killed);
      expect([...killed.keys()]).toEqual(['11', '12', '13', '14', '15']);
      // The stopped hosts, silent from their last beat to the end of the run, and no other host.
      expect(result.load.longGaps.map(([id]) => id)).toEqual(['11', '12', '13', '14', '15']);
      for (const [id, start, end] of result.load.longGaps) {
        expect(start).toBe(killed.get(id));
        expect(end - start).toBeGreaterThan(2000);
      }
      const steadyDowns = result.downs.filter(([, at]) => at >= result.steadyAt);
      expect(steadyDowns.map(([id]) => id).sort()).toEqual(['11', '12', '13', '14', '15']);
      for (const [id, at] of steadyDowns) {
        // Never before the deadline (the zset poller compares on the sender's clock, same host).
        expect(at).toBeGreaterThanOrEqual((killed.get(id) ?? 0) + 2000 - 1);
      }
      expect(result.load.errors).toBe(0);
      expect(result.beats).toBeGreaterThan(0);
      expect(result.cpuMicros).toBeGreaterThan(0);
      expect(result.rssBytes).toBeGreaterThan(0);
      // Stopped, and its data directory (on tmpfs) removed with it.
      const fs = await import('node:fs');
      expect(result.peer?.dataDir).toMatch(/^\/dev\/shm\/heartwatch-bench-/);
      expect(fs.existsSync(result.peer?.dataDir ?? '')).toBe(false);
      expect(() => process.kill(result.peer?.pid ?? 0, 0)).toThrow(/ESRCH/);
    },
    40_000,
  );
}

// The peers-pause scenario through its own code path, on a real redis-server: the peers' rows
// now separate the downs their load generator caused, as heartwatch's do.
it.skipIf(servers.versionOf('redis') === null)(
  'peers-pause, redis-ttl with 200 hosts: sender-late downs counted apart, as for heartwatch',
  async () => {
    const rows = await peersPause.run({
      runs: 1,
      contenders: ['redis-ttl'],
      hosts: 200,
      intervalMs: 500,
      timeoutMs: 2000,
      pauseMs: 1000,
      cpus: suite.defaultCpus(),
    });
    expect(rows.map((r) => [r.contender, r.config, r.status])).toEqual([
      ['redis-ttl', 'defaults', 'ok'],
      ['redis-ttl', 'tuned', 'ok'],
    ]);
    for (const row of rows) {
      expect(Number.isInteger(row.senderLateDowns), `${row.config}: ${row.senderLateDowns}`).toBe(
        true,
      );
      expect(Number.isInteger(row.falseDowns)).toBe(true);
    }
  },
  60_000,
);
