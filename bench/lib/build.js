// Shared by the benchmark runners: builds what they run (Release CMake targets, the TS dist and
// the addon) and describes the machine the figures come from.
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.join(__dirname, '..', '..');
const cmakeDir = path.join(root, 'out', 'cmake', 'bench');

function run(command, args, options = {}) {
  const result = spawnSync(command, args, { cwd: root, stdio: 'inherit', ...options });
  if (result.error) throw result.error;
  if (result.status !== 0) {
    throw new Error(`${command} ${args.join(' ')} exited with ${result.status ?? result.signal}`);
  }
}

/** Builds Release CMake targets into out/cmake/bench; returns the directory holding them. */
function buildNativeBench(...targets) {
  if (!fs.existsSync(path.join(cmakeDir, 'build.ninja'))) {
    run('cmake', [
      '-S',
      root,
      '-B',
      cmakeDir,
      '-G',
      'Ninja',
      '-DCMAKE_BUILD_TYPE=Release',
      '-DHW_BENCH=ON',
    ]);
  }
  for (const target of targets) run('cmake', ['--build', cmakeDir, '--target', target, '-j', '2']);
  return cmakeDir;
}

/** Makes sure dist/ and the addon exist (npm install builds both; this covers a stale tree). */
function ensurePackageBuilt() {
  if (!fs.existsSync(path.join(root, 'dist', 'index.js'))) run('npm', ['run', 'build:ts']);
}

function machine() {
  const cpus = os.cpus();
  return {
    cpuModel: cpus[0]?.model ?? 'unknown',
    cpus: cpus.length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: os.release(),
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
  };
}

module.exports = { root, run, buildNativeBench, ensurePackageBuilt, machine };
