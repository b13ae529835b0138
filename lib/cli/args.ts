import { parseArgs } from 'node:util';

/** A mistake in the command line: printed as one line on stderr, exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** The flags one command accepts, in `node:util` parseArgs form. */
export type FlagSpec = Record<string, { type: 'string' | 'boolean'; multiple?: boolean }>;

type FlagValues<S extends FlagSpec> = {
  [K in keyof S]?: S[K]['type'] extends 'boolean'
    ? boolean
    : S[K]['multiple'] extends true
      ? string[]
      : string;
};

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i += 1) {
    const current = [i];
    for (let j = 1; j <= b.length; j += 1) {
      const substitution = (previous[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(
        Math.min((previous[j] as number) + 1, (current[j - 1] as number) + 1, substitution),
      );
    }
    previous = current;
  }
  return previous[b.length] as number;
}

/** The known name closest to `name`, if it is close enough to be a plausible typo. */
export function closest(name: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of known) {
    const distance = editDistance(name, candidate);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return bestDistance <= Math.max(2, Math.floor(name.length / 3)) ? best : undefined;
}

/**
 * Parses `argv` against `spec` with `node:util` parseArgs in strict mode. A first, lenient pass
 * over the tokens finds each mistake itself so the message can name the flag and suggest the
 * right one; parseArgs' own messages are phrased for programmers, not for users.
 */
export function parseFlags<S extends FlagSpec>(
  command: string,
  argv: string[],
  spec: S,
): FlagValues<S> {
  const prefix = `heartwatch ${command}`;
  const options = { ...spec, help: { type: 'boolean' as const, short: 'h' } };
  const { tokens } = parseArgs({ args: argv, options, strict: false, tokens: true });
  const seen = new Set<string>();
  const known = Object.keys(options).map((name) => `--${name}`);
  for (const token of tokens) {
    if (token.kind === 'positional') {
      throw new UsageError(
        `${prefix}: unexpected argument "${token.value}" (flags look like --name value)`,
      );
    }
    if (token.kind !== 'option') continue;
    const flag = Object.hasOwn(options, token.name) ? options[token.name] : undefined;
    if (flag === undefined) {
      const hint = closest(token.rawName, known);
      throw new UsageError(
        `${prefix}: unknown flag ${token.rawName}${hint === undefined ? '' : ` (did you mean ${hint}?)`}; see ${prefix} --help`,
      );
    }
    if (flag.type === 'boolean' && token.value !== undefined) {
      throw new UsageError(`${prefix}: ${token.rawName} takes no value, got "${token.value}"`);
    }
    if (flag.type === 'string') {
      if (token.value === undefined)
        throw new UsageError(`${prefix}: ${token.rawName} needs a value`);
      if (!token.inlineValue && token.value.startsWith('-')) {
        throw new UsageError(
          `${prefix}: ${token.rawName} needs a value, got the flag-like "${token.value}" (write ${token.rawName}=${token.value} if that is the value)`,
        );
      }
      if (!('multiple' in flag && flag.multiple) && seen.has(token.name)) {
        throw new UsageError(`${prefix}: ${token.rawName} is given more than once`);
      }
    }
    seen.add(token.name);
  }
  try {
    const { values } = parseArgs({ args: argv, options, strict: true, allowPositionals: false });
    return values as FlagValues<S>;
  } catch (err) {
    throw new UsageError(`${prefix}: ${(err as Error).message}`);
  }
}

/** Whether `--help` / `-h` is among `argv`, checked before anything else is validated. */
export function wantsHelp(argv: readonly string[]): boolean {
  return argv.includes('--help') || argv.includes('-h');
}

/** An integer flag value within `[min, max]`. */
export function parseInteger(
  command: string,
  flag: string,
  text: string,
  min: number,
  max: number,
  unit = '',
): number {
  const value = /^-?[0-9]+$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new UsageError(
      `heartwatch ${command}: ${flag} must be an integer from ${min} to ${max}${unit}, got "${text}"`,
    );
  }
  return value;
}

/** A number flag value within `[min, max]`. */
export function parseNumber(
  command: string,
  flag: string,
  text: string,
  min: number,
  max: number,
): number {
  const value = /^[0-9]*\.?[0-9]+$/.test(text) ? Number(text) : Number.NaN;
  if (!(value >= min && value <= max)) {
    throw new UsageError(
      `heartwatch ${command}: ${flag} must be a number from ${min} to ${max}, got "${text}"`,
    );
  }
  return value;
}

const durationUnits: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Milliseconds as a short human duration: 500ms, 10s, 2m, 1.5h. */
export function formatDuration(ms: number): string {
  if (ms < 1000 || ms % 1000 !== 0) return `${ms}ms`;
  if (ms < 60_000 || ms % 60_000 !== 0) return `${ms / 1000}s`;
  if (ms < 3_600_000 || ms % 3_600_000 !== 0) return `${ms / 60_000}m`;
  return `${ms / 3_600_000}h`;
}

/** A duration: `500ms`, `10s`, `2m`, `1h`, or plain milliseconds; whole milliseconds within `[min, max]`. */
export function parseDuration(
  command: string,
  flag: string,
  text: string,
  min: number,
  max: number,
): number {
  const match = /^([0-9]*\.?[0-9]+)(ms|s|m|h)?$/.exec(text);
  const ms =
    match === null ? Number.NaN : Number(match[1]) * (durationUnits[match[2] ?? 'ms'] as number);
  if (!(Number.isInteger(ms) && ms >= min && ms <= max)) {
    throw new UsageError(
      `heartwatch ${command}: ${flag} must be a duration from ${formatDuration(min)} to ${formatDuration(max)} (e.g. 5000, 500ms, 10s, 2m), got "${text}"`,
    );
  }
  return ms;
}

/** One of `choices`. */
export function parseChoice<T extends string>(
  command: string,
  flag: string,
  text: string,
  choices: readonly T[],
): T {
  if (!(choices as readonly string[]).includes(text)) {
    throw new UsageError(
      `heartwatch ${command}: ${flag} must be one of ${choices.join(', ')}, got "${text}"`,
    );
  }
  return text as T;
}

/** One `heartwatch` subcommand. `run` resolves to the exit code. */
export interface Command {
  name: string;
  /** One line for the top-level help. */
  summary: string;
  /** The full `--help` text. */
  help: string;
  run(argv: string[]): Promise<number>;
}

/**
 * Turns a library `ERR_HW_INVALID_OPTION` into a usage error that names the command-line flag
 * instead of the option (`--timeout` for `timeoutMs`); anything else passes through.
 */
export function optionErrorAsUsage(
  command: string,
  err: unknown,
  flagOf: Readonly<Record<string, string>>,
): unknown {
  if (!(err instanceof Error) || (err as { code?: unknown }).code !== 'ERR_HW_INVALID_OPTION')
    return err;
  const message = err.message.replace(/"([A-Za-z]+)"/g, (quoted, option: string) => {
    const flag = flagOf[option];
    return flag === undefined ? quoted : flag;
  });
  return new UsageError(`heartwatch ${command}: ${message}`);
}

/**
 * Resolves with the name of the first SIGINT or SIGTERM. A second one exits at once with
 * 128 + signal number, for when a clean shutdown takes too long for the user's patience.
 */
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM'];
    const first = (signal: NodeJS.Signals): void => {
      for (const s of signals) {
        process.off(s, first);
        process.once(s, () => process.exit(s === 'SIGINT' ? 130 : 143));
      }
      resolve(signal);
    };
    for (const s of signals) process.on(s, first);
  });
}
