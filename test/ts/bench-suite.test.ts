// The benchmark suite's plumbing (bench/run.js): the reductions, the report, and one tiny
// scenario through the same code path as `npm run bench`. Nothing here is timed: the figures of
// a run on a shared machine are not something a test can pin down; their shape is.
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
const precision = require('../../bench/scenarios/precision.js') as ScenarioModule & {
  lateness(
    downs: [string, number, number, number][],
    killed: Set<string>,
    timeoutMs: number,
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
});
