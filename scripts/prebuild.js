// `npm run prebuild`: the prebuilt binaries shipped in the package, one per target below, written
// as prebuilds/<platform>-<arch>/node.napi.<libc>.node where node-gyp-build looks for them.
//
// Every target is compiled and linked by `zig c++` (clang + lld, pinned in scripts/lib/toolchains.js):
// - glibc targets link against zig's stub libc for glibc 2.28, so a symbol newer than 2.28 fails
//   the link instead of failing later at load time on RHEL 8, Debian 10 or Ubuntu 20.04;
// - the C++ runtime (LLVM libc++, libc++abi, libunwind) is linked statically and hidden behind a
//   version script that exports the two N-API entry points alone, so the binary needs no
//   libstdc++ (no GLIBCXX_ or CXXABI_ version) and its C++ symbols cannot interpose on Node's;
// - musl targets link against musl's libc.so, for Alpine.
// scripts/lib/elf-audit.js checks each result against these promises (the package proof runs it).
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { root, capture } = require('./lib/run.js');
const { toolchain } = require('./lib/toolchains.js');

/** What `npm run prebuild` builds; `glibc` is the oldest glibc the binary promises to load on. */
const targets = [
  { dir: 'linux-x64', libc: 'glibc', zig: 'x86_64-linux-gnu.2.28', glibc: '2.28' },
  { dir: 'linux-arm64', libc: 'glibc', zig: 'aarch64-linux-gnu.2.28', glibc: '2.28' },
  { dir: 'linux-x64', libc: 'musl', zig: 'x86_64-linux-musl' },
  { dir: 'linux-arm64', libc: 'musl', zig: 'aarch64-linux-musl' },
];

/** Only the N-API entry points leave the binary; everything else, the C++ runtime too, is local. */
const versionScript =
  '{\n  global: napi_register_module_v1; node_api_module_get_api_version_v1;\n  local: *;\n};\n';

function prebuildFile(target) {
  return path.join(root, 'prebuilds', target.dir, `node.napi.${target.libc}.node`);
}

/** Compiler flags and defines as binding.gyp gives them to the source build (one source of truth). */
function compileFlags() {
  const gyp = JSON.parse(fs.readFileSync(path.join(root, 'binding.gyp'), 'utf8')).targets[0];
  const version = require(path.join(root, 'package.json')).version;
  const defines = gyp.defines.map((d) =>
    d.startsWith('HW_VERSION=') ? `HW_VERSION=${version}` : d,
  );
  return [
    ...gyp.cflags_cc,
    '-fPIC',
    '-Wno-unused-command-line-argument',
    `-I${path.join(root, 'native')}`,
    `-I${path.resolve(root, require('node-addon-api').include_dir)}`,
    `-I${path.join(path.dirname(process.execPath), '..', 'include', 'node')}`,
    ...defines.map((d) => `-D${d}`),
  ];
}

/** Runs commands with at most `jobs` at a time; rejects on the first that fails. */
async function runAll(commands, jobs) {
  const queue = [...commands];
  const worker = async () => {
    for (let next = queue.shift(); next; next = queue.shift()) {
      const [command, args] = next;
      await new Promise((resolve, reject) => {
        const child = spawn(command, args, { cwd: root, stdio: 'inherit' });
        child.on('error', reject);
        child.on('exit', (code, signal) =>
          code === 0
            ? resolve()
            : reject(new Error(`${command} ${args.join(' ')}: ${code ?? signal}`)),
        );
      });
    }
  };
  await Promise.all(Array.from({ length: jobs }, worker));
}

/** Compiles every addon source for one target, then links the stripped binary into prebuilds/. */
async function buildTarget(zig, target, sources, jobs) {
  const objDir = path.join(root, 'out', 'prebuild', `${target.dir}-${target.libc}`);
  fs.mkdirSync(objDir, { recursive: true });
  const flags = ['c++', '-target', target.zig, ...compileFlags()];
  const objects = sources.map((source) => path.join(objDir, `${source.replace(/[/.]/g, '_')}.o`));
  console.error(
    `\nprebuild ${target.dir} ${target.libc}: zig ${flags.join(' ')} -c <${sources.length} sources>`,
  );
  // An object newer than every input (sources, headers, binding.gyp, this script) is reused.
  const inputsChanged = newestInput();
  const stale = sources
    .map((source, i) => [source, objects[i]])
    .filter(([, object]) => !fs.existsSync(object) || fs.statSync(object).mtimeMs < inputsChanged);
  await runAll(
    stale.map(([source, object]) => [zig, [...flags, '-c', path.join(root, source), '-o', object]]),
    jobs,
  );
  const exportsMap = path.join(objDir, 'exports.map');
  fs.writeFileSync(exportsMap, versionScript);
  const output = prebuildFile(target);
  fs.mkdirSync(path.dirname(output), { recursive: true });
  // -O3 on the link line too: zig builds the C++ runtime it links in the mode this line asks for.
  const link = [
    'c++',
    '-target',
    target.zig,
    '-O3',
    '-shared',
    '-pthread',
    '-s',
    '-o',
    output,
    ...objects,
  ];
  link.push(`-Wl,--version-script=${exportsMap}`, '-Wl,-z,noexecstack', '-ldl');
  await runAll([[zig, link]], 1);
  console.error(`prebuild: wrote ${path.relative(root, output)}`);
}

/** When the newest file the objects are compiled from last changed (ms since the epoch). */
function newestInput() {
  let newest = Math.max(
    fs.statSync(path.join(root, 'binding.gyp')).mtimeMs,
    fs.statSync(__filename).mtimeMs,
  );
  const walk = (dir) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const file = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(file);
      else newest = Math.max(newest, fs.statSync(file).mtimeMs);
    }
  };
  walk(path.join(root, 'native'));
  return newest;
}

async function main() {
  const zig = toolchain('zig');
  const sources = capture(process.execPath, [path.join(root, 'scripts', 'gyp-sources.js')])
    .trim()
    .split(/\s+/);
  const jobs = Math.max(1, Math.min(os.availableParallelism(), 4));
  fs.rmSync(path.join(root, 'prebuilds'), { recursive: true, force: true });
  for (const target of targets) await buildTarget(zig, target, sources, jobs);
}

if (require.main === module) {
  main().catch((error) => {
    console.error(`prebuild failed: ${error.message}`);
    process.exit(1);
  });
}

module.exports = { targets, prebuildFile };
