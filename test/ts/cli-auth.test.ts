// The CLI's key files: `serve`, `send` and `simulate --auth-key-file F`, `serve --auth-required`,
// driven through the real binary (dist/cli/main.js; run `npm run build:ts` first).
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { statusLine } from '../../lib/cli/format.js';
import { nativeEngineAvailable } from '../../lib/engine/native-engine.js';
import { Heartwatch } from '../../lib/heartwatch.js';
import { fleetSimulatorAvailable } from '../../lib/simulator.js';
import type { HeartwatchStats, TcpStats } from '../../lib/stats.js';
import { until } from './helpers/loopback.js';

const root = path.join(__dirname, '..', '..');
const bin = path.join(root, 'dist', 'cli', 'main.js');
const engines: ('js' | 'native')[] = nativeEngineAvailable() ? ['js', 'native'] : ['js'];
const dir = mkdtempSync(path.join(tmpdir(), 'heartwatch-keys-'));
const signingHex = 'a1'.repeat(32);
const oldHex = 'b2'.repeat(32);

function keyFile(name: string, text: string, mode = 0o600): string {
  const file = path.join(dir, name);
  writeFileSync(file, text);
  chmodSync(file, mode);
  return file;
}

const goodKeys = keyFile('keys', `# signing key first\n${signingHex}\n\n${oldHex}\n`);
const otherKeys = keyFile('other', `${'c3'.repeat(32)}\n`);

interface Run {
  child: ChildProcess;
  out: { stdout: string; stderr: string };
  exited: Promise<number | null>;
}

