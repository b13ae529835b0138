// The live page in a real browser: Debian's chromium (installed by scripts/system-deps.sh),
// driven by playwright-core, against a real server fed heartbeats over loopback. The page must
// load, its charts must draw their series, and a host that stops must show as `down` on the page
// within 2 s of its event. Bounded: every wait has a timeout, the whole test 60 s.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type BrowserContext, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nativeEngineAvailable } from '../../lib/engine/native-engine.js';
import { Heartwatch } from '../../lib/heartwatch.js';
import { HttpApi } from '../../lib/http/server.js';
import { registerMetrics } from '../../lib/metrics/prometheus.js';
import { LoopbackClient } from './helpers/loopback.js';

const executablePath = '/usr/bin/chromium';
const flags = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

let hw: Heartwatch;
let api: HttpApi;
let client: LoopbackClient;
let context: BrowserContext;
let profile: string;
let beating: NodeJS.Timeout;
const quiet = new Set<bigint>();

beforeAll(async () => {
  if (!existsSync(executablePath)) {
    throw new Error(
      `${executablePath} is missing: run "bash scripts/system-deps.sh" (Debian's chromium)`,
    );
  }
  hw = new Heartwatch({
    host: '127.0.0.1',
    port: 0,
    engine: nativeEngineAvailable() ? 'native' : 'js',
    timeoutMs: 600,
    missedBeats: 0,
  });
  api = new HttpApi(hw, { port: 0, metrics: registerMetrics(hw) });
  const udp = (await hw.listen()).port;
  client = await LoopbackClient.open();
  let seq = 0;
  const beat = () => {
    seq += 1;
    for (let id = 1n; id <= 20n; id++) {
      if (!quiet.has(id)) void client.beat(udp, id, { seq }).catch(() => undefined);
    }
  };
  beat();
  beating = setInterval(beat, 100);
  profile = mkdtempSync(path.join(tmpdir(), 'hw-chromium-'));
  context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    args: flags,
    timeout: 30_000,
  });
}, 60_000);

afterAll(async () => {
  clearInterval(beating);
  await context?.close();
  if (profile !== undefined) rmSync(profile, { recursive: true, force: true });
  await api?.close();
  await hw?.close();
  await client?.close();
});

describe('the live page in chromium', () => {
  it('loads, draws its charts, looks a host up, and shows a stopped host down within 2 s', async () => {
    const { port } = await api.listen();
    const page = await context.newPage();
    page.setDefaultTimeout(10_000);
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(err.message));
    await page.goto(`http://127.0.0.1:${port}/`);
    await page.waitForFunction(() =>
      /up 20 \| down 0/.test(document.getElementById('summary')?.textContent ?? ''),
    );

    // Three uPlot charts, each with at least 3 points, and the hosts chart's "up" line (#080)
    // actually painted on its canvas.
    await page.waitForFunction(
      () =>
        (window as unknown as { heartwatchPage: { data: { t: number[] } } }).heartwatchPage.data.t
          .length >= 3,
    );
    expect(await page.locator('.uplot canvas').count()).toBe(3);
    const painted = await page.evaluate(() => {
      const canvas = document.querySelector('#chart-hosts canvas') as HTMLCanvasElement;
      const pixels = (canvas.getContext('2d') as CanvasRenderingContext2D).getImageData(
        0,
        0,
        canvas.width,
        canvas.height,
      ).data;
      let green = 0;
      for (let i = 0; i < pixels.length; i += 4) {
        if (
          pixels[i] === 0 &&
          pixels[i + 1] === 136 &&
          pixels[i + 2] === 0 &&
          (pixels[i + 3] as number) > 200
        )
          green += 1;
      }
      return green;
    });
    expect(painted).toBeGreaterThan(20);
    await expect.poll(() => page.locator('#lateness .row').count()).toBe(14);

    // Host lookup.
    await page.fill('#host-id', '7');
    await page.click('#lookup button');
    await page.waitForSelector('#host[data-state="up"]');
    expect(await page.textContent('#host')).toMatch(/id +7\n/);

    // Host 7 stops; the page must show it down within 2 s of the engine's event.
    const down = new Promise<number>((resolve) =>
      hw.on('down', (e) => {
        if (e.id === '7') resolve(Date.now());
      }),
    );
    quiet.add(7n);
    const eventAt = await down;
    await page.waitForSelector('#events li.down[data-id="7"]', { timeout: 2000 });
    await page.waitForSelector('#host[data-state="down"]', { timeout: 2000 });
    expect(Date.now() - eventAt).toBeLessThan(2000);
    await page.waitForFunction(
      () => /down 1/.test(document.getElementById('summary')?.textContent ?? ''),
      undefined,
      { timeout: 2000 },
    );
    if (process.env.HEARTWATCH_SCREENSHOT !== undefined) {
      await page.screenshot({ path: process.env.HEARTWATCH_SCREENSHOT, fullPage: true });
    }
    expect(errors).toEqual([]);
  }, 60_000);
});
