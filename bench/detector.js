// Runs the detector micro-benchmark: configures and builds out/cmake/bench (Release) when
// needed, then runs bench/native/detector_bench pinned to one CPU and passes its output through.
// Usage: npm run bench:detector [-- --quick] [-- --cpu N] [other detector_bench flags]
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.join(__dirname, '..');
const buildDir = path.join(root, 'out', 'cmake', 'bench');
const binary = path.join(buildDir, 'detector_bench');

function run(command, args) {
  const result = spawnSync(command, args, { cwd: root, stdio: 'inherit' });
  if (result.error) throw result.error;
  if (result.status !== 0) process.exit(result.status ?? 1);
}

if (!fs.existsSync(path.join(buildDir, 'build.ninja'))) {
  run('cmake', [
    '-S',
    root,
    '-B',
    buildDir,
    '-G',
    'Ninja',
    '-DCMAKE_BUILD_TYPE=Release',
    '-DHW_BENCH=ON',
  ]);
}
// Ninja rebuilds only what changed; two jobs at most on the shared machine.
run('cmake', ['--build', buildDir, '--target', 'detector_bench', '-j', '2']);

const args = process.argv.slice(2);
// Pin to the last CPU unless told otherwise: away from CPU 0, where interrupts land.
if (!args.includes('--cpu')) args.push('--cpu', String(os.cpus().length - 1));
run(binary, args);