const children: ChildProcess[] = [];
function start(...args: string[]): Run {
  const child = spawn(process.execPath, [bin, ...args], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  const out = { stdout: '', stderr: '' };
  child.stdout?.setEncoding('utf8').on('data', (s: string) => {
    out.stdout += s;
  });
  child.stderr?.setEncoding('utf8').on('data', (s: string) => {
    out.stderr += s;
  });
  const exited = new Promise<number | null>((resolve) =>
    child.on('close', (code) => resolve(code)),
  );
  return { child, out, exited };
}

/**
 * `serve --json` with senders 1 (signed with a server key), 2 (unsigned) and 3 (another key):
 * once 1 is up and has said it signs, all three leave, and only host 1 ever had an event.
 */
async function expectOnlyTheSignedSender(server: Run, senders: Run[]): Promise<void> {
  expect(await until(() => server.out.stdout.includes('"id":"1"'), 10_000)).toBe(true);
  // The sender prints its line on its own schedule: wait for it rather than read it once.
  expect(
    await until(() => /\(incarnation \d+, signed\)/.test(senders[0]?.out.stderr ?? ''), 5000),
  ).toBe(true);
  await new Promise((resolve) => setTimeout(resolve, 300));
  for (const s of senders) s.child.kill('SIGINT');
  await Promise.all(senders.map((s) => s.exited));
  expect(await until(() => server.out.stdout.includes('"reason":"left"'), 5000)).toBe(true);
  const ids = server.out.stdout
    .trim()
    .split('\n')
    .map((line) => (JSON.parse(line) as { id: string }).id);
  expect(new Set(ids)).toEqual(new Set(['1']));
  server.child.kill('SIGTERM');
  expect(await server.exited).toBe(0);
}

afterEach(() => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('serve status line', () => {
  it('shows the auth counters once something was rejected', async () => {
    const hw = new Heartwatch({ engine: 'js', port: 0, host: '127.0.0.1' });
    const quiet: HeartwatchStats = hw.stats();
    expect(statusLine(quiet, 0)).not.toMatch(/auth failed/);
    const line = statusLine(
      { ...quiet, authFailed: 3, replayed: 2, unauthenticated: 1, notAllowed: 4 },
      0,
    );
    expect(line).toMatch(/\| auth failed 3 replayed 2 unsigned 1 not allowed 4$/);
    await hw.close();
  });
});

describe('--auth-key-file', () => {
  it.each([
    ['serve', '--port', '0'],
    ['send', '--to', '127.0.0.1:9', '--id', '1'],
    ['simulate', '--to', '127.0.0.1:9'],
  ])('%s refuses a key file others may read, naming no key', async (...args: string[]) => {
    const open = keyFile(`open-${args[0]}`, `${signingHex}\n`, 0o644);
    const run = start(...args, '--auth-key-file', open);
    expect(await run.exited).toBe(2);
    expect(run.out.stderr).toMatch(/group or other users may access it \(mode 0644\).*chmod 600/);
    expect(run.out.stderr).not.toContain('a1a1');
  });

  it('names the bad line, not its content, and refuses a short key', async () => {
    const bad = keyFile('bad', `${signingHex}\nnot-hex-secret\n`);
    const run = start('serve', '--port', '0', '--auth-key-file', bad);
    expect(await run.exited).toBe(2);
    expect(run.out.stderr).toMatch(/line 2 is not an even number of hex digits/);
    expect(run.out.stderr).not.toContain('secret');
    const short = keyFile('short', 'abcd\n');
    const shortRun = start('send', '--to', '127.0.0.1:9', '--id', '1', '--auth-key-file', short);
    expect(await shortRun.exited).toBe(2);
    expect(shortRun.out.stderr).toMatch(/got 2 bytes at index 0/);
  });

  it('serve --auth-required needs a key file', async () => {
    const run = start('serve', '--port', '0', '--auth-required');
    expect(await run.exited).toBe(2);
    expect(run.out.stderr).toMatch(/--auth-required needs --auth-key-file/);
  });
});

describe.each(engines)('serve --engine %s --auth-required with send', (engine) => {
  it('reports the signing sender and ignores an unsigned and a wrongly keyed one', async () => {
    const server = start(
      'serve',
      '--port',
      '0',
      '--host',
      '127.0.0.1',
      '--engine',
      engine,
      '--json',
      '--auth-key-file',
      goodKeys,
      '--auth-required',
    );
    expect(await until(() => /listening on 127\.0\.0\.1:\d+/.test(server.out.stderr), 10_000)).toBe(
      true,
    );
    const port = server.out.stderr.match(/listening on 127\.0\.0\.1:(\d+)/)?.[1] as string;
    const to = `127.0.0.1:${port}`;
    const senders = [
      start('send', '--to', to, '--id', '1', '--interval', '50ms', '--auth-key-file', goodKeys),
      start('send', '--to', to, '--id', '2', '--interval', '50ms'),
      start('send', '--to', to, '--id', '3', '--interval', '50ms', '--auth-key-file', otherKeys),
    ];
    await expectOnlyTheSignedSender(server, senders);
  });
});

describe.each(engines)(
  'serve --engine %s --tcp-port --auth-required with send --transport tcp',
  (engine) => {
    it('applies the signed TCP sender and ignores an unsigned and a wrongly keyed one', async () => {
      const server = start(
        'serve',
        '--port',
        '0',
        '--tcp-port',
        '0',
        '--host',
        '127.0.0.1',
        '--engine',
        engine,
        '--json',
        '--auth-key-file',
        goodKeys,
        '--auth-required',
      );
      const listening = /listening on 127\.0\.0\.1:\d+, TCP 127\.0\.0\.1:(\d+)/;
      expect(await until(() => listening.test(server.out.stderr), 10_000)).toBe(true);
      const to = `127.0.0.1:${server.out.stderr.match(listening)?.[1] as string}`;
      const send = (...args: string[]) =>
        start('send', '--to', to, '--transport', 'tcp', '--interval', '50ms', ...args);
      const senders = [
        send('--id', '1', '--auth-key-file', goodKeys),
        send('--id', '2'),
        send('--id', '3', '--auth-key-file', otherKeys),
      ];
      await expectOnlyTheSignedSender(server, senders);
    });
  },
);

describe.runIf(fleetSimulatorAvailable())('simulate --auth-key-file', () => {
  it.each(engines)(
    'a signed fleet is accepted by a %s server that requires tags; a wrong key is not',
    async (engine) => {
      const hw = new Heartwatch({
        engine,
        host: '127.0.0.1',
        port: 0,
        timeoutMs: 5000,
        auth: {
          keys: [Buffer.from(oldHex, 'hex'), Buffer.from(signingHex, 'hex')],
          required: true,
        },
      });
      const { port } = await hw.listen();
      try {
        const args = [
          'simulate',
          '--to',
          `127.0.0.1:${port}`,
          '--hosts',
          '40',
          '--rate',
          '400',
          '--duration',
          '500ms',
        ];
        const signed = start(...args, '--auth-key-file', goodKeys, '--restart', '10@250ms');
        expect(await signed.exited).toBe(0);
        expect(await until(() => hw.stats().hostsUp === 40, 5000)).toBe(true);
        const wrong = start(...args, '--first-id', '1001', '--auth-key-file', otherKeys);
        expect(await wrong.exited).toBe(0);
        expect(await until(() => hw.stats().authFailed > 100, 5000)).toBe(true);
        const s = hw.stats();
        expect(s).toMatchObject({ trackedHosts: 40, unauthenticated: 0, replayed: 0 });
      } finally {
        await hw.close();
      }
    },
  );

  it.each(engines)(
    'a signed fleet over TCP is accepted by a %s server that requires tags; a wrong key is not',
    async (engine) => {
      const hw = new Heartwatch({
        engine,
        host: '127.0.0.1',
        port: 0,
        tcp: { port: 0 },
        timeoutMs: 5000,
        auth: { keys: [Buffer.from(signingHex, 'hex')], required: true },
      });
      const { tcpPort } = await hw.listen();
      const tcp = () => hw.stats().tcp as TcpStats;
      try {
        const args = ['simulate', '--to', `127.0.0.1:${tcpPort}`, '--transport', 'tcp'];
        args.push('--hosts', '40', '--rate', '400', '--duration', '500ms');
        const signed = start(...args, '--auth-key-file', goodKeys);
        expect(await signed.exited).toBe(0);
        expect(await until(() => hw.stats().hostsUp === 40, 5000)).toBe(true);
        const wrong = start(...args, '--first-id', '1001', '--auth-key-file', otherKeys);
        expect(await wrong.exited).toBe(0);
        expect(await until(() => tcp().authFailed > 100, 5000)).toBe(true);
        expect(hw.stats().trackedHosts).toBe(40);
        expect(tcp()).toMatchObject({ unauthenticated: 0, authUnsupported: 0, protocolErrors: 0 });
      } finally {
        await hw.close();
      }
    },
  );
});
