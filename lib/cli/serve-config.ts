import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { closest, type FlagSpec, parseInteger, UsageError } from './args.js';

/** The environment variable that sets `--flag`: `--max-hosts` -> `HEARTWATCH_MAX_HOSTS`. */
export function envName(flag: string): string {
  return `HEARTWATCH_${flag.toUpperCase().replace(/-/g, '_')}`;
}

/** HEARTWATCH_* variables that are not serve flags and are read elsewhere. */
const otherVariables = new Set(['HEARTWATCH_ALLOCATOR']);

/** Where a flag's value came from, to name it in an error. */
export type Sources = Record<string, string>;

/** Values as `parseFlags` gives them: strings, and `true` for a boolean flag that is set. */
type Values = Record<string, string | boolean | string[] | undefined>;

function booleanText(text: string, where: string): boolean {
  if (/^(1|true|yes|on)$/i.test(text)) return true;
  if (/^(0|false|no|off|)$/i.test(text)) return false;
  throw new UsageError(`heartwatch serve: ${where} must be true or false (or 1/0), got "${text}"`);
}

function readConfig(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new UsageError(`heartwatch serve: --config: cannot read "${file}" (${code})`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new UsageError(
      `heartwatch serve: --config "${file}" is not JSON: ${(err as Error).message}`,
    );
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new UsageError(
      `heartwatch serve: --config "${file}" must hold a JSON object such as {"port": 7700, "timeout": "5s"}`,
    );
  }
  return parsed as Record<string, unknown>;
}

function fileValue(key: string, value: unknown, type: string, where: string): string | boolean {
  if (type === 'boolean') {
    if (typeof value === 'boolean') return value;
    throw new UsageError(
      `heartwatch serve: ${where} must be true or false, got ${JSON.stringify(value)}`,
    );
  }
  if (typeof value === 'string') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  if (key === 'cpus' && Array.isArray(value)) return value.join(',');
  throw new UsageError(
    `heartwatch serve: ${where} must be a string or a number, got ${JSON.stringify(value)}`,
  );
}

/**
 * Fills each flag not given on the command line from its `HEARTWATCH_*` environment variable,
 * then from the `--config` JSON file (keys are the flag names: `{"port": 7700, "max-hosts": 1000}`),
 * so flags > environment > file. The values then go through the same parsers as flags; `sources`
 * says where each came from so an error can name it. Returns warnings about unknown variables.
 */
export function mergeSources(
  spec: FlagSpec,
  flags: Values,
  env: NodeJS.ProcessEnv,
): { values: Values; sources: Sources; warnings: string[] } {
  const values: Values = { ...flags };
  const sources: Sources = {};
  const warnings: string[] = [];
  const names = Object.keys(spec);
  for (const [variable, text] of Object.entries(env)) {
    if (!variable.startsWith('HEARTWATCH_') || otherVariables.has(variable) || text === undefined) {
      continue;
    }
    const flag = names.find((name) => envName(name) === variable);
    if (flag === undefined) {
      const hint = closest(variable, names.map(envName));
      warnings.push(
        `unknown environment variable ${variable}${hint === undefined ? '' : ` (did you mean ${hint}?)`}; ignored`,
      );
      continue;
    }
    if (values[flag] !== undefined) continue;
    values[flag] = spec[flag]?.type === 'boolean' ? booleanText(text, variable) : text;
    sources[flag] = variable;
  }
  const file = values.config;
  if (typeof file === 'string') {
    for (const [key, value] of Object.entries(readConfig(file))) {
      const where = `"${key}" in ${file}`;
      const type = key === 'config' ? undefined : spec[key]?.type;
      if (type === undefined) {
        const hint = closest(
          key,
          names.filter((n) => n !== 'config'),
        );
        throw new UsageError(
          `heartwatch serve: unknown key "${key}" in ${file}${hint === undefined ? '' : ` (did you mean "${hint}"?)`}; keys are the flag names without --`,
        );
      }
      if (values[key] !== undefined) continue;
      values[key] = fileValue(key, value, type, where);
      sources[key] = where;
    }
  }
  for (const [key, value] of Object.entries(values)) if (value === false) delete values[key];
  return { values, sources, warnings };
}

/**
 * Runs `parse` and, if it rejects a value that came from the environment or the config file,
 * names that source instead of the flag: `HEARTWATCH_TIMEOUT must be a duration ...`.
 */
export function namingSources<T>(sources: Sources, parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    const flag = /^heartwatch serve: --([a-z-]+)/.exec(err.message)?.[1];
    const source = flag === undefined ? undefined : sources[flag];
    if (source === undefined) throw err;
    throw new UsageError(err.message.replace(`--${flag}`, source));
  }
}

/** `--http [host:]port`: host an IP literal (IPv6 in brackets), default 127.0.0.1. */
export function parseHttpAddress(text: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]:|([^:[\]]+):)?([0-9]+)$/.exec(text);
  const host = match?.[1] ?? match?.[2] ?? '127.0.0.1';
  if (match === null || isIP(host) === 0) {
    throw new UsageError(
      `heartwatch serve: --http must be [HOST:]PORT with HOST an IP address (e.g. 9100, 127.0.0.1:9100, [::1]:9100), got "${text}"`,
    );
  }
  return {
    host,
    port: parseInteger('serve', '--http', match[3] as string, 0, 65535, ' (the port)'),
  };
}
