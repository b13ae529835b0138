// Builds and runs the C++ core's tests in three variants (release, ASan+UBSan, TSan), then runs
// every libFuzzer target for a bounded time, then the arm64 suite: the addon compiled for arm64, and
// the C++ tests cross-built for arm64 and run under qemu-user.
// Prints one summary line per variant; exits non-zero on any failure.
// Usage: node scripts/native-tests.js [--only release|asan|tsan|fuzz|arm64] [--fuzz-seconds N]
const fs = require('node:fs');
const path = require('node:path');
const { parseArgs } = require('node:util');
const { spawnSync } = require('node:child_process');
const { root, run, tee, capture } = require('./lib/run.js');
const { qemuArm64Args } = require('./lib/toolchains.js');

const variants = {
  release: ['-DCMAKE_BUILD_TYPE=Release'],
  asan: ['-DCMAKE_BUILD_TYPE=RelWithDebInfo', '-DHW_SANITIZE=address', '-DHW_BENCH=OFF'],
  tsan: ['-DCMAKE_BUILD_TYPE=RelWithDebInfo', '-DHW_SANITIZE=thread', '-DHW_BENCH=OFF'],
};

const sanitizerEnv = {
  ASAN_OPTIONS: 'detect_leaks=1:abort_on_error=1',
  LSAN_OPTIONS: `suppressions=${path.join(root, 'test', 'native', 'lsan.supp')}`,
  UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1',
  TSAN_OPTIONS: 'halt_on_error=1:second_deadlock_stack=1',
};

function buildDir(name) {
  return path.join(root, 'out', 'cmake', name);
}

function configureAndBuild(name, flags) {
  run('cmake', ['-S', root, '-B', buildDir(name), '-G', 'Ninja', ...flags]);
  run('cmake', ['--build', buildDir(name), '-j', '2']);
}

/** Runs ctest for one variant; returns {passed, failed}, or throws when ctest could not run. */
function ctest(name, extra = []) {
  const { status, output } = tee(
    'ctest',
    ['--test-dir', buildDir(name), '--output-on-failure', '-j', '2', '--timeout', '900', ...extra],
    { env: { ...process.env, ...sanitizerEnv } },
  );
  const summary = /(\d+)% tests passed, (\d+) tests? failed out of (\d+)/.exec(output);
  if (!summary) throw new Error(`ctest (${name}) printed no summary`);
  const total = Number(summary[3]);
  // A non-zero exit with no failed test (a crash after the summary) still counts as a failure.
  const failed = Math.max(Number(summary[2]), status !== 0 ? 1 : 0);
  if (total === 0) throw new Error(`ctest (${name}) ran no test`);
  if (failed > 0) console.error(`ctest (${name}): ${failed} of ${total} failed`);
  return { passed: total - Number(summary[2]), failed };
}

/** Builds the fuzzers with clang and runs each for a bounded time on its seed corpus. */
function fuzz(seconds) {
  configureAndBuild('fuzz', [
    '-DCMAKE_BUILD_TYPE=RelWithDebInfo',
    '-DHW_FUZZ=ON',
    '-DHW_BENCH=OFF',
    '-DCMAKE_CXX_COMPILER=clang++-14',
  ]);
  const fuzzDir = path.join(root, 'test', 'fuzz');
  const targets = fs.existsSync(fuzzDir)
    ? fs
        .readdirSync(fuzzDir)
        .filter((f) => f.endsWith('_fuzzer.cc'))
        .map((f) => f.slice(0, -3))
    : [];
  for (const target of targets) {
    const seeds = path.join(fuzzDir, 'corpus', target.replace(/_fuzzer$/, ''));
    const work = path.join(buildDir('fuzz'), `${target}-corpus`);
    fs.mkdirSync(work, { recursive: true });
    const args = [`-max_total_time=${seconds}`, '-print_final_stats=1', work];
    if (fs.existsSync(seeds)) args.push(seeds);
    run(path.join(buildDir('fuzz'), target), args, { env: { ...process.env, ...sanitizerEnv } });
  }
  return { passed: targets.length, failed: 0 };
}

/** The arm64 cross build of the C++ core and its tests (GoogleTest built from source for arm64). */
const arm64Cmake = [
  '-DCMAKE_BUILD_TYPE=Release',
  '-DHW_BENCH=OFF',
  '-DCMAKE_SYSTEM_NAME=Linux',
  '-DCMAKE_SYSTEM_PROCESSOR=aarch64',
  '-DCMAKE_CXX_COMPILER=aarch64-linux-gnu-g++',
  '-DCMAKE_C_COMPILER=aarch64-linux-gnu-gcc',
  // The standalone core's SHA-256 comes from libcrypto: Debian's arm64 one (libssl-dev:arm64,
  // multiarch), which CMake would not pick over the host's on its own.
  '-DOPENSSL_INCLUDE_DIR=/usr/include',
  '-DOPENSSL_CRYPTO_LIBRARY=/usr/lib/aarch64-linux-gnu/libcrypto.so',
  // ctest (and GoogleTest's test discovery) run each arm64 binary through qemu-user.
  `-DCMAKE_CROSSCOMPILING_EMULATOR=${['qemu-aarch64', ...qemuArm64Args].join(';')}`,
  '-DHW_GTEST_SOURCE=/usr/src/googletest',
];

