// `npm test`: everything a change must pass, from a fresh clone after `npm install`.
//   1. system packages (CMake, GoogleTest, clang/libFuzzer) are there, or installed when possible
//   2. TypeScript build and the native addon build (incremental)
//   3. lint and format check (Biome)
//   4. vitest: the TypeScript API, both engines, the CLI, lifecycle tests
//   5. the C++ core: ctest in release, ASan+UBSan and TSan builds; the fuzzers for a bounded time
//   6. the packaging proof (prebuilt binary installs and loads with no compiler and no network)
// Ends with one line: "test: N passed, N failed".
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { root, run, tee, buildAddon } = require('./lib/run.js');
const nativeTests = require('./native-tests.js');
const packageProof = require('./package-proof.js');

function systemDepsMissing() {
  const missing = [];
  for (const tool of ['cmake', 'ninja', 'clang++-14', 'chromium']) {
    if (spawnSync('/bin/sh', ['-c', `command -v ${tool}`]).status !== 0) missing.push(tool);
  }
  if (!fs.existsSync('/usr/include/gtest/gtest.h')) missing.push('GoogleTest headers');
  return missing;
}

function vitest() {
  const report = path.join(os.tmpdir(), `heartwatch-vitest-${process.pid}.json`);
  try {
    const { status } = tee('npx', [
      'vitest',
      'run',
      '--reporter=default',
      '--reporter=json',
      `--outputFile.json=${report}`,
    ]);
    const results = JSON.parse(fs.readFileSync(report, 'utf8'));
    const passed = results.numPassedTests;
    const failed = results.numFailedTests + (status !== 0 && results.numFailedTests === 0 ? 1 : 0);
    if (passed + failed === 0) throw new Error('vitest ran no test');
    return { passed, failed };
  } finally {
    fs.rmSync(report, { force: true });
  }
}

function main() {
  const missing = systemDepsMissing();
  if (missing.length > 0) {
    console.error(`heartwatch: missing ${missing.join(', ')}; installing the system packages`);
    run('bash', [path.join(root, 'scripts', 'system-deps.sh')]);
  }
  run('npm', ['run', 'build:ts']);
  buildAddon();
  run('npx', ['biome', 'check', '.']);

  const totals = { passed: 0, failed: 0 };
  const ts = vitest();
  totals.passed += ts.passed;
  totals.failed += ts.failed;
  if (ts.failed > 0) return totals;

  const native = nativeTests.main();
  totals.passed += native.passed;

  packageProof.main();
  totals.passed += 1;
  return totals;
}

let totals;
try {
  totals = main();
} catch (error) {
  console.error(`\nnpm test failed: ${error.message}`);
  console.log('test: 0 passed, 1 failed');
  process.exit(1);
}
console.log(`test: ${totals.passed} passed, ${totals.failed} failed`);
process.exit(totals.failed > 0 ? 1 : 0);
