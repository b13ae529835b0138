// Small helpers shared by the build and test scripts.
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..', '..');

/** Runs a command with inherited stdio; throws with the command line when it fails. */
function run(command, args, options = {}) {
  console.error(`\n$ ${[command, ...args].join(' ')}`);
  const result = spawnSync(command, args, { cwd: root, stdio: 'inherit', ...options });
  if (result.error) throw new Error(`${command}: ${result.error.message}`);
  if (result.status !== 0) {
    throw new Error(
      `${[command, ...args].join(' ')} exited with ${result.status ?? result.signal}`,
    );
  }
}

/** Runs a command and returns its stdout (stderr passes through); throws when it fails. */
function capture(command, args, options = {}) {
  const result = spawnSync(command, args, {
    cwd: root,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    ...options,
  });
  if (result.error) throw new Error(`${command}: ${result.error.message}`);
  if (result.status !== 0) {
    throw new Error(
      `${[command, ...args].join(' ')} exited with ${result.status ?? result.signal}`,
    );
  }
  return result.stdout;
}

/** Like run(), but echoes output while also returning it, for summaries parsed from tool output. */
function tee(command, args, options = {}) {
  console.error(`\n$ ${[command, ...args].join(' ')}`);
  const result = spawnSync(command, args, {
    cwd: root,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 256 * 1024 * 1024,
    ...options,
  });
  process.stdout.write(result.stdout ?? '');
  process.stderr.write(result.stderr ?? '');
  if (result.error) throw new Error(`${command}: ${result.error.message}`);
  return { status: result.status, output: `${result.stdout}\n${result.stderr}` };
}

/** The npm that came with this Node.js, as `<prefix>/lib/node_modules/npm`. */
const bundledNpmDir = path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm');

/** node-gyp as npm ships it (npm sets npm_config_node_gyp for scripts), else one on PATH. */
function nodeGypCommand() {
  const candidates = [
    process.env.npm_config_node_gyp,
    path.join(bundledNpmDir, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  ].filter(Boolean);
  const script = candidates.find((file) => fs.existsSync(file));
  return script ? [process.execPath, [script]] : ['node-gyp', []];
}

/** Builds the addon into build/Release, incrementally (configure picks up new source files). */
function buildAddon() {
  const [command, prefix] = nodeGypCommand();
  run(command, [...prefix, 'configure']);
  run(command, [...prefix, 'build', '-j', '2']);
}

module.exports = { root, run, capture, tee, buildAddon, bundledNpmDir };
