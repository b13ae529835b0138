// Runs before `node-gyp-build` on install. When no prebuilt binary fits this platform, the addon
// is built from source; check the tools node-gyp needs first, so a failed build names the tool
// that is missing instead of ending in a compiler error deep in node-gyp's log.
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const platformDir = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);

function hasPrebuild() {
  try {
    return fs.readdirSync(platformDir).some((name) => name.endsWith('.node'));
  } catch {
    return false;
  }
}

function onPath(names) {
  const dirs = (process.env.PATH || '').split(path.delimiter).filter(Boolean);
  for (const name of names) {
    if (path.isAbsolute(name) && fs.existsSync(name)) return name;
    for (const dir of dirs) {
      const candidate = path.join(dir, name);
      try {
        fs.accessSync(candidate, fs.constants.X_OK);
        return candidate;
      } catch {}
    }
  }
  return null;
}

if (!hasPrebuild()) {
  const cxx = process.env.CXX ? process.env.CXX.split(' ')[0] : null;
  const tools = [
    { what: 'a C++20 compiler', names: cxx ? [cxx] : ['g++', 'c++', 'clang++'], apt: 'g++' },
    { what: 'make', names: ['make'], apt: 'make' },
    { what: 'python3 (for node-gyp)', names: ['python3', 'python'], apt: 'python3' },
  ];
  const missing = tools.filter((tool) => onPath(tool.names) === null);
  if (missing.length > 0) {
    const lines = [
      `heartwatch: no prebuilt binary for ${process.platform}-${process.arch} in ${platformDir},`,
      'so the native addon must be built from source, and these tools are missing:',
      ...missing.map((tool) => `  - ${tool.what}: looked for ${tool.names.join(', ')} on PATH`),
      `Install them (Debian/Ubuntu: apt-get install -y ${missing.map((t) => t.apt).join(' ')}) and retry.`,
    ];
    console.error(lines.join('\n'));
    process.exit(1);
  }
}
