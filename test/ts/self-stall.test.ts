// heartwatch's own stalls must delay downs, never falsify them (README "What a down means").
// The server runs in a child process (helpers/stall-server.cjs) that the test stops with SIGSTOP
// or starves with CPU hogs, while a fleet in another process (helpers/beat-fleet.cjs) keeps
// beating. Both engines, unchanged.
import { type ChildProcess, spawn } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { nativeEngineAvailable } from '../../lib/engine/native-engine.js';
import type { DownEvent, HostEvent } from '../../lib/events.js';
import type { HeartwatchStats } from '../../lib/stats.js';

const engines: ('js' | 'native')[] = nativeEngineAvailable() ? ['js', 'native'] : ['js'];
const helpers = path.join(__dirname, 'helpers');
const children: ChildProcess[] = [];

afterEach(() => {
  for (const child of children.splice(0)) {
    child.kill('SIGCONT');
    child.kill('SIGKILL');
  }
});

/** A child process whose stdout is JSON lines, kept in order. */
class JsonChild {
  readonly lines: Record<string, unknown>[] = [];
  readonly child: ChildProcess;

  constructor(script: string, args: string[], niceness = 0) {
    const command = niceness === 0 ? process.execPath : 'nice';
    const prefix = niceness === 0 ? [] : ['-n', String(niceness), process.execPath];
    this.child = spawn(command, [...prefix, path.join(helpers, script), ...args], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    children.push(this.child);
    readline
      .createInterface({ input: this.child.stdout as NodeJS.ReadableStream })
      .on('line', (line) => this.lines.push(JSON.parse(line) as Record<string, unknown>));
  }

  send(line: string): void {
    this.child.stdin?.write(`${line}\n`);
  }

  async next<T>(pick: (line: Record<string, unknown>) => T | undefined, what: string): Promise<T> {
    const deadline = Date.now() + 10_000;
    for (let seen = 0; ; ) {
      for (; seen < this.lines.length; seen++) {
        const found = pick(this.lines[seen] as Record<string, unknown>);
        if (found !== undefined) return found;
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await sleep(10);
    }
  }

  events(): HostEvent[] {
    return this.lines.filter((line) => typeof line.type === 'string') as unknown as HostEvent[];
  }
}

async function startServer(
  options: Record<string, unknown>,
): Promise<{ server: JsonChild; port: number }> {
  const server = new JsonChild('stall-server.cjs', [
    JSON.stringify({ host: '127.0.0.1', port: 0, cpus: null, missedBeats: 0, ...options }),
  ]);
  const port = await server.next((line) => line.port as number | undefined, 'the port');
  return { server, port };
}

async function stats(server: JsonChild): Promise<HeartwatchStats> {
  const before = server.lines.length;
  server.send('stats');
  return server.next(
    (line) =>
      server.lines.indexOf(line) >= before
        ? (line.stats as HeartwatchStats | undefined)
        : undefined,
    'stats',
  );
}

async function stopHosts(fleet: JsonChild, from: number, to: number): Promise<number> {
  fleet.send(`stop ${from} ${to}`);
  return fleet.next((line) => {
    const range = line.stopped as number[] | undefined;
    return range?.[0] === from ? (line.lastSent as number) : undefined;
  }, 'the fleet to stop hosts');
}

const timeoutMs = 600;
const intervalMs = 200;
const beating = 1500;
const stopping = 20;

/**
 * Starts a server and a fleet of `beating + stopping` hosts, waits until every host is up.
 * Hosts beating+1.. are the ones a test stops.
 */
async function fleetUp(engine: 'js' | 'native', recvBufferBytes: number) {
  const { server, port } = await startServer({ engine, timeoutMs, recvBufferBytes });
  const fleet = new JsonChild(
    'beat-fleet.cjs',
    [String(port), String(beating + stopping), String(intervalMs)],
    -10,
  );
  const hosts = beating + stopping;
  const ups = () =>
    new Set(
      server
        .events()
        .filter((e) => e.type === 'up')
        .map((e) => e.id),
    ).size;
  const deadline = Date.now() + 10_000;
  while (ups() < hosts) {
    if (Date.now() > deadline) throw new Error(`only ${ups()} of ${hosts} hosts came up`);
    await sleep(20);
  }
  return { server, fleet };
}

/** Every down is for a stopped host, and none came before its last heartbeat + timeout. */
function checkDowns(server: JsonChild, lastSent: number): DownEvent[] {
  const downs = server.events().filter((e): e is DownEvent => e.type === 'down');
  const falseDowns = downs.filter((d) => Number(d.id) <= beating);
  expect(falseDowns, `false downs: ${falseDowns.length}`).toEqual([]);
  for (const down of downs) {
    expect(down.reason).toBe('timeout');
    // Epoch times from two clocks (Date.now here, monotonic mapped to the epoch there).
    expect(down.at).toBeGreaterThanOrEqual(lastSent + timeoutMs - 5);
  }
  return downs;
}

describe.each(engines)('%s engine, stalled itself', (engine) => {
  it.each([
    ['no kernel drops', 32 << 20],
    ['kernel drops', 4 << 20],
  ])(
    'SIGSTOP for 3 x timeout while hosts keep beating (%s): no down for them, stopped hosts reported after, never early',
    async (_label, recvBufferBytes) => {
      const { server, fleet } = await fleetUp(engine, recvBufferBytes);
      const pid = server.child.pid as number;
      process.kill(pid, 'SIGSTOP');
      const stoppedAt = Date.now();
      await sleep(timeoutMs / 2);
      const lastSent = await stopHosts(fleet, beating + 1, beating + stopping);
      await sleep(3 * timeoutMs - (Date.now() - stoppedAt));
      const resumedAt = Date.now();
      process.kill(pid, 'SIGCONT');

      // Every stopped host is reported, after the pause.
      const deadline = Date.now() + 10 * timeoutMs;
      while (checkDowns(server, lastSent).length < stopping && Date.now() < deadline)
        await sleep(50);
      await sleep(3 * timeoutMs);
      const downs = checkDowns(server, lastSent);
      expect(new Set(downs.map((d) => d.id)).size).toBe(stopping);
      for (const down of downs) expect(down.at).toBeGreaterThanOrEqual(resumedAt - 5);

      const after = await stats(server);
      if (engine === 'native') {
        if (recvBufferBytes > 16 << 20) expect(after.kernelDrops).toBe(0);
        else expect(after.kernelDrops).toBeGreaterThan(0);
      }
    },
    30_000,
  );

  it('CPU hogs at a higher priority on every core: no down for hosts that keep beating', async () => {
    const { server, fleet } = await fleetUp(engine, 8 << 20);
    // The fleet runs at nice -20, so it keeps beating; the server, at 0, is starved by hogs at -15.
    const hogs = os.cpus().map(() => new JsonChild('cpu-hog.cjs', ['4000'], -15));
    await Promise.all(hogs.map((hog) => new Promise((resolve) => hog.child.once('exit', resolve))));
    await sleep(2 * timeoutMs);
    expect(checkDowns(server, 0)).toEqual([]);
    expect(fleet.lines).toEqual([]);
  }, 30_000);
});
