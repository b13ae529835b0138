import { isIP } from 'node:net';
import { availableParallelism } from 'node:os';
import type { HeartwatchOptions } from '../options.js';
import {
  derive,
  type OptionEnv,
  type OptionFlag,
  type OptionSpec,
  optionSpec,
  optionTable,
  type TableOptionName,
} from '../options-table.js';
import { parseChoice, parseDuration, parseInteger, UsageError } from './args.js';

/**
 * `heartwatch serve`'s flags for the options of lib/options-table.ts: their names, parsing and
 * `--help` lines all come from the table. Runs on: the main thread.
 */

type Flagged = Extract<(typeof optionTable)[number], { flag: unknown }>;
/** A table option's flag name, without `--`. */
export type TableFlagName = Flagged['flag']['name'];

const flagged = (optionTable as readonly OptionSpec[]).filter(
  (o): o is OptionSpec & { flag: OptionFlag } => o.flag !== undefined,
);

/** The table's flags in `parseFlags` form: each takes a string. */
export const tableFlagSpec = Object.fromEntries(
  flagged.map((o) => [o.flag.name, { type: 'string' }]),
) as Record<TableFlagName, { type: 'string' }>;

/** Library option -> `--flag`, for the table's options. */
export const tableFlagOf: Readonly<Record<string, string>> = Object.fromEntries(
  flagged.map((o) => [o.name, `--${o.flag.name}`]),
);

/** The `--help` lines of `option`'s flag, indented as the help's flag list is. */
export function flagHelp(option: TableOptionName): string {
  return (optionSpec(option).flag?.help ?? []).map((line) => `  ${line}`).join('\n');
}

function parseFlagValue(spec: OptionSpec, flag: OptionFlag, text: string, env: OptionEnv) {
  const name = `--${flag.name}`;
  const min = derive(spec.min ?? 0, env);
  const max = derive(spec.max ?? 0, env);
  switch (flag.kind) {
    case 'integer':
      return parseInteger('serve', name, text, min, max);
    case 'duration':
      return parseDuration('serve', name, text, min, max);
    case 'choice':
      return parseChoice('serve', name, text, spec.choices ?? []);
    case 'ip':
      if (isIP(text) === 0) {
        throw new UsageError(
          `heartwatch serve: ${name} must be an IP address such as ::, 0.0.0.0 or 127.0.0.1, got "${text}"`,
        );
      }
      return text;
  }
}

/** Sets into `options` each table option whose flag `values` holds, parsed by its entry. */
export function applyTableFlags(
  values: Readonly<Record<string, unknown>>,
  options: HeartwatchOptions,
): void {
  const env: OptionEnv = { cpuCount: availableParallelism() };
  for (const spec of flagged) {
    const text = values[spec.flag.name];
    if (typeof text !== 'string') continue;
    (options as Record<string, unknown>)[spec.name] = parseFlagValue(spec, spec.flag, text, env);
  }
}
