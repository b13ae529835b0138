// `heartwatch serve` as a service manager runs it: environment variables and a config file,
// JSON log lines on a non-terminal stderr, periodic stats, --http, --forget-after, exit codes.
// Drives the real binary (dist/cli/main.js): run `npm run build:ts` first.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { burstLines, eventTextBatch, fitWidth } from '../../lib/cli/format.js';
import { nativeEngineAvailable } from '../../lib/engine/native-engine.js';
import { LoopbackClient, sleep, until } from './helpers/loopback.js';
import { parsePrometheusText, sampleValue } from './helpers/prom-text.js';

const root = path.join(__dirname, '..', '..');
const bin = path.join(root, 'dist', 'cli', 'main.js');
const dir = mkdtempSync(path.join(tmpdir(), 'hw-serve-ops-'));

class Serve {
  stdout = '';
  stderr = '';
  readonly exited: Promise<number | null>;
  readonly #child: ChildProcess;

  constructor(args: string[], env: Record<string, string> = {}) {
    const base = Object.fromEntries(
      Object.entries(process.env).filter(([k]) => !k.startsWith('HEARTWATCH_')),
    );
    this.#child = spawn(process.execPath, [bin, 'serve', ...args], {
      cwd: root,
      env: { ...base, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.#child.stdout?.setEncoding('utf8').on('data', (s: string) => {
      this.stdout += s;
    });
    this.#child.stderr?.setEncoding('utf8').on('data', (s: string) => {
      this.stderr += s;
    });
    this.exited = new Promise((resolve) => this.#child.on('close', (code) => resolve(code)));
  }

  /** stderr's JSON records. */
  get records(): Record<string, unknown>[] {
    return this.stderr
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  async record(match: (r: Record<string, unknown>) => boolean, ms = 10_000) {
    if (!(await until(() => this.records.some(match), ms))) {
      throw new Error(`no matching log record; stderr: ${this.stderr}`);
    }
    return this.records.find(match) as Record<string, unknown>;
  }

  kill(signal: NodeJS.Signals): void {
    this.#child.kill(signal);
  }
}

const running: Serve[] = [];
function serve(args: string[], env: Record<string, string> = {}): Serve {
  const s = new Serve(args, env);
  running.push(s);
  return s;
}

function httpGet(port: number, p: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: p }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (s: string) => {
        body += s;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Polls an asynchronous check every 50 ms until it holds or `timeoutMs` passes. */
async function eventually(check: () => Promise<boolean>, timeoutMs = 5000): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) return false;
    await sleep(50);
  }
  return true;
}

const listening = (r: Record<string, unknown>) => /^listening on /.test(String(r.msg));

beforeAll(() => {
  writeFileSync(
    path.join(dir, 'good.json'),
    JSON.stringify({ port: 0, host: '127.0.0.1', timeout: '4s', 'max-hosts': 300, engine: 'js' }),
  );
  writeFileSync(path.join(dir, 'typo.json'), JSON.stringify({ timeuot: '4s' }));
  writeFileSync(path.join(dir, 'bad-value.json'), JSON.stringify({ timeout: 'soon' }));
  writeFileSync(path.join(dir, 'not-json.json'), '{port: 1}');
});

