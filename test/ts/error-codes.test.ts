// HeartwatchError.code is a union a consumer can switch on: the fixture compiles, and its
// misspelt codes are compile errors. errorCode() keeps every code within that union at run time.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { errorCode } from '../../lib/errors.js';

const root = path.join(__dirname, '..', '..');

describe('HeartwatchError codes', () => {
  it('type-check: a switch over every code compiles, a misspelt code does not', () => {
    const tsc = spawnSync(
      process.execPath,
      [
        path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'),
        '--noEmit',
        '--strict',
        '--exactOptionalPropertyTypes',
        '--noFallthroughCasesInSwitch',
        '--module',
        'node16',
        '--moduleResolution',
        'node16',
        '--target',
        'es2022',
        '--types',
        'node',
        '--skipLibCheck',
        path.join(root, 'test', 'types', 'error-codes.ts'),
        path.join(root, 'lib', 'types', 'node-gyp-build.d.ts'),
      ],
      { encoding: 'utf8', cwd: root },
    );
    expect(tsc.stdout + tsc.stderr).toBe('');
    expect(tsc.status).toBe(0);
  }, 120_000);

  it.each([
    ['EADDRINUSE', 'EADDRINUSE'],
    ['ERANGE', 'ERANGE'],
    ['ENOTFOUND', 'ENOTFOUND'],
    ['ERR_HW_INVALID_OPTION', 'ERR_HW_INVALID_OPTION'],
    ['ERR_SOCKET_DGRAM_NOT_RUNNING', 'ERR_HW_SOCKET'],
    ['ERR_HW_TYPO', 'ERR_HW_SOCKET'],
    [undefined, 'ERR_HW_SOCKET'],
    [42, 'ERR_HW_SOCKET'],
  ])('errorCode(%j) is %s', (code, expected) => {
    expect(errorCode(code, 'ERR_HW_SOCKET')).toBe(expected);
  });
});
