// The API's argument shapes that users copy from the docs: ids as strings or bigints, optional
// sender options that may be `undefined` under exactOptionalPropertyTypes, and async methods that
// reject (never throw) on a bad argument.
import { createSocket } from 'node:dgram';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { HeartwatchError } from '../../lib/errors.js';
import { Heartwatch } from '../../lib/heartwatch.js';
import { HeartbeatSender, type HeartbeatSenderOptions } from '../../lib/sender/heartbeat-sender.js';

describe('HeartbeatSender ids and optional options', () => {
  it('accepts the host id as a decimal string, the form events carry', async () => {
    const socket = createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    const { port } = socket.address() as AddressInfo;
    const first = new Promise<Buffer>((resolve) => socket.once('message', resolve));
    const sender = new HeartbeatSender({ server: `udp://127.0.0.1:${port}`, hostId: '42' });
    expect(sender.hostId).toBe(42n);
    await sender.start();
    expect((await first).readBigUInt64BE(4)).toBe(42n);
    await sender.close({ leave: false });
    socket.close();
  });

  it('rejects a string that is not a host id, naming the option', () => {
    for (const hostId of ['0', '-1', '4x', '18446744073709551616', '']) {
      expect(() => new HeartbeatSender({ server: 'udp://127.0.0.1:7700', hostId })).toThrow(
        /Invalid option "hostId"|hostId/,
      );
    }
  });

  it('takes undefined for every optional option (exactOptionalPropertyTypes)', () => {
    const options: HeartbeatSenderOptions = {
      server: 'udp://127.0.0.1:7700',
      hostId: 7n,
      name: undefined,
      intervalMs: undefined,
      jitter: undefined,
      payload: undefined,
      announceInterval: undefined,
    };
    const sender = new HeartbeatSender(options);
    expect(sender.intervalMs).toBe(1000);
    expect(sender.jitter).toBe(0.1);
  });
});

describe('Heartwatch.remove', () => {
  it('rejects a wrong argument instead of throwing', async () => {
    const hw = new Heartwatch({ host: '127.0.0.1', port: 0, engine: 'js' });
    let result: Promise<boolean> | undefined;
    expect(() => {
      result = hw.remove(42 as unknown as string);
    }).not.toThrow();
    await expect(result).rejects.toMatchObject({ code: 'ERR_HW_INVALID_ARGUMENT' });
    await expect(result).rejects.toBeInstanceOf(HeartwatchError);
    await hw.close();
  });

  it('takes the id as a bigint as well as a string', async () => {
    const hw = new Heartwatch({ host: '127.0.0.1', port: 0, engine: 'js', timeoutMs: 60_000 });
    const { port } = await hw.listen();
    const up = new Promise((resolve) => hw.once('up', resolve));
    const sender = new HeartbeatSender({ server: `udp://127.0.0.1:${port}`, hostId: 9n });
    await sender.start();
    await up;
    await sender.close({ leave: false });
    expect(await hw.remove(9n)).toBe(true);
    expect(await hw.remove('9')).toBe(false);
    await hw.close();
  });
});