/**
 * Tests left out under qemu-user (7.2), each for what qemu does not emulate:
 * - SO_ATTACH_REUSEPORT_CBPF (it answers ENOPROTOOPT), which an engine with several receivers
 *   attaches to its port group: the engine tests that start more than one receiver;
 * - io_uring (io_uring_setup answers ENOSYS): the io_uring reader's tests and the engine tests'
 *   io_uring runs;
 * - the SO_RXQ_OVFL control message (not passed to the guest): the kernel-drop count.
 * They run natively in the release, asan and tsan suites; the arm64 engine with one receiver runs
 * here (the other Engine tests, on recvmmsg) and end to end in the packaging proof's smoke (an
 * arm64 Node under qemu: 'auto' falls back to recvmmsg, then up, then down).
 */
const arm64Excluded = `^(${[
  'EngineStatus\\.StatusesTravelInOrderWithTheirPreviousBytes',
  'Engine\\.DeliversUpThenDownForEveryHostAcrossShards',
  'Engine\\.RotatesKeysWhileReceiversVerify',
  'Engine\\.OwnsItsPortUntilStopReleasesIt',
  'Engine\\.StopsPromptlyWhileIdleAndUnderLoad',
  'Uring(Reader|Receiver)\\..*',
  '.*\\.io_uring_backend',
  'ReceiveWatermark\\.KernelDropsAreCountedAndPublished',
].join('|')})$`;

/**
 * The arm64 suite: every addon source compiled for arm64 (one test per source file, so code for
 * one CPU stays behind its architecture guard), then the C++ unit tests built for arm64 and run
 * under qemu-user.
 */
function arm64() {
  const compiled = arm64Compile();
  configureAndBuild('arm64', arm64Cmake);
  const tested = ctest('arm64', ['-E', arm64Excluded]);
  return { passed: compiled.passed + tested.passed, failed: compiled.failed + tested.failed };
}

/** Compiles every addon source with the arm64 cross compiler; returns {passed, failed}. */
function arm64Compile() {
  const compiler = 'aarch64-linux-gnu-g++';
  const sources = capture(process.execPath, [path.join(root, 'scripts', 'gyp-sources.js')])
    .trim()
    .split(/\s+/);
  const flags = [
    '-std=c++20',
    '-O2',
    '-Wall',
    '-fexceptions',
    `-I${path.join(root, 'native')}`,
    `-I${path.resolve(root, require('node-addon-api').include_dir)}`,
    `-I${path.join(path.dirname(process.execPath), '..', 'include', 'node')}`,
    '-DNAPI_VERSION=8',
    '-DNODE_ADDON_API_DISABLE_DEPRECATED',
    '-DNODE_ADDON_API_CPP_EXCEPTIONS',
    '-DNDEBUG',
    '-DHW_VERSION=0.0.0',
  ];
  console.error(`\n$ ${compiler} ${flags.join(' ')} -c <each of ${sources.length} sources>`);
  let failed = 0;
  for (const source of sources) {
    const args = [...flags, '-c', path.join(root, source), '-o', '/dev/null'];
    const result = spawnSync(compiler, args, { cwd: root, stdio: 'inherit' });
    if (result.error) throw new Error(`${compiler}: ${result.error.message}`);
    if (result.status !== 0) {
      console.error(`arm64: ${source} does not compile`);
      failed++;
    }
  }
  return { passed: sources.length - failed, failed };
}

/** Every suite, in the order `npm test` runs them. */
const suites = [...Object.keys(variants), 'fuzz', 'arm64'];

/** Builds and runs one suite (a ctest variant, or `fuzz`); returns {passed, failed}. */
function runSuite(name, fuzzSeconds = 60) {
  if (name === 'fuzz') return fuzz(fuzzSeconds);
  if (name === 'arm64') return arm64();
  if (!variants[name]) {
    throw new Error(`--only must be one of ${suites.join(', ')}; got ${name}`);
  }
  configureAndBuild(name, variants[name]);
  return ctest(name);
}

function main() {
  const { values } = parseArgs({
    options: { only: { type: 'string' }, 'fuzz-seconds': { type: 'string', default: '60' } },
  });
  const names = values.only ? [values.only] : suites;
  const totals = { passed: 0, failed: 0 };
  const lines = [];
  for (const name of names) {
    const result = runSuite(name, Number(values['fuzz-seconds']));
    totals.passed += result.passed;
    totals.failed += result.failed;
    lines.push(`native ${name}: ${result.passed} passed, ${result.failed} failed`);
  }
  for (const line of lines) console.log(line);
  return totals;
}

if (require.main === module) {
  try {
    if (main().failed > 0) process.exit(1);
  } catch (error) {
    console.error(`test:native failed: ${error.message}`);
    process.exit(1);
  }
}

module.exports = { main, runSuite, suites };
