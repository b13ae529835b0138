// Turns the suite's rows into the Markdown tables and the SVG chart of bench/results/latest.*.
// Scenarios describe their own columns (bench/scenarios/*.js `columns`, `headline`).
const { baseline } = require('./suite.js');

const contenderOrder = [
  'bare-recvmmsg',
  'heartwatch-native',
  'heartwatch-native-auth',
  'heartwatch-js',
  'node-dgram',
  'redis-ttl',
  'redis-zset',
  'etcd-lease',
];
const colors = {
  'bare-recvmmsg': '#6b6b6b',
  'heartwatch-native': '#1f6fb4',
  'heartwatch-js': '#5fb0e6',
  'node-dgram': '#e08a2c',
  'redis-ttl': '#c0392b',
  'redis-zset': '#e6776b',
  'etcd-lease': '#3c9d5d',
};

/** Three significant digits, with k / M for large values; integers below 10 000 as they are. */
function formatNumber(value) {
  if (value === null || value === undefined) return '–';
  if (!Number.isFinite(value)) return String(value);
  const abs = Math.abs(value);
  if (abs >= 1e6) return `${Number((value / 1e6).toPrecision(3))}M`;
  if (abs >= 1e4) return `${Number((value / 1e3).toPrecision(3))}k`;
  if (Number.isInteger(value)) return String(value);
  return String(Number(value.toPrecision(3)));
}

function formatRatio(ratio) {
  if (ratio === null || ratio === undefined) return '';
  return ` (×${formatNumber(ratio)})`;
}

function sortRows(rows, keys) {
  return [...rows].sort((a, b) => {
    for (const key of keys) {
      if (a[key] !== b[key]) return a[key] < b[key] ? -1 : 1;
    }
    return contenderOrder.indexOf(a.contender) - contenderOrder.indexOf(b.contender);
  });
}

/** A Markdown table with its columns padded to one width, as the formatter (Biome) lays them out. */
function table(header, body) {
  const widths = header.map((h, i) => Math.max(3, h.length, ...body.map((r) => r[i].length)));
  const line = (cells) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
}

/** One Markdown table: a row per contender (and key values), figures with their ratio. */
function scenarioTable(meta, rows) {
  const body = sortRows(rows, meta.keys ?? []).map((row) => [
    row.contender,
    ...meta.columns.map((c) => {
      const ratio = c.ratio === false ? null : row.vsBaseline?.[c.field];
      // `absent`: what a column says for a contender that cannot have the figure (vs '–', none measured).
      if ((row[c.field] === null || row[c.field] === undefined) && c.absent) return c.absent;
      return `${formatNumber(row[c.field])}${formatRatio(ratio)}`;
    }),
  ]);
  return table(['contender', ...meta.columns.map((c) => c.label)], body);
}

/** The targets the issue sets for heartwatch, checked against this run's rows. */
function targets(rows) {
  const out = [];
  const heartwatch = (scenario) =>
    rows.filter((r) => r.scenario === scenario && r.contender.startsWith('heartwatch'));
  for (const r of heartwatch('precision')) {
    out.push(
      [
        `precision: p99 of down.at - deadline <= 10 ms`,
        r.contender,
        `${r.p99Ms} ms`,
        r.p99Ms <= 10,
      ],
      [`precision: never early`, r.contender, `${r.earlyCount} early`, r.earlyCount === 0],
      [`precision: zero false downs`, r.contender, `${r.falseDowns}`, r.falseDowns === 0],
    );
  }
  for (const r of heartwatch('pause')) {
    out.push(
      [
        `pause: zero false downs around a 2 s stop`,
        r.contender,
        `${r.falseDowns}`,
        r.falseDowns === 0,
      ],
      [`pause: never early`, r.contender, `${r.earlyCount} early`, r.earlyCount === 0],
    );
  }
  for (const r of heartwatch('mass-failure')) {
    const drops = r.kernelDrops + r.ringDrops;
    out.push(
      [
        `mass failure: every down reaches JS`,
        r.contender,
        `${r.eventsLost} lost`,
        r.eventsLost === 0,
      ],
      [
        `mass failure: survivors' heartbeats not dropped`,
        r.contender,
        `${drops} dropped`,
        drops === 0,
      ],
      [`mass failure: no false downs`, r.contender, `${r.falseDowns}`, r.falseDowns === 0],
    );
  }
  for (const r of heartwatch('sustained')) {
    out.push([
      `sustained (${formatNumber(r.hosts)} hosts): zero false downs`,
      r.contender,
      `${r.falseDowns}`,
      r.falseDowns === 0,
    ]);
  }
  for (const r of heartwatch('tcp').filter((row) => typeof row.idleReaped === 'number')) {
    const size = `${formatNumber(r.hosts)} hosts, ${r.payloadBytes} B`;
    out.push(
      [
        `tcp (${size}): every silent connection reaped, as the reactor counted`,
        r.contender,
        `${r.idleReaped}/${r.idleSilenced} (${r.idleCloses} idle closes)`,
        r.idleMissed === 0 && r.idleCloses === r.idleReaped,
      ],
      [
        `tcp (${size}): no reap early, no other down`,
        r.contender,
        `${r.idleEarly} early (min ${formatNumber(r.idleMinMs)} ms late), ${r.idleOtherDowns} other`,
        r.idleEarly === 0 && r.idleOtherDowns === 0,
      ],
    );
  }
  return out.map(([target, contender, figure, met]) => ({ target, contender, figure, met }));
}

