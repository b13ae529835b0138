// The examples users copy: the README's library snippet runs as written (as an ES module against
// the built package) and ends by itself; the CLI's version flags; simulate refuses kill and
// revive times the run never reaches.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.join(__dirname, '..', '..');
const bin = path.join(root, 'dist', 'cli', 'main.js');

function cli(...args: string[]) {
  return spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 30_000 });
}

describe('README library snippet', () => {
  it('runs as written and ends by itself', () => {
    const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
    const snippet = /```ts\n(import \{[^}]*Heartwatch[^}]*\} from 'heartwatch';[\s\S]*?)```/.exec(
      readme,
    )?.[1];
    expect(snippet).toBeDefined();
    const dir = mkdtempSync(path.join(tmpdir(), 'heartwatch-readme-'));
    try {
      const file = path.join(dir, 'snippet.mjs');
      const entry = path.join(root, 'dist', 'index.mjs');
      writeFileSync(file, (snippet as string).replace("from 'heartwatch'", `from '${entry}'`));
      const run = spawnSync(process.execPath, [file], { encoding: 'utf8', timeout: 30_000 });
      expect(run.error).toBeUndefined();
      expect(run.status, run.stderr).toBe(0);
      expect(run.stdout).toMatch(/^listening on \d+ with the (native|js) engine$/m);
      expect(run.stdout).toMatch(/^\d+ up at 127\.0\.0\.1:\d+$/m);
      expect(run.stdout).toMatch(/^\d+ down: left, last heard /m);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('heartwatch version', () => {
  const { version } = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as {
    version: string;
  };
  it.each([['-V'], ['-v'], ['--version'], ['version']])('%s prints the version', (flag) => {
    const run = cli(flag);
    expect(run.status).toBe(0);
    expect(run.stdout).toBe(`${version}\n`);
  });
});

describe('heartwatch simulate event times', () => {
  it.each([
    [
      ['--kill', '100@10s'],
      /--kill 100@10s comes at or after the end of the run \(--duration 10s\)/,
    ],
    [['--kill', '1@5s', '--duration', '5s'], /--kill 1@5s comes at or after the end of the run/],
    [['--leave', '1@2s', '--duration', '2s'], /--leave 1@2s comes at or after the end of the run/],
    [
      ['--kill', '1@1s', '--revive', '3s', '--duration', '3s'],
      /--revive 3s comes at or after the end of the run/,
    ],
  ])('%j is refused with one line, exit 2', (args, message) => {
    const run = cli('simulate', '--to', '127.0.0.1:9', '--hosts', '200', ...args);
    expect(run.status).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(run.stderr).toMatch(message);
  });
});
