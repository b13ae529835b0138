// `npm test`: everything a change must pass, from a fresh clone after `npm install`.
//   1. system packages (CMake, GoogleTest, clang/libFuzzer) are there, or installed when possible
//   2. TypeScript build and the native addon build (incremental)
//   3. lint and format check (Biome)
//   4. the type check of the tests (test/tsconfig.json: `npm run build:ts` checks lib/ only)
//   5. vitest: the TypeScript API, both engines, the CLI, lifecycle tests
//   6. the C++ core: ctest in release, ASan+UBSan and TSan builds; the fuzzers for a bounded time;
//      the addon compiled for arm64 with the cross compiler, the C++ tests built for arm64 and run
//      under qemu-user
//   7. the packaging proof (prebuilt binary installs and loads with no compiler and no network)
// Every test step runs even when an earlier one failed (a step that throws counts as 1 failed);
// a per-step summary, then one closing line: "test: N passed, N failed", summed over all steps.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { root, run, tee, buildAddon } = require('./lib/run.js');
const nativeTests = require('./native-tests.js');
const packageProof = require('./package-proof.js');

function systemDepsMissing() {
  const missing = [];
  for (const tool of [
    'cmake',
    'ninja',
    'clang++-14',
    'aarch64-linux-gnu-g++',
    'qemu-aarch64',
    'chromium',
  ]) {
    if (spawnSync('/bin/sh', ['-c', `command -v ${tool}`]).status !== 0) missing.push(tool);
  }
  if (!fs.existsSync('/usr/include/gtest/gtest.h')) missing.push('GoogleTest headers');
  if (!fs.existsSync('/usr/lib/aarch64-linux-gnu/libcrypto.so')) missing.push('arm64 libcrypto');
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

/**
 * Each test step returns {passed, failed}; one that throws counts as 1 failed. Every step runs
 * even after another failed, so the closing line counts every suite that ran.
 */
function testSteps() {
  return [
    [
      'test type check',
      () => {
        run('npm', ['run', 'typecheck:test']);
        return { passed: 1, failed: 0 };
      },
    ],
    ['vitest', vitest],
    ...nativeTests.suites.map((name) => [`native ${name}`, () => nativeTests.runSuite(name)]),
    [
      'package proof',
      () => {
        packageProof.main();
        return { passed: 1, failed: 0 };
      },
    ],
  ];
}

/**
 * CI runs `npm install`, not `npm ci`: where the committed lockfile no longer matches package.json,
 * npm install rewrites it instead of failing. Seeing it changed here gives what `npm ci` checks.
 * Outside a git checkout (an unpacked tarball) there is nothing to compare with.
 */
function lockfileUnchanged() {
  if (!fs.existsSync(path.join(root, '.git'))) return;
  const diff = spawnSync('git', ['diff', '--quiet', '--', 'package-lock.json'], { cwd: root });
  if (diff.status === 1) {
    throw new Error(
      'package-lock.json differs from the committed one (npm install rewrote it, or it was edited): ' +
        'run `npm install --package-lock-only` and commit the lockfile',
    );
  }
}

/** What the test steps need: system packages, the builds, lint. A failure here stops the run. */
function prepare() {
  const missing = systemDepsMissing();
  if (missing.length > 0) {
    console.error(`heartwatch: missing ${missing.join(', ')}; installing the system packages`);
    run('bash', [path.join(root, 'scripts', 'system-deps.sh')]);
  }
  run('npm', ['run', 'build:ts']);
  buildAddon();
  lockfileUnchanged();
  run('npx', ['biome', 'check', '.']);
  return { passed: 0, failed: 0 };
}

function main() {
  const totals = { passed: 0, failed: 0 };
  const lines = [];
  const step = (name, fn) => {
    let result;
    try {
      result = fn();
    } catch (error) {
      console.error(`\nnpm test: ${name} failed: ${error.message}`);
      result = { passed: 0, failed: 1 };
    }
    totals.passed += result.passed;
    totals.failed += result.failed;
    lines.push(`${name}: ${result.passed} passed, ${result.failed} failed`);
    return result;
  };
  if (step('build and lint', prepare).failed === 0) {
    for (const [name, fn] of testSteps()) step(name, fn);
  }
  console.log('');
  for (const line of lines) console.log(line);
  return totals;
}

const totals = main();
console.log(`test: ${totals.passed} passed, ${totals.failed} failed`);
process.exit(totals.failed > 0 ? 1 : 0);