function describeMachine(m) {
  return `${m.cpuModel}, ${m.cpus} CPUs, ${m.memoryGiB} GiB, Linux ${m.kernel}, Node ${m.node}`;
}

/** latest.md: how it was made, the chart, the targets, then a table per scenario. */
function markdown(result, scenarios) {
  const { runs } = result;
  const parts = [
    '# Benchmark suite: latest results',
    '',
    `\`${result.command}\`, ${result.generatedAt}, on ${describeMachine(result.machine)}. ` +
      `Servers pinned to CPU ${result.cpus.server}, the fleet simulator to CPU ${result.cpus.sender}.`,
    '',
    `Each figure is the median of ${runs} runs (counts whose target is zero: the worst run); ` +
      `(×r) is the figure divided by the ${baseline} baseline's in the same run.`,
    '',
    ...(result.kept ?? []).flatMap((kept) => [
      `Kept from an earlier run (\`${kept.command}\`, ${kept.generatedAt}, ` +
        `median of ${kept.runs} runs): ${kept.scenarios.join(', ')}.`,
      '',
    ]),
    '![heartwatch against the node:dgram + Map baseline](latest.svg)',
    '',
    '## Targets',
    '',
    table(
      ['target', 'contender', 'figure', 'met'],
      targets(result.rows).map((t) => [t.target, t.contender, t.figure, t.met ? 'yes' : '**no**']),
    ),
  ];
  for (const meta of scenarios) {
    const rows = result.rows.filter((r) => r.scenario === meta.scenario);
    if (rows.length === 0) continue;
    parts.push('', `## ${meta.title}`, '', scenarioTable(meta, rows));
    const notes = meta.notes?.(rows) ?? [];
    if (notes.length > 0) parts.push('', ...notes);
  }
  for (const error of result.errors) {
    parts.push('', `**${error.scenario} failed:** ${error.message}`);
  }
  return `${parts.join('\n')}\n`;
}

const xmlText = (text) =>
  String(text).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/**
 * How many times better than the baseline: > 1 is better, whichever way the metric points. A
 * figure below the headline's `floor` (the resolution of the clock behind it) counts as the floor.
 */
function advantage(row, base, headline) {
  // A contender that produced no figure (failed, skipped), or a group whose baseline did not,
  // has no bar.
  if (typeof row[headline.field] !== 'number' || typeof base[headline.field] !== 'number') {
    return null;
  }
  const floor = headline.floor ?? 0;
  const a = Math.max(row[headline.field], floor);
  const b = Math.max(base[headline.field], floor);
  if (!(a > 0 && b > 0)) return null;
  return headline.better === 'higher' ? a / b : b / a;
}

/**
 * latest.svg: for each scenario's headline figure (per fleet size for sustained), a group of bars,
 * one per contender, drawn from the 1× line of the baseline on a log scale: up is better.
 */
