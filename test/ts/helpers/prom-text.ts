// A strict reader of the Prometheus text exposition format 0.0.4: every line must be a HELP, a
// TYPE or a sample; every sample must belong to the family declared just before it, with the
// suffixes its type allows; label values must be escaped; histogram buckets must be cumulative
// and end in +Inf equal to _count. Anything else throws, naming the line.

export interface Family {
  name: string;
  help: string;
  type: string;
  samples: { name: string; labels: Record<string, string>; value: number }[];
}

const nameRe = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const sampleRe =
  /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\["\\n])*",?)*)\})? (-?[0-9.e+-]+|NaN|\+Inf|-Inf)$/;
const suffixes: Record<string, string[]> = {
  counter: [''],
  gauge: [''],
  untyped: [''],
  histogram: ['_bucket', '_sum', '_count'],
  summary: ['', '_sum', '_count'],
};

function parseLabels(text: string | undefined, line: string): Record<string, string> {
  const labels: Record<string, string> = {};
  if (text === undefined || text === '') return labels;
  for (const m of text.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\["\\n])*)"/g)) {
    const key = m[1] as string;
    if (key in labels) throw new Error(`duplicate label ${key}: ${line}`);
    labels[key] = (m[2] as string).replace(/\\(["\\n])/g, (_, c: string) => (c === 'n' ? '\n' : c));
  }
  return labels;
}

function checkHistogram(f: Family): void {
  const groups = new Map<string, { le: number; value: number }[]>();
  for (const s of f.samples.filter((x) => x.name === `${f.name}_bucket`)) {
    const { le, ...rest } = s.labels;
    if (le === undefined) throw new Error(`${f.name}_bucket without le`);
    const key = JSON.stringify(rest);
    const list = groups.get(key) ?? [];
    list.push({ le: le === '+Inf' ? Number.POSITIVE_INFINITY : Number(le), value: s.value });
    groups.set(key, list);
  }
  for (const [key, list] of groups) {
    for (let i = 1; i < list.length; i++) {
      const a = list[i - 1] as { le: number; value: number };
      const b = list[i] as { le: number; value: number };
      if (!(b.le > a.le) || b.value < a.value)
        throw new Error(`${f.name}${key}: buckets not cumulative`);
    }
    if (list.at(-1)?.le !== Number.POSITIVE_INFINITY) throw new Error(`${f.name}: no +Inf bucket`);
    const count = f.samples.find(
      (s) => s.name === `${f.name}_count` && JSON.stringify(s.labels) === key,
    );
    if (count?.value !== list.at(-1)?.value) throw new Error(`${f.name}: +Inf bucket != _count`);
  }
}

export function parsePrometheusText(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  let current: Family | undefined;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const help = /^# HELP (\S+) (.*)$/.exec(line);
    if (help !== null) {
      const name = help[1] as string;
      if (!nameRe.test(name) || families.has(name))
        throw new Error(`bad or repeated HELP: ${line}`);
      current = { name, help: help[2] as string, type: 'untyped', samples: [] };
      families.set(name, current);
      continue;
    }
    const type = /^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (type !== null) {
      if (current === undefined || current.name !== type[1] || current.samples.length > 0)
        throw new Error(`TYPE out of place: ${line}`);
      current.type = type[2] as string;
      continue;
    }
    if (line.startsWith('#')) throw new Error(`unexpected comment: ${line}`);
    const m = sampleRe.exec(line);
    if (m === null || current === undefined) throw new Error(`not a sample line: ${line}`);
    const name = m[1] as string;
    const family = current;
    const allowed = (suffixes[family.type] as string[]).map((s) => family.name + s);
    if (!allowed.includes(name))
      throw new Error(`sample ${name} outside its family ${family.name}`);
    const value = Number(m[3] === '+Inf' ? 'Infinity' : m[3] === '-Inf' ? '-Infinity' : m[3]);
    if (Number.isNaN(value) && m[3] !== 'NaN') throw new Error(`bad value: ${line}`);
    current.samples.push({ name, labels: parseLabels(m[2], line), value });
  }
  for (const f of families.values()) if (f.type === 'histogram') checkHistogram(f);
  return families;
}

/** The value of one sample: family `name`, exactly these labels. */
export function sampleValue(
  families: Map<string, Family>,
  name: string,
  labels: Record<string, string> = {},
  sampleName = name,
): number | undefined {
  return families
    .get(name)
    ?.samples.find(
      (s) => s.name === sampleName && JSON.stringify(s.labels) === JSON.stringify(labels),
    )?.value;
}
