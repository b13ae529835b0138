// A Node child process of the peer bench, pinned with taskset, that talks in JSON lines: every
// line it prints is one message, read in order with next(); ask(command) writes one line to its
// stdin and reads the next message. taskset execs node, so `pid` is the Node process's own.
//
// Runs on: the bench's main thread.
const { spawn } = require('node:child_process');
const path = require('node:path');
const readline = require('node:readline');

function startChild({ script, args, cpu, name }) {
  const child = spawn(
    'taskset',
    ['-c', String(cpu), process.execPath, path.join(__dirname, script), ...args],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const pending = [];
  const waiters = [];
  let exit = null;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  readline.createInterface({ input: child.stdout }).on('line', (line) => {
    const message = JSON.parse(line);
    const waiter = waiters.shift();
    if (waiter) waiter.resolve(message);
    else pending.push(message);
  });
  exited.then((code) => {
    exit = code;
    for (const waiter of waiters.splice(0)) {
      waiter.reject(new Error(`${name} exited (${code}) before answering`));
    }
  });
  /** The next message; rejects after `timeoutMs` or when the child exits first. */
  const next = (timeoutMs = 600_000) => {
    if (pending.length > 0) return Promise.resolve(pending.shift());
    if (exit !== null) return Promise.reject(new Error(`${name} exited (${exit})`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = waiters.findIndex((w) => w.resolve === done);
        if (i >= 0) waiters.splice(i, 1);
        reject(new Error(`${name} sent nothing for ${timeoutMs} ms`));
      }, timeoutMs);
      const done = (message) => {
        clearTimeout(timer);
        resolve(message);
      };
      waiters.push({
        resolve: done,
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
    });
  };
  return {
    pid: child.pid,
    next,
    ask(command, timeoutMs) {
      child.stdin.write(`${JSON.stringify(command)}\n`);
      return next(timeoutMs);
    },
    /** Ends it (stdin closed, then SIGTERM, SIGKILL after 5 s) and waits for its exit. */
    async stop() {
      if (exit === null) {
        child.kill('SIGCONT');
        child.stdin.end();
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
}

module.exports = { startChild };
