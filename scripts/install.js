// The package's install script. An install never fails where Node runs: the pure-TS engine serves
// wherever the native addon does not (macOS, Windows, a CPU or C library with no prebuild and no
// working compiler), and `engine: 'auto'` falls back to it with a warning.
//   1. A binary node-gyp-build finds (a prebuild for this platform, or an earlier source build)
//      that loads in this Node: nothing to do.
//   2. Not Linux: the native engine is Linux-only; say so and stop.
//   3. Otherwise build from source with node-gyp, after checking its tools (a C++20 compiler of at
//      least the versions below, make, python3); a missing tool or a failed build is reported
//      with what to install, and the install still succeeds.
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const root = path.join(__dirname, '..');
/** The oldest compilers the source build is tested with (g++ here, clang++ for the fuzzers). */
const minimum = { gcc: 12, clang: 14 };

function warn(lines) {
  console.warn(['heartwatch:', ...lines.map((line) => `  ${line}`)].join('\n'));
}

/** The path of a binary that loads in this Node, or null. */
function loadableBinary() {
  try {
    const file = require('node-gyp-build').path(root);
    require(file);
    return file;
  } catch {
    return null;
  }
}

/** Why the source build cannot run here (sentences), or [] when its tools are all there. */
function missingTools() {
  const problems = [];
  const has = (tool) => spawnSync('/bin/sh', ['-c', `command -v ${tool}`]).status === 0;
  const cxx = (process.env.CXX || '').trim().split(/\s+/)[0] || 'c++';
  const probe = spawnSync(cxx, ['-dM', '-E', '-x', 'c++', '/dev/null'], { encoding: 'utf8' });
  if (probe.status !== 0) {
    problems.push(
      `no C++ compiler (${cxx}); install g++ >= ${minimum.gcc} or clang >= ${minimum.clang}`,
    );
  } else {
    const clang = /__clang_major__ (\d+)/.exec(probe.stdout);
    const gcc = /__GNUC__ (\d+)/.exec(probe.stdout);
    const [name, version, floor] = clang
      ? ['clang', Number(clang[1]), minimum.clang]
      : ['g++', Number(gcc?.[1] ?? 0), minimum.gcc];
    if (version < floor)
      problems.push(
        `${cxx} is ${name} ${version}; the source build needs ${name} >= ${floor} (C++20)`,
      );
  }
  if (!has('make')) problems.push('no make');
  if (!has('python3') && !has('python')) problems.push('no python3 (node-gyp needs it)');
  return problems;
}

/** node-gyp as npm provides it to install scripts, else one on PATH. */
function nodeGyp() {
  const script = process.env.npm_config_node_gyp;
  return script && fs.existsSync(script) ? [process.execPath, [script]] : ['node-gyp', []];
}

function main() {
  const file = loadableBinary();
  if (file) return;
  const where = `${process.platform}-${process.arch}`;
  const fallback =
    "heartwatch will use its pure-TypeScript engine (engine: 'auto' warns when it does).";
  if (process.platform !== 'linux') {
    warn([`the native engine runs on Linux only; on ${where} ${fallback}`]);
    return;
  }
  const problems = missingTools();
  if (problems.length > 0) {
    warn([
      `no prebuilt binary loads on ${where}, and the source build cannot run:`,
      ...problems.map((p) => `- ${p}`),
      'Install them (Debian/Ubuntu: apt-get install -y g++ make python3), then `npm rebuild heartwatch`.',
      `Until then ${fallback}`,
    ]);
    return;
  }
  const [command, prefix] = nodeGyp();
  const build = spawnSync(command, [...prefix, 'rebuild'], { cwd: root, stdio: 'inherit' });
  if (build.status !== 0 || !loadableBinary()) {
    warn([
      `the source build of the native addon failed on ${where} (see node-gyp's output above).`,
      fallback,
    ]);
  }
}

main();
