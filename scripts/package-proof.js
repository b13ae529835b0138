// Packaging proof: the published tarball installs and loads its prebuilt binary on a machine with
// no network and no C++ toolchain. Builds the prebuild, packs, fills a private npm cache from the
// registry (an install with --ignore-scripts, so nothing is built), installs the tarball offline
// from that cache into an empty directory with a PATH holding only node and npm, then require()s
// and import()s it and checks through nativeInfo() that the prebuilt binary is the one loaded.
// It depends on no state of the user's npm cache.
// Every prebuild is audited (scripts/lib/elf-audit.js: CPU, libraries, highest GLIBC_ version,
// exports), and the installed package is smoke-tested (load, beat, detect a down) by this Node on
// x64 and by an arm64 Node under qemu-user on the arm64 prebuild.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { run, capture, bundledNpmDir } = require('./lib/run.js');
const { auditPrebuild } = require('./lib/elf-audit.js');
const { targets, prebuildFile } = require('./prebuild.js');
const { toolchain, qemuArm64Args } = require('./lib/toolchains.js');

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

/** Each prebuild is in the tarball and keeps its promises (libc version, libraries, exports). */
function auditPrebuilds(files) {
  for (const target of targets) {
    const file = prebuildFile(target);
    const name = path.relative(path.join(__dirname, '..'), file);
    check(files.includes(name), `tarball contains ${name}`);
    const { elf, problems } = auditPrebuild(file, target);
    const needs = Object.entries(elf.highest).map(([family, v]) => `${family}_${v}`);
    check(
      problems.length === 0,
      `${name}: ${elf.machine}, needs ${elf.needed.join(' ')}${needs.length ? ` (${needs.join(', ')})` : ''}` +
        `${problems.length ? `; ${problems.join('; ')}` : ''}`,
    );
  }
}

/**
 * The installed package beats and detects a down: with this Node (x64 prebuild), and with an
 * arm64 Node under qemu-user (arm64 prebuild), the C libraries of the arm64 cross toolchain
 * standing in for an arm64 machine's.
 */
function smoke(app, env) {
  const script = path.join(app, 'installed-smoke.js');
  fs.copyFileSync(path.join(__dirname, 'smoke', 'installed-smoke.js'), script);
  const runs = [
    ['x64', path.join(env.PATH, 'node'), [script]],
    [
      'arm64',
      capture('/bin/sh', ['-c', 'command -v qemu-aarch64']).trim(),
      [...qemuArm64Args, toolchain('nodeArm64'), script],
    ],
  ];
  for (const [arch, command, args] of runs) {
    const result = spawnSync(command, args, { cwd: app, env, encoding: 'utf8', timeout: 120_000 });
    if (result.error) throw new Error(`package proof: ${command}: ${result.error.message}`);
    process.stderr.write(result.stderr);
    const line = result.stdout.trim().split('\n').pop() ?? '';
    const outcome = line.startsWith('{') ? JSON.parse(line) : { ok: false };
    check(
      result.status === 0 && outcome.ok === true && outcome.arch === arch,
      `${arch} Node runs the installed package on its prebuild: up, then down by timeout (${line})`,
    );
  }
}

/**
 * A TypeScript user's code compiles against the installed types, as an ES module and as CommonJS,
 * under the strictest options users set (exactOptionalPropertyTypes): ids as strings or bigints,
 * optional sender options given as `undefined`, error codes switched on.
 */
