// Reads what a built addon asks of the system that loads it, with binutils' readelf (which reads
// ELF files of any architecture): its CPU, the shared libraries it needs, the highest symbol
// version it needs from each (GLIBC_2.28, GLIBCXX_3.4.29, ...) and the symbols it exports; then
// checks them against what the prebuild promises (scripts/prebuild.js).
const { capture } = require('./run.js');

/** Compares dotted versions numerically: '2.28' < '2.34', '3.4.9' < '3.4.29'. */
function compareVersions(a, b) {
  const x = a.split('.').map(Number);
  const y = b.split('.').map(Number);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/**
 * What the binary at `file` needs: `{machine, needed, highest, exports}`, where `highest` maps a
 * version family (GLIBC, GLIBCXX, CXXABI, ...) to the highest version any symbol asks for.
 */
function readElf(file) {
  const header = capture('readelf', ['-h', '-W', file]);
  const machine = /^\s*Machine:\s*(.+)$/m.exec(header)?.[1].trim() ?? 'unknown';
  const dynamic = capture('readelf', ['-d', '-W', file]);
  const needed = [...dynamic.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map(
    (m) => m[1],
  );
  const highest = {};
  for (const [, family, version] of capture('readelf', ['-V', '-W', file]).matchAll(
    /Name: ([A-Z_]+?)_(\d+(?:\.\d+)*)\s/g,
  )) {
    if (!highest[family] || compareVersions(version, highest[family]) > 0)
      highest[family] = version;
  }
  const exports = [];
  for (const line of capture('readelf', ['--dyn-syms', '-W', file]).split('\n')) {
    // Num: Value Size Type Bind Vis Ndx Name
    const cols = line.trim().split(/\s+/);
    if (cols.length < 8 || !/^\d+:$/.test(cols[0])) continue;
    const [, , , type, bind, , ndx, name] = cols;
    if (ndx !== 'UND' && (bind === 'GLOBAL' || bind === 'WEAK') && type !== 'SECTION') {
      exports.push(name.replace(/@.*$/, ''));
    }
  }
  return { machine, needed, highest, exports: exports.sort() };
}

const machines = { 'linux-x64': 'Advanced Micro Devices X86-64', 'linux-arm64': 'AArch64' };
const napiExports = ['napi_register_module_v1', 'node_api_module_get_api_version_v1'];

/** The libraries each libc's prebuild may need: the C library and its parts, nothing else. */
function allowedLibrary(libc, name) {
  if (libc === 'musl') return /^libc\.(so|musl-[a-z0-9_]+\.so\.1)$/.test(name);
  return /^(libc\.so\.6|libm\.so\.6|libdl\.so\.2|libpthread\.so\.0|ld-linux-[a-z0-9-]+\.so\.[12])$/.test(
    name,
  );
}

/**
 * Problems with a prebuild for `target` ({dir, libc, glibc?}), as sentences; empty when the
 * binary keeps every promise.
 */
function auditPrebuild(file, target) {
  const elf = readElf(file);
  const problems = [];
  if (elf.machine !== machines[target.dir]) {
    problems.push(`is built for ${elf.machine}, not ${machines[target.dir]}`);
  }
  for (const name of elf.needed) {
    if (!allowedLibrary(target.libc, name)) problems.push(`needs ${name}`);
  }
  for (const [family, version] of Object.entries(elf.highest)) {
    if (family === 'GLIBC' && target.libc === 'glibc') {
      if (compareVersions(version, target.glibc) > 0) {
        problems.push(`needs GLIBC_${version}, above the promised GLIBC_${target.glibc}`);
      }
    } else {
      problems.push(`needs ${family}_${version} (a versioned ${family} symbol)`);
    }
  }
  if (elf.exports.join(' ') !== napiExports.join(' ')) {
    const shown = elf.exports.slice(0, 8).join(', ');
    problems.push(
      `exports ${elf.exports.length} symbols (${shown}...), not just ${napiExports.join(', ')}`,
    );
  }
  return { elf, problems };
}

module.exports = { readElf, auditPrebuild, compareVersions };
