import { afterEach, describe, expect, it, vi } from 'vitest';
import { HeartwatchError } from '../../lib/errors.js';
import type { HostEvent } from '../../lib/events.js';
import { Heartwatch } from '../../lib/heartwatch.js';
import { Fixture } from './helpers/loopback.js';

const fixture = new Fixture();
afterEach(async () => {
  vi.restoreAllMocks();
  await fixture.closeAll();
});

/** Runs `body` with vitest's own uncaught-exception handlers swapped for one that records. */
async function catchUncaught(body: () => Promise<void>): Promise<unknown[]> {
  const saved = process.listeners('uncaughtException');
  process.removeAllListeners('uncaughtException');
  const caught: unknown[] = [];
  process.on('uncaughtException', (error) => caught.push(error));
  try {
    await body();
    await new Promise((resolve) => setImmediate(resolve));
  } finally {
    process.removeAllListeners('uncaughtException');
    for (const listener of saved) process.on('uncaughtException', listener);
  }
  return caught;
}

describe('Heartwatch', () => {
  it('validates options synchronously in the constructor', () => {
    expect(() => new Heartwatch({ timeoutMs: -5 })).toThrow(HeartwatchError);
    expect(() => new Heartwatch({ timeoutMs: -5 })).toThrow(
      expect.objectContaining({ code: 'ERR_HW_INVALID_OPTION' }),
    );
    expect(() => new Heartwatch({ prot: 1 } as never)).toThrow(/did you mean "port"/);
  });

  it("engine 'js' runs without a warning", async () => {
    const hw = fixture.track(new Heartwatch({ engine: 'js', host: '127.0.0.1', port: 0 }));
    const warning = vi.fn();
    hw.on('warning', warning);
    await hw.listen();
    expect(hw.engine).toBe('js');
    expect(warning).not.toHaveBeenCalled();
  });

  it('answers stats(), hosts() and remove() before listen()', async () => {
    const hw = fixture.track(new Heartwatch({ engine: 'js' }));
    expect(hw.stats()).toMatchObject({ engine: 'js', received: 0, trackedHosts: 0 });
    expect(await hw.hosts()).toEqual([]);
    expect(await hw.remove('1')).toBe(false);
    await expect(hw.remove(1 as never)).rejects.toMatchObject({ code: 'ERR_HW_INVALID_ARGUMENT' });
  });

  it('exposes the resolved options', () => {
    const hw = fixture.track(new Heartwatch({ engine: 'js', missedBeats: 0 }));
    expect(hw.options).toMatchObject({ port: 7700, missedBeats: 0, expiry: 'fifo' });
  });

  it("rethrows a listener's error on nextTick when there is no 'error' listener", async () => {
    const { hw, port, log, client } = await fixture.start({ engine: 'js', timeoutMs: 5000 });
    const boom = new Error('listener bug');
    hw.once('up', () => {
      throw boom;
    });
    const caught = await catchUncaught(async () => {
      await client.beat(port, 1n);
      await log.waitFor((e) => e.id === '1');
    });
    expect(caught).toEqual([boom]);
    // The engine carries on.
    await client.beat(port, 2n);
    await log.waitFor((e) => e.id === '2');
  });

  it("routes async listener rejections and non-Error throws to 'error'", async () => {
    const { hw, port, log, client } = await fixture.start({ engine: 'js', timeoutMs: 5000 });
    const errors: Error[] = [];
    hw.on('error', (err) => errors.push(err));
    hw.on('up', async (e) => {
      throw new Error(`async ${e.id}`);
    });
    hw.on('events', () => {
      throw 'a string';
    });
    await client.beat(port, 3n);
    await log.waitFor((e) => e.id === '3');
    await new Promise((resolve) => setImmediate(resolve));
    expect(errors.map((e) => e.message)).toEqual([
      'a listener threw a non-Error value: a string',
      'async 3',
    ]);
    expect(errors[0]).toMatchObject({ code: 'ERR_HW_LISTENER', cause: 'a string' });
  });

  it('feeds every events() iterator, hands out what is buffered after close(), then ends', async () => {
    const { hw, port, log, client } = await fixture.start({ engine: 'js', timeoutMs: 5000 });
    const first = hw.events();
    const second = hw.events();
    await client.beat(port, 5n);
    await client.beat(port, 6n);
    await log.waitFor((e) => e.id === '6');
    await hw.close();
    const drain = async (it: AsyncIterableIterator<HostEvent>): Promise<string[]> => {
      const ids: string[] = [];
      for await (const e of it) ids.push(e.id);
      return ids;
    };
    expect(await drain(first)).toEqual(['5', '6']);
    expect(await drain(second)).toEqual(['5', '6']);
    expect(await hw.events().next()).toEqual({ value: undefined, done: true });
  });

  it('stops feeding an iterator once its loop breaks', async () => {
    const { hw, port, log, client } = await fixture.start({ engine: 'js', timeoutMs: 5000 });
    const iterator = hw.events();
    await client.beat(port, 7n);
    for await (const e of iterator) {
      expect(e.id).toBe('7');
      break;
    }
    await client.beat(port, 8n);
    await log.waitFor((e) => e.id === '8');
    expect(await iterator.next()).toEqual({ value: undefined, done: true });
  });
});