function typecheckConsumer(app) {
  const body = [
    'const options: HeartbeatSenderOptions = {',
    "  server: 'udp://127.0.0.1:7700', hostId: '42', name: undefined, intervalMs: undefined,",
    '};',
    'export const sender = new HeartbeatSender(options);',
    'export const hw = new Heartwatch({ port: 0 });',
    'export const removed: Promise<boolean> = hw.remove(42n).then(() => hw.remove(String(sender.hostId)));',
    "export const isUsage = (e: HeartwatchError): boolean => e.code === 'ERR_HW_INVALID_OPTION';",
  ];
  fs.writeFileSync(
    path.join(app, 'consumer.mts'),
    [
      "import { HeartbeatSender, Heartwatch, HeartwatchError, type HeartbeatSenderOptions } from 'heartwatch';",
      ...body,
    ].join('\n'),
  );
  fs.writeFileSync(
    path.join(app, 'consumer.cts'),
    [
      "import pkg = require('heartwatch');",
      'const { HeartbeatSender, Heartwatch } = pkg;',
      'type HeartbeatSenderOptions = pkg.HeartbeatSenderOptions;',
      'type HeartwatchError = pkg.HeartwatchError;',
      ...body,
    ].join('\n'),
  );
  const repo = path.join(__dirname, '..');
  run(
    process.execPath,
    [
      path.join(repo, 'node_modules', 'typescript', 'bin', 'tsc'),
      ...['--noEmit', '--strict', '--exactOptionalPropertyTypes', '--module', 'node16'],
      ...[
        '--target',
        'es2022',
        '--types',
        'node',
        '--typeRoots',
        path.join(repo, 'node_modules', '@types'),
      ],
      'consumer.mts',
      'consumer.cts',
    ],
    { cwd: app },
  );
  check(true, 'a strict TypeScript consumer compiles against the package, as ESM and as CommonJS');
}

/**
 * Where no prebuild fits and nothing can compile, the install still succeeds and `engine: 'auto'`
 * runs the pure-TS engine with its warning. LIBC names a C library no prebuild is tagged with, so
 * node-gyp-build finds none; the PATH has no compiler.
 */
function fallbackInstall(work, installFlags, env) {
  const app = newApp(work, 'app-no-prebuild');
  const noPrebuild = { ...env, LIBC: 'bionic', npm_config_offline: 'true' };
  const result = spawnSync(
    path.join(env.PATH, 'npm'),
    [...installFlags, '--offline', '--foreground-scripts'],
    { cwd: app, env: noPrebuild, encoding: 'utf8' },
  );
  process.stderr.write(result.stdout + result.stderr);
  check(result.status === 0, 'with no prebuild that fits and no compiler, the install succeeds');
  check(
    /no C\+\+ compiler .* install g\+\+ >= 12 or clang >= 14/.test(result.stdout + result.stderr),
    'the install says the source build needs g++ >= 12 or clang >= 14',
  );
  const script =
    "const { Heartwatch } = require('heartwatch');" +
    "const hw = new Heartwatch({ host: '127.0.0.1', port: 0 });" +
    "hw.on('warning', (w) => console.log(JSON.stringify({ code: w.code, engine: hw.engine })));" +
    'hw.listen().then(() => hw.close());';
  const lines = capture(path.join(env.PATH, 'node'), ['-e', script], { cwd: app, env: noPrebuild });
  const warning = JSON.parse(lines.trim().split('\n')[0] ?? '{}');
  check(
    warning.engine === 'js' && warning.code === 'ERR_HW_NATIVE_UNAVAILABLE',
    "engine: 'auto' falls back to the pure-TS engine with an ERR_HW_NATIVE_UNAVAILABLE warning",
  );
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
  // (scripts/install.js, which would compile when no prebuild fits) really ran here.
  const installed = capture(
    path.join(bin, 'npm'),
    [...installFlags, '--offline', '--foreground-scripts'],
    {
      cwd: app,
      env: { ...env, npm_config_offline: 'true' },
    },
  );
  process.stderr.write(installed);
  check(/^> node scripts\/install\.js$/m.test(installed), 'the install script ran offline');
  return { app, env, installFlags };
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
    auditPrebuilds(files);
    run(process.execPath, [
      path.join(
        path.dirname(require.resolve('@arethetypeswrong/cli/package.json')),
        'dist',
        'index.js',
      ),
      tarball,
    ]);
    check(true, 'arethetypeswrong finds no problem with the types for import and require');
    check(
      files.some((f) => f.startsWith('native/core/')),
      'tarball contains the native sources',
    );

    const bin = toolFreePath(work);
    const { app, env, installFlags } = installOffline(work, bin, tarball);

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
    typecheckConsumer(app);
    smoke(app, env);
    fallbackInstall(work, installFlags, env);
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
