import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { HeartwatchError, nativeInfo } from '../../lib/index.js';
import { loadNativeFrom } from '../../lib/native/binding.js';

const root = path.join(__dirname, '..', '..');
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as {
  version: string;
};

function infoInChild(env: NodeJS.ProcessEnv): { allocator: string; loaded: boolean } {
  const out = execFileSync(
    process.execPath,
    ['-e', "console.log(JSON.stringify(require('./dist/index.js').nativeInfo()))"],
    { cwd: root, env: { ...process.env, ...env }, encoding: 'utf8' },
  );
  return JSON.parse(out) as { allocator: string; loaded: boolean };
}

describe('nativeInfo()', () => {
  it('reports the loaded addon, its version, allocator and build flags', () => {
    const info = nativeInfo();
    if (!info.loaded) throw new Error(info.reason);
    expect(info.version).toBe(pkg.version);
    expect(info.packageVersion).toBe(pkg.version);
    expect(['tcmalloc', 'system']).toContain(info.allocator);
    expect(info.buildFlags.cplusplus).toBeGreaterThanOrEqual(202002);
    expect(info.buildFlags.optimized).toBe(true);
    expect(info.buildFlags.assertions).toBe(false);
    expect(info.source).toBe(
      info.file.includes(`${path.sep}prebuilds${path.sep}`) ? 'prebuild' : 'source-build',
    );
  });

  it('uses tcmalloc when the library is installed, and the system allocator when told to', () => {
    const hasTcmalloc =
      execFileSync('/bin/sh', ['-c', 'ldconfig -p | grep -c libtcmalloc_minimal.so.4 || true'], {
        encoding: 'utf8',
      }).trim() !== '0';
    expect(infoInChild({}).allocator).toBe(hasTcmalloc ? 'tcmalloc' : 'system');
    expect(infoInChild({ HEARTWATCH_ALLOCATOR: 'system' }).allocator).toBe('system');
  });

  it('loads in a worker thread as well as the main thread', async () => {
    const worker = new Worker(
      "const { parentPort } = require('node:worker_threads'); parentPort.postMessage(require(process.argv[2]).nativeInfo());",
      { eval: true, argv: [path.join(root, 'dist', 'index.js')] },
    );
    const info = await new Promise<{ loaded: boolean }>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    await worker.terminate();
    expect(info.loaded).toBe(true);
  });
});

describe('loading the addon', () => {
  it('explains a failure with the loader message and the platform tag, without throwing', () => {
    const empty = mkdtempSync(path.join(tmpdir(), 'heartwatch-noaddon-'));
    try {
      const load = loadNativeFrom(empty);
      expect(load.ok).toBe(false);
      if (load.ok) return;
      expect(load.error).toBeInstanceOf(HeartwatchError);
      expect(load.error.code).toBe('ERR_HW_NATIVE_UNAVAILABLE');
      expect(load.error.message).toContain(`${process.platform}-${process.arch}`);
      expect(load.error.message).toContain('No native build was found');
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });
});
