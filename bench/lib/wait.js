// Bounded waits for the benchmark runners: a condition polled until it holds, failing with what
// was missing instead of waiting forever when the process that should bring it about is gone
// (a fleet simulator that died connecting) or never gets there.
//
// Runs on: the calling script's main thread.

/** How much of a child's stderr an error quotes: its last lines are the ones that say why. */
const stderrTailChars = 2000;

/**
 * Follows `child` (from child_process.spawn with stderr piped): its stderr's tail is kept, and
 * passed on to this process's stderr unless `echo` is false. Returns `{ name, exit, exited, stderrTail(), describeExit() }`:
 * `exit` is null until the child exits, then `{ code, signal }`; `exited` resolves with it.
 */
function watchChild(child, name, { echo = true } = {}) {
  let tail = '';
  const watched = {
    name,
    exit: null,
    exited: new Promise((resolve) =>
      child.once('close', (code, signal) => {
        watched.exit = { code, signal };
        resolve(watched.exit);
      }),
    ),
    stderrTail: () => tail.trim(),
    describeExit() {
      const { code, signal } = watched.exit;
      const how = signal === null ? `with code ${code}` : `on ${signal}`;
      const said = tail.trim();
      return `${name} exited ${how}${said === '' ? ' (no stderr)' : `; its stderr ends: ${said}`}`;
    },
  };
  child.stderr?.on('data', (chunk) => {
    if (echo) process.stderr.write(chunk);
    tail = (tail + chunk).slice(-stderrTailChars);
  });
  return watched;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Polls `done()` (true or a promise of it) every `pollMs` until it holds. Rejects, with `what`
 * and `progress()` (what was reached) in the message, once `timeoutMs` have passed or once
 * `child` (a {@link watchChild}) has exited with `done()` still false: its exit code or signal
 * and its stderr's tail say why.
 */
async function waitUntil(
  done,
  { what, progress = () => '', timeoutMs, child = null, pollMs = 100 },
) {
  const start = performance.now();
  for (;;) {
    if (await done()) return;
    const reached = progress();
    const waited = Math.round(performance.now() - start);
    const so = reached === '' ? '' : ` (${reached})`;
    if (child?.exit) {
      throw new Error(
        `gave up waiting for ${what}${so} after ${waited} ms: ${child.describeExit()}`,
      );
    }
    if (waited >= timeoutMs) {
      const said = child?.stderrTail() ?? '';
      const alive =
        child === null
          ? ''
          : `; ${child.name} still running${said === '' ? '' : `, its stderr ends: ${said}`}`;
      throw new Error(`timed out after ${waited} ms waiting for ${what}${so}${alive}`);
    }
    await Promise.race([sleep(pollMs), child?.exited].filter(Boolean));
  }
}

module.exports = { watchChild, waitUntil };
