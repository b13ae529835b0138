// Packaging proof: the published tarball installs and loads its prebuilt binary on a machine with
// no network and no C++ toolchain. Builds the prebuild, packs, fills a private npm cache from the
// registry (an install with --ignore-scripts, so nothing is built), installs the tarball offline
// from that cache into an empty directory with a PATH holding only node and npm, then require()s
// and import()s it and checks through nativeInfo() that the prebuilt binary is the one loaded.
// It depends on no state of the user's npm cache.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { run, capture, bundledNpmDir } = require('./lib/run.js');

function check(condition, message) {
  if (!condition) throw new Error(`package proof: ${message}`);
  console.error(`ok - ${message}`);
}

/** npm settings the installs keep: where the registry is, and the cache set here. */
const keptNpmConfig = new Set(['npm_config_cache', 'npm_config_registry', 'npm_config_userconfig']);

/** An empty project to install the tarball into. */
function newApp(work, name) {
  const app = path.join(work, name);
  fs.mkdirSync(app);
  fs.writeFileSync(path.join(app, 'package.json'), `{"name":"${name}","private":true}\n`);
  return app;
}

/** A PATH with node and npm alone: no compiler, make or python can be found on it. */
function toolFreePath(work) {
  const bin = path.join(work, 'bin');
  fs.mkdirSync(bin);
  fs.symlinkSync(process.execPath, path.join(bin, 'node'));
  const npmCli = process.env.npm_execpath ?? path.join(bundledNpmDir, 'bin', 'npm-cli.js');
  check(fs.existsSync(npmCli), `npm found at ${npmCli}`);
  fs.writeFileSync(
    path.join(bin, 'npm'),
    `#!/bin/sh\nexec "${process.execPath}" "${npmCli}" "$@"\n`,
    { mode: 0o755 },
  );
  fs.symlinkSync('/bin/sh', path.join(bin, 'sh'));
  for (const tool of ['c++', 'g++', 'gcc', 'cc', 'clang++', 'make', 'python3', 'python']) {
    const found = spawnSync('/bin/sh', ['-c', `command -v ${tool}`], {
      env: { PATH: bin },
      encoding: 'utf8',
    });
    check(found.status !== 0 && found.stdout.trim() === '', `no ${tool} on the install PATH`);
  }
  return bin;
}

/**
 * Installs the tarball into an empty app with `bin` as the whole PATH and no network, from a
 * private cache filled first; returns the app and the environment it was installed with.
 */
function installOffline(work, bin, tarball) {
  // A private npm cache, filled from the registry by an install that runs no script, so the
  // offline install below finds every dependency's metadata and tarball whatever state the
  // user's cache is in (an empty one on a fresh CI machine).
  const cache = path.join(work, 'npm-cache');
  const env = { ...process.env, PATH: bin, npm_config_cache: cache, CXX: '', CC: '' };
  for (const key of Object.keys(env)) {
    if (key.startsWith('npm_') && !keptNpmConfig.has(key)) delete env[key];
  }
  const installFlags = ['install', '--no-audit', '--no-fund', '--no-package-lock', tarball];
  run(path.join(bin, 'npm'), [...installFlags, '--ignore-scripts', '--prefer-online'], {
    cwd: newApp(work, 'fill-cache'),
    env,
  });

  const app = newApp(work, 'app');
  // Foreground scripts print each lifecycle script as it runs: proof that the install script
  // (node-gyp-build, which would compile when no prebuild fits) really ran here.
  const installed = capture(
    path.join(bin, 'npm'),
    [...installFlags, '--offline', '--foreground-scripts'],
    {
      cwd: app,
      env: { ...env, npm_config_offline: 'true' },
    },
  );
  process.stderr.write(installed);
  check(/^> node-gyp-build$/m.test(installed), 'the install script (node-gyp-build) ran offline');
  return { app, env };
}

function main() {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'heartwatch-package-'));
  try {
    run('npm', ['run', 'prebuild']);
    const packed = JSON.parse(capture('npm', ['pack', '--json', '--pack-destination', work]));
    const tarball = path.join(work, packed[0].filename);
    const files = packed[0].files.map((f) => f.path);
    for (const required of ['binding.gyp', 'dist/index.js', 'dist/index.mjs', 'dist/index.d.ts']) {
      check(files.includes(required), `tarball contains ${required}`);
    }
    check(
      files.some((f) => /^prebuilds\/linux-x64\/.*\.node$/.test(f)),
      'tarball contains a linux-x64 prebuild',
    );
    check(
      files.some((f) => f.startsWith('native/core/')),
      'tarball contains the native sources',
    );

    const bin = toolFreePath(work);
    const { app, env } = installOffline(work, bin, tarball);

    const required = JSON.parse(
      capture(
        path.join(bin, 'node'),
        ['-e', "console.log(JSON.stringify(require('heartwatch').nativeInfo()))"],
        { cwd: app, env },
      ),
    );
    check(required.loaded === true, 'require("heartwatch") loads the addon');
    check(required.source === 'prebuild', `the prebuilt binary is loaded (${required.file})`);
    check(required.version === required.packageVersion, 'addon version matches the package');
    const imported = JSON.parse(
      capture(
        path.join(bin, 'node'),
        [
          '--input-type=module',
          '-e',
          "import { nativeInfo } from 'heartwatch'; console.log(JSON.stringify(nativeInfo()))",
        ],
        { cwd: app, env },
      ),
    );
    check(imported.source === 'prebuild', 'import "heartwatch" loads the prebuilt binary');
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

if (require.main === module) {
  try {
    main();
    console.log('package proof: 1 passed, 0 failed');
  } catch (error) {
    console.error(error.message);
    process.exit(1);
  }
}

module.exports = { main };