afterEach(async () => {
  for (const s of running.splice(0)) {
    s.kill('SIGKILL');
    await s.exited;
  }
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('serve configuration: flags > environment > --config file', () => {
  it('takes each value from the highest source that sets it', async () => {
    const s = serve(['--config', path.join(dir, 'good.json'), '--timeout', '2s', '--http', '0'], {
      HEARTWATCH_TIMEOUT: '3s',
      HEARTWATCH_MAX_HOSTS: '200',
    });
    const http = await s.record((r) => typeof r.http === 'string');
    const port = Number(String(http.http).split(':')[1]);
    const stats = JSON.parse((await httpGet(port, '/stats')).body) as { stats: { engine: string } };
    // engine from the file, port/host from the file.
    expect(stats.stats.engine).toBe('js');
    expect(s.records.find(listening)?.msg).toMatch(/^listening on 127\.0\.0\.1:\d+ \(engine js/);
    // timeout: flag (2s) over env (3s) over file (4s); max-hosts: env (200) over file (300).
    const client = await LoopbackClient.open();
    try {
      const udp = Number(/127\.0\.0\.1:(\d+)/.exec(String(s.records.find(listening)?.msg))?.[1]);
      await client.beat(udp, 5n);
      expect(
        await eventually(async () => (await httpGet(port, '/hosts/5')).status === 200, 5000),
      ).toBe(true);
      const host = JSON.parse((await httpGet(port, '/hosts/5')).body) as { timeoutMs: number };
      expect(host.timeoutMs).toBe(2000);
      for (let id = 1000n; id < 1210n; id++) await client.beat(udp, id);
      expect(
        await eventually(async () => {
          const text = (await httpGet(port, '/metrics')).body;
          const v = sampleValue(parsePrometheusText(text), 'heartwatch_heartbeats_rejected_total', {
            reason: 'host_limit',
          });
          return v === 11;
        }, 5000),
      ).toBe(true);
    } finally {
      await client.close();
    }
  });

  it.each<[string[], Record<string, string>, RegExp]>([
    [
      [],
      { HEARTWATCH_TIMEOUT: 'soon' },
      /^heartwatch serve: HEARTWATCH_TIMEOUT must be a duration .*got "soon"$/,
    ],
    [[], { HEARTWATCH_JSON: 'maybe' }, /^heartwatch serve: HEARTWATCH_JSON must be true or false/],
    [
      ['--config', path.join(dir, 'bad-value.json')],
      {},
      /^heartwatch serve: "timeout" in .*bad-value\.json must be a duration .*got "soon"$/,
    ],
    [
      ['--config', path.join(dir, 'typo.json')],
      {},
      /unknown key "timeuot" in .*typo\.json \(did you mean "timeout"\?\)/,
    ],
    [['--config', path.join(dir, 'not-json.json')], {}, /--config ".*not-json\.json" is not JSON/],
    [
      ['--config', path.join(dir, 'missing.json')],
      {},
      /--config: cannot read ".*missing\.json" \(ENOENT\)$/,
    ],
    [['--http', 'localhost:80'], {}, /--http must be \[HOST:\]PORT with HOST an IP address/],
    [
      ['--http', '70000'],
      {},
      /--http must be an integer from 0 to 65535 \(the port\), got "70000"$/,
    ],
    [['--forget-after', 'never'], {}, /--forget-after must be a duration/],
    [['--stats-interval', '-1'], {}, /--stats-interval needs a value/],
  ])('%j %j: one line naming the source, exit 2', async (args, env, message) => {
    const s = serve(args, env);
    expect(await s.exited).toBe(2);
    const lines = s.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(message);
  });

  it('warns about an unknown HEARTWATCH_ variable, suggesting the right one', async () => {
    const s = serve(['--port', '0', '--host', '127.0.0.1', '--engine', 'js'], {
      HEARTWATCH_TIMEOTU: '1s',
    });
    const warning = await s.record((r) => r.level === 40);
    expect(warning.msg).toBe(
      'unknown environment variable HEARTWATCH_TIMEOTU (did you mean HEARTWATCH_TIMEOUT?); ignored',
    );
  });
});

describe('serve under a service manager', () => {
  it('logs JSON lines with pino fields, a stats line per --stats-interval, and exits 0 on SIGTERM', async () => {
    const s = serve([
      '--port',
      '0',
      '--host',
      '127.0.0.1',
      '--engine',
      'js',
      '--stats-interval',
      '200ms',
    ]);
    const start = await s.record(listening);
    expect(Object.keys(start).slice(0, 5)).toEqual(['level', 'time', 'pid', 'hostname', 'msg']);
    expect(start.level).toBe(30);
    expect(Math.abs((start.time as number) - Date.now())).toBeLessThan(60_000);
    const stats = await s.record((r) => r.msg === 'stats');
    expect(stats).toMatchObject({
      level: 30,
      hostsUp: 0,
      hostsDown: 0,
      trackedHosts: 0,
      received: 0,
    });
    s.kill('SIGHUP');
    await s.record((r) => r.msg === 'SIGHUP ignored (restart to reload)');
    s.kill('SIGTERM');
    expect(await s.exited).toBe(0);
    expect(s.records.map((r) => r.msg)).toContain('SIGTERM, closing');
    expect(s.records.at(-1)?.msg).toMatch(/^closed after 0 datagrams and 0 events$/);
  });

  it.each<[string[], string, number, number]>([
    [['--timeout', '500ms'], 'timeout: 3 x announced interval, else 500 ms', 500, 3],
    [['--missed-beats', '2'], 'timeout: 2 x announced interval, else 5000 ms', 5000, 2],
    [['--timeout', '2s', '--missed-beats', '0'], 'timeout: 2000 ms', 2000, 0],
  ])(
    '%j: prints the timeout rule in force right after listening',
    async (args, msg, timeoutMs, missedBeats) => {
      const s = serve(['--port', '0', '--host', '127.0.0.1', '--engine', 'js', ...args]);
      const rule = await s.record((r) => r.msg === msg);
      expect(rule).toMatchObject({ level: 30, timeoutMs, missedBeats });
      const msgs = s.records.map((r) => r.msg);
      expect(msgs.indexOf(msg)).toBe(msgs.findIndex((m) => /^listening on /.test(String(m))) + 1);
    },
  );

  it.each(nativeEngineAvailable() ? ['js', 'native'] : ['js'])(
    '%s engine: warns about a host id heard from two sources in alternation, naming both',
    async (engine) => {
      const s = serve(['--port', '0', '--host', '127.0.0.1', '--engine', engine]);
      const udp = Number(/:(\d+) /.exec(String((await s.record(listening)).msg))?.[1]);
      const [a, b] = [await LoopbackClient.open(), await LoopbackClient.open()];
      const warned = (r: Record<string, unknown>) => r.level === 40 && r.id === '42';
      try {
        // Host 7 moves once, to b; host 42 is sent by a and b in turn until serve notices.
        await a.beat(udp, 7n);
        let seq = 0;
        const beats = setInterval(() => {
          seq += 1;
          void (seq % 2 === 0 ? a : b).beat(udp, 42n, { seq });
          void b.beat(udp, 7n, { seq });
        }, 20);
        try {
          const warning = await s.record(warned, 30_000);
          expect(warning.msg).toBe(
            `host id 42 is heard from two sources in alternation, ${(warning.addresses as string[]).join(' and ')}: two senders may share this id`,
          );
          expect([...(warning.addresses as string[])].sort()).toEqual(
            [`127.0.0.1:${a.port}`, `127.0.0.1:${b.port}`].sort(),
          );
        } finally {
          clearInterval(beats);
        }
        expect(s.records.filter(warned)).toHaveLength(1);
        expect(s.records.some((r) => r.level === 40 && r.id === '7')).toBe(false);
      } finally {
        await a.close();
        await b.close();
      }
    },
    40_000,
  );

  it('forgets a down host after --forget-after', async () => {
    const s = serve([
      '--port',
      '0',
      '--host',
      '127.0.0.1',
      '--engine',
      'js',
      '--timeout',
      '200ms',
      '--missed-beats',
      '0',
      '--forget-after',
      '300ms',
      '--http',
      '0',
    ]);
    const http = await s.record((r) => typeof r.http === 'string');
    const port = Number(String(http.http).split(':')[1]);
    const udp = Number(/127\.0\.0\.1:(\d+)/.exec(String(s.records.find(listening)?.msg))?.[1]);
    const client = await LoopbackClient.open();
    try {
      await client.beat(udp, 9n);
      expect(
        await eventually(async () => (await httpGet(port, '/hosts/9')).status === 200, 5000),
      ).toBe(true);
      expect(
        await eventually(async () => (await httpGet(port, '/hosts/9')).status === 404, 5000),
      ).toBe(true);
    } finally {
      await client.close();
    }
  });

  it('fails with exit 1 when the --http port is taken, and closes the engine', async () => {
    const first = serve(['--port', '0', '--host', '127.0.0.1', '--engine', 'js', '--http', '0']);
    const http = await first.record((r) => typeof r.http === 'string');
    const taken = String(http.http).split(':')[1] as string;
    const second = serve(['--port', '0', '--host', '127.0.0.1', '--engine', 'js', '--http', taken]);
    expect(await second.exited).toBe(1);
    expect(second.stderr).toMatch(/^heartwatch serve: .*EADDRINUSE/m);
  });
});

describe('heartwatch status', () => {
  function status(args: string[], env: Record<string, string> = {}) {
    return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [bin, 'status', ...args], {
        cwd: root,
        env: { ...process.env, ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (s: string) => {
        stdout += s;
      });
      child.stderr.setEncoding('utf8').on('data', (s: string) => {
        stderr += s;
      });
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });
  }

  it("prints a running server's summary and its hosts through the HTTP API", async () => {
    const s = serve(['--port', '0', '--host', '127.0.0.1', '--engine', 'js', '--http', '0']);
    const http = String((await s.record((r) => typeof r.http === 'string')).http);
    const udp = Number(/127\.0\.0\.1:(\d+)/.exec(String(s.records.find(listening)?.msg))?.[1]);
    const client = await LoopbackClient.open();
    try {
      await client.beat(udp, 11n);
      await client.beat(udp, 12n);
      await client.beat(udp, 12n, { seq: 1, leave: true });
      const port = Number(http.split(':')[1]);
      expect(
        await eventually(async () =>
          (await httpGet(port, '/hosts?state=down')).body.includes('"12"'),
        ),
      ).toBe(true);
      const out = await status(['--hosts'], { HEARTWATCH_HTTP: http });
      expect(out.code).toBe(0);
      const lines = out.stdout.trimEnd().split('\n');
      expect(lines[0]).toBe(`heartwatch at ${http}: healthy (engine js)`);
      expect(lines[1]).toBe('hosts: 1 up, 1 down, 2 tracked');
      expect(lines[2]).toMatch(/^datagrams: 3 received, 0 malformed/);
      expect(lines[3]).toMatch(/transitions: up 2, down 1, restart 0$/);
      expect(lines.slice(4).sort()).toEqual([
        expect.stringMatching(new RegExp(`^11  up    127\\.0\\.0\\.1:${client.port}  \\d{4}-`)),
        expect.stringMatching(new RegExp(`^12  down  127\\.0\\.0\\.1:${client.port}  \\d{4}-`)),
      ]);
      const downOnly = await status(['--http', http, '--hosts', '--state', 'down']);
      expect(downOnly.stdout.trimEnd().split('\n').slice(4)).toHaveLength(1);
    } finally {
      await client.close();
    }
  });

  it('exits 1 when nothing answers, 2 on a bad flag', async () => {
    const gone = await status(['--http', '127.0.0.1:1']);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(
      /^heartwatch status: cannot reach http:\/\/127\.0\.0\.1:1 \(ECONNREFUSED\)/,
    );
    const bad = await status(['--state', 'up']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe('heartwatch status: --state needs --hosts\n');
  });
});

describe('--help', () => {
  it.each([
    ['serve', ['--forget-after', '--http', '--stats-interval', '--config']],
    ['status', ['--http', '--hosts', '--state']],
  ])(
    '%s --help lists the operator flags, the variables and the exit codes',
    async (command, flags) => {
      const out = await new Promise<string>((resolve) => {
        const child = spawn(process.execPath, [bin, command, '--help'], { cwd: root });
        let text = '';
        child.stdout.setEncoding('utf8').on('data', (s: string) => {
          text += s;
        });
        child.on('close', () => resolve(text));
      });
      for (const flag of flags) expect(out).toContain(`  ${flag} `);
      expect(out).toContain('HEARTWATCH_');
      expect(out).toContain('Exit codes');
    },
  );
});

describe('human output fits a terminal', () => {
  it('cuts the status line to the terminal width', () => {
    const line = 'up 1,998 | down 2 | tracked 2,000 | 8.0k pkt/s | malformed 0';
    expect(fitWidth(line, 30)).toBe(`${line.slice(0, 28)}>`);
    expect(fitWidth(line, 30)).toHaveLength(29);
    expect(fitWidth(line, 200)).toBe(line);
    expect(fitWidth(line, undefined)).toBe(line);
  });

  it('summarizes a burst of downs instead of a line per host', async () => {
    const s = serve([
      '--port',
      '0',
      '--host',
      '127.0.0.1',
      '--engine',
      'js',
      '--timeout',
      '300ms',
      '--missed-beats',
      '0',
    ]);
    const udp = Number(/127\.0\.0\.1:(\d+)/.exec(String((await s.record(listening)).msg))?.[1]);
    const client = await LoopbackClient.open();
    try {
      // Sent at once, so that their deadlines fall together: a burst of downs.
      await Promise.all(Array.from({ length: 500 }, (_, i) => client.beat(udp, BigInt(i + 1))));
      expect(
        await until(() => /more in this burst: [\d,]+ down \(timeout\)/.test(s.stdout), 5000),
      ).toBe(true);
    } finally {
      await client.close();
    }
    // Every one of the 500 ups and 500 downs is accounted for, in far fewer lines than events.
    // Half the fleet going down at once is also a storm: its start and end lines are no host's.
    const counted = () =>
      s.stdout
        .trimEnd()
        .split('\n')
        .filter((l) => !/ {2}storm {3}(start|end):/.test(l))
        .reduce((sum, l) => {
          const m = /^\.\.\. and ([\d,]+) more/.exec(l);
          return sum + (m === null ? 1 : Number((m[1] as string).replace(/,/g, '')));
        }, 0);
    expect(await until(() => counted() === 1000, 5000)).toBe(true);
    const downLines = s.stdout.split('\n').filter((l) => / down |down \(timeout\)$/.test(l));
    expect(downLines.length).toBeLessThan(250);
  });

  it('prints every event of a small batch on its own line', () => {
    const down = {
      type: 'down',
      id: '1',
      address: '127.0.0.1:1',
      at: 2000,
      lastSeen: 1000,
      timeoutMs: 1000,
      reason: 'timeout',
    } as const;
    expect(eventTextBatch([down, { ...down, id: '2' }]).split('\n')).toHaveLength(3);
    const burst = Array.from({ length: 4096 }, (_, i) => ({ ...down, id: String(i) }));
    const text = eventTextBatch(burst).trimEnd().split('\n');
    expect(text).toHaveLength(burstLines + 1);
    expect(text.at(-1)).toBe('... and 4,086 more in this burst: 4,086 down (timeout)');
  });

  it('tells each down reason apart, one by one and in a burst', () => {
    const down = {
      type: 'down',
      id: '1',
      address: '127.0.0.1:1',
      at: 2500,
      lastSeen: 1000,
      timeoutMs: 5000,
    } as const;
    const reasons = ['timeout', 'left', 'disconnected', 'disconnected'] as const;
    const burst = Array.from({ length: burstLines + 4 }, (_, i) => ({
      ...down,
      reason: reasons[i % 4] as (typeof reasons)[number],
    }));
    const text = eventTextBatch(burst).trimEnd().split('\n');
    expect(text[0]).toMatch(/ {2}timeout, last heartbeat 1\.500 s earlier$/);
    expect(text[1]).toMatch(/ {2}left \(it sent LEAVE\)$/);
    expect(text[2]).toMatch(/ {2}disconnected \(TCP closed\), last heartbeat 1\.500 s earlier$/);
    expect(text.at(-1)).toBe(
      '... and 4 more in this burst: 1 down (timeout), 1 down (left), 2 down (disconnected)',
    );
  });
});