function svg(result, scenarios) {
  const groups = [];
  for (const meta of scenarios) {
    if (!meta.headline) continue;
    const rows = result.rows.filter((r) => r.scenario === meta.scenario);
    const keys = meta.keys ?? [];
    const seen = new Set();
    for (const row of sortRows(rows, keys)) {
      const key = JSON.stringify(keys.map((k) => row[k]));
      if (seen.has(key)) continue;
      seen.add(key);
      const same = rows.filter((r) => JSON.stringify(keys.map((k) => r[k])) === key);
      const base = same.find((r) => r.contender === baseline);
      if (!base) continue;
      const bars = sortRows(same, [])
        .map((r) => ({ contender: r.contender, value: advantage(r, base, meta.headline) }))
        .filter((b) => b.value !== null);
      const detail = keys.map((k) => `${formatNumber(row[k])} ${k}`).join(', ');
      groups.push({ title: meta.title, detail, meta, bars });
    }
  }
  const values = groups.flatMap((g) => g.bars.map((b) => b.value));
  const low = 10 ** Math.floor(Math.log10(Math.min(0.5, ...values)));
  const high = 10 ** Math.ceil(Math.log10(Math.max(2, ...values)));
  const width = Math.max(640, 90 + groups.length * 150);
  const height = 460;
  const plot = { left: 70, right: width - 20, top: 86, bottom: height - 84 };
  const y = (v) =>
    plot.bottom -
    ((Math.log10(v) - Math.log10(low)) / (Math.log10(high) - Math.log10(low))) *
      (plot.bottom - plot.top);
  const out = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${width / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">heartwatch and its peers against a node:dgram + Map detector (times better, log scale; up is better)</text>`,
    `<text x="${width / 2}" y="40" text-anchor="middle" fill="#555">${xmlText(describeMachine(result.machine))}; ${xmlText(result.command)}</text>`,
  );
  let legendX = plot.left;
  const charted = new Set(groups.flatMap((g) => g.bars.map((b) => b.contender)));
  for (const contender of contenderOrder.filter((c) => charted.has(c))) {
    out.push(
      `<rect x="${legendX}" y="54" width="12" height="12" fill="${colors[contender]}"/>`,
      `<text x="${legendX + 16}" y="64">${contender}</text>`,
    );
    legendX += 24 + contender.length * 7;
  }
  for (let decade = low; decade <= high * 1.0001; decade *= 10) {
    const yy = y(decade).toFixed(1);
    out.push(
      `<line x1="${plot.left}" x2="${plot.right}" y1="${yy}" y2="${yy}" stroke="${Math.abs(decade - 1) < 1e-9 ? '#333' : '#ddd'}"/>`,
      `<text x="${plot.left - 6}" y="${yy}" dy="4" text-anchor="end">${formatNumber(decade)}×</text>`,
    );
  }
  const groupWidth = (plot.right - plot.left) / Math.max(1, groups.length);
  groups.forEach((group, g) => {
    const x0 = plot.left + g * groupWidth;
    const barWidth = Math.min(26, (groupWidth - 20) / Math.max(1, group.bars.length));
    const start = x0 + (groupWidth - barWidth * group.bars.length) / 2;
    group.bars.forEach((bar, i) => {
      const x = start + i * barWidth;
      // A bar at 1x (the baseline itself) is drawn as a thin mark across the 1x line.
      const h = Math.max(4, Math.abs(y(bar.value) - y(1)));
      const top = Math.abs(y(bar.value) - y(1)) < 4 ? y(1) - 2 : Math.min(y(bar.value), y(1));
      out.push(
        `<rect x="${x.toFixed(1)}" y="${top.toFixed(1)}" width="${(barWidth - 3).toFixed(1)}" height="${h.toFixed(1)}" fill="${colors[bar.contender]}"><title>${bar.contender}: ${formatNumber(bar.value)}×</title></rect>`,
      );
      const labelY = bar.value >= 1 ? top - 4 : top + h + 12;
      out.push(
        `<text x="${(x + (barWidth - 3) / 2).toFixed(1)}" y="${labelY.toFixed(1)}" text-anchor="middle" font-size="10">${formatNumber(bar.value)}</text>`,
      );
    });
    const cx = (x0 + groupWidth / 2).toFixed(1);
    const { label, better } = group.meta.headline;
    const lines = [group.detail, label, `(${better} is better)`].filter(Boolean);
    out.push(
      `<text x="${cx}" y="${plot.bottom + 18}" text-anchor="middle" font-weight="bold">${xmlText(group.title)}</text>`,
      ...lines.map(
        (line, i) =>
          `<text x="${cx}" y="${plot.bottom + 33 + 14 * i}" text-anchor="middle" fill="#555" font-size="11">${xmlText(line)}</text>`,
      ),
    );
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

module.exports = { formatNumber, markdown, scenarioTable, svg, targets };
