// The fallback of engine 'auto' where the addon cannot load. The loader is replaced, for this
// file only, by one that fails the way node-gyp-build does on a platform without a binary, so
// these run on every machine, with or without a working addon.
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { HeartwatchError } from '../../lib/errors.js';
import { Heartwatch } from '../../lib/heartwatch.js';
import { Fixture } from './helpers/loopback.js';

vi.mock('../../lib/native/binding.js', async (importOriginal) => {
  const original = await importOriginal<typeof import('../../lib/native/binding.js')>();
  const { HeartwatchError: ErrorClass } = await import('../../lib/errors.js');
  const failure = {
    ok: false as const,
    error: new ErrorClass(
      'ERR_HW_NATIVE_UNAVAILABLE',
      `heartwatch: the native addon could not be loaded for ${original.platformTag()}: No native build was found`,
    ),
  };
  return { ...original, loadNative: () => failure };
});

const fixture = new Fixture();
afterEach(async () => {
  vi.restoreAllMocks();
  await fixture.closeAll();
});

describe('Heartwatch without the native addon', () => {
  it("engine 'auto' falls back to js and says so once, after listen() begins", async () => {
    const hw = fixture.track(new Heartwatch({ host: '127.0.0.1', port: 0 }));
    expect(hw.engine).toBe('js');
    const warnings: HeartwatchError[] = [];
    hw.on('warning', (w) => warnings.push(w));
    expect(warnings).toHaveLength(0);
    const listening = hw.listen();
    expect(warnings).toHaveLength(1);
    expect(warnings[0]?.code).toBe('ERR_HW_NATIVE_UNAVAILABLE');
    expect(warnings[0]?.message).toContain('pure-TS engine');
    await listening;
    await hw.listen();
    expect(warnings).toHaveLength(1);
  });

  it("without a 'warning' listener the fallback goes to process.emitWarning", async () => {
    const emitWarning = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    const hw = fixture.track(new Heartwatch({ host: '127.0.0.1', port: 0 }));
    await hw.listen();
    expect(emitWarning).toHaveBeenCalledTimes(1);
    expect(emitWarning.mock.calls[0]?.[1]).toEqual({ code: 'ERR_HW_NATIVE_UNAVAILABLE' });
  });

  it("engine 'native' throws ERR_HW_NATIVE_UNAVAILABLE where it cannot run", () => {
    expect(() => new Heartwatch({ engine: 'native' })).toThrow(
      expect.objectContaining({ code: 'ERR_HW_NATIVE_UNAVAILABLE' }),
    );
  });
});
