#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { type Command, closest, UsageError, wantsHelp } from './args.js';
import { demo } from './demo.js';
import { send } from './send.js';
import { serve } from './serve.js';
import { simulate } from './simulate.js';
import { status } from './status.js';

const commands: readonly Command[] = [serve, status, send, simulate, demo];

function version(): string {
  const file = path.join(__dirname, '..', '..', 'package.json');
  return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
}

function topHelp(): string {
  const width = Math.max(...commands.map((c) => c.name.length)) + 2;
  return `Usage: heartwatch <command> [flags]

Tells you within milliseconds which hosts stopped sending UDP heartbeats.

Commands:
${commands.map((c) => `  ${c.name.padEnd(width)}${c.summary}`).join('\n')}

Flags:
  -h, --help     show this help; "heartwatch <command> --help" for a command's flags
  -v, -V, --version, version
                 print the version

Exit codes: 0 success, 1 runtime error, 2 usage error (bad command, flag or value).

Try it: heartwatch demo
`;
}

function describeError(command: string, err: unknown): string {
  if (err instanceof UsageError) return err.message;
  if (!(err instanceof Error)) return `heartwatch ${command}: ${String(err)}`;
  const code = (err as { code?: unknown }).code;
  const suffix = typeof code === 'string' && !err.message.includes(code) ? ` (${code})` : '';
  return `heartwatch ${command}: ${err.message}${suffix}`;
}

async function main(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined) {
    process.stderr.write(topHelp());
    return 2;
  }
  if (first === '--help' || first === '-h' || (first === 'help' && rest.length === 0)) {
    process.stdout.write(topHelp());
    return 0;
  }
  if (first === '--version' || first === '-v' || first === '-V' || first === 'version') {
    process.stdout.write(`${version()}\n`);
    return 0;
  }
  const wanted = first === 'help' ? rest[0] : first;
  const command = commands.find((c) => c.name === wanted);
  if (command === undefined) {
    const hint = closest(
      wanted ?? '',
      commands.map((c) => c.name),
    );
    process.stderr.write(
      `heartwatch: unknown command "${wanted}"${hint === undefined ? '' : ` (did you mean ${hint}?)`}; commands are ${commands.map((c) => c.name).join(', ')}\n`,
    );
    return 2;
  }
  if (first === 'help' || wantsHelp(rest)) {
    process.stdout.write(command.help);
    return 0;
  }
  try {
    return await command.run(rest);
  } catch (err) {
    process.stderr.write(`${describeError(command.name, err)}\n`);
    const usage =
      err instanceof UsageError || (err as { code?: unknown }).code === 'ERR_HW_INVALID_OPTION';
    return usage ? 2 : 1;
  }
}

// A reader that goes away (`| head`) is a normal way to stop reading events. A command that
// holds resources (serve) listens for it too and closes them first, then exits 0 itself.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE') throw err;
  if (process.stdout.listenerCount('error') === 1) process.exit(0);
});

main(process.argv.slice(2)).then(
  (code) => {
    // Exit explicitly so a lingering handle cannot keep a finished command alive; stdout is
    // flushed first because it may be a pipe.
    process.stdout.write('', () => process.exit(code));
  },
  (err: unknown) => {
    process.stderr.write(
      `heartwatch: internal error: ${err instanceof Error ? err.stack : String(err)}\n`,
    );
    process.exit(1);
  },
);
