// Prints the addon's C++ sources for binding.gyp: every .cc under native/core, native/sim and
// native/addon.
// Listing them here keeps binding.gyp and CMakeLists.txt from drifting apart as files are added.
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');

function walk(dir) {
  const out = [];
  for (const entry of fs.readdirSync(path.join(root, dir), { withFileTypes: true })) {
    const rel = `${dir}/${entry.name}`;
    if (entry.isDirectory()) out.push(...walk(rel));
    else if (entry.name.endsWith('.cc')) out.push(rel);
  }
  return out;
}

console.log(
  [...walk('native/core'), ...walk('native/sim'), ...walk('native/addon')].sort().join(' '),
);
