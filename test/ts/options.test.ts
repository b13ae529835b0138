import { describe, expect, it } from 'vitest';
import { HeartwatchError } from '../../lib/errors.js';
import { Heartwatch } from '../../lib/heartwatch.js';
import { allowedCpus, jsMaxHosts, nativeMaxHostsPerShard } from '../../lib/native/platform.js';
import { maxThreads, resolveOptions } from '../../lib/options.js';

const allowed = allowedCpus();
const cpuCount = allowed.length;

function errorOf(input: unknown): HeartwatchError {
  try {
    resolveOptions(input);
  } catch (error) {
    expect(error).toBeInstanceOf(HeartwatchError);
    expect((error as HeartwatchError).code).toBe('ERR_HW_INVALID_OPTION');
    return error as HeartwatchError;
  }
  throw new Error(`resolveOptions accepted ${JSON.stringify(input)}`);
}

describe('resolveOptions defaults', () => {
  it('fills every option in, with threads and CPUs from the affinity mask', () => {
    const half = Math.max(1, Math.floor(cpuCount / 2));
    expect(resolveOptions(undefined)).toEqual({
      port: 7700,
      host: '::',
      timeoutMs: 5000,
      missedBeats: 3,
      identity: 'id',
      receivers: half,
      workers: half,
      cpus: allowed,
      maxHosts: 4_194_304,
      forgetAfterMs: 3_600_000,
      maxStatusBytes: 1024,
      statusBudgetBytes: 64 * 1024 * 1024,
      batchSize: 64,
      recvBufferBytes: 8 * 1024 * 1024,
      receiveBackend: 'auto',
      ringCapacity: 65_536,
      eventRingCapacity: 65_536,
      eventBatchSize: 4096,
      spin: false,
      engine: 'auto',
      expiry: 'wheel',
      auth: null,
      allow: [],
      storm: { fraction: 0.4, windowMs: 5000, minDowns: 10, policy: 'flag' },
      tcp: null,
    });
  });

  it('treats {} and undefined values like absent options', () => {
    expect(resolveOptions({ port: undefined, timeoutMs: undefined })).toEqual(resolveOptions({}));
  });

  it('returns a frozen object', () => {
    const options = resolveOptions({ cpus: [0] });
    expect(Object.isFrozen(options)).toBe(true);
    expect(Object.isFrozen(options.cpus)).toBe(true);
  });

  it('resolves expiry auto: fifo without announced intervals, wheel with them', () => {
    expect(resolveOptions({ missedBeats: 0 }).expiry).toBe('fifo');
    expect(resolveOptions({ missedBeats: 1 }).expiry).toBe('wheel');
    expect(resolveOptions({ missedBeats: 0, expiry: 'wheel' }).expiry).toBe('wheel');
    expect(resolveOptions({ missedBeats: 0, expiry: 'fifo' }).expiry).toBe('fifo');
  });

  it('accepts every bound', () => {
    const low = {
      port: 0,
      host: '127.0.0.1',
      timeoutMs: 1,
      missedBeats: 0,
      identity: 'ip',
      receivers: 1,
      workers: 1,
      cpus: null,
      maxHosts: 1,
      forgetAfterMs: 0,
      maxStatusBytes: 0,
      statusBudgetBytes: 0,
      batchSize: 1,
      recvBufferBytes: 4096,
      receiveBackend: 'auto',
      ringCapacity: 1024,
      eventRingCapacity: 1024,
      eventBatchSize: 1,
      spin: true,
      engine: 'js',
      expiry: 'fifo',
      auth: null,
      allow: [],
      storm: false,
      tcp: null,
    } as const;
    expect(resolveOptions(low)).toEqual({ ...low, storm: null });
    expect(resolveOptions({ storm: { fraction: 0.001, windowMs: 1, minDowns: 1 } }).storm).toEqual({
      fraction: 0.001,
      windowMs: 1,
      minDowns: 1,
      policy: 'flag',
    });
    const high = {
      port: 65535,
      host: '::1',
      timeoutMs: 16_777_214,
      missedBeats: 1000,
      identity: 'address',
      receivers: maxThreads(),
      workers: maxThreads(),
      cpus: [allowed[cpuCount - 1]],
      maxHosts: Math.min(2 ** 31 - 1, (nativeMaxHostsPerShard() ?? jsMaxHosts) * maxThreads()),
      forgetAfterMs: 2 ** 31 - 1,
      maxStatusBytes: 65_535,
      statusBudgetBytes: 2 ** 40,
      batchSize: 1024,
      recvBufferBytes: 2 ** 31 - 1,
      receiveBackend: 'recvmmsg',
      ringCapacity: 2 ** 24,
      eventRingCapacity: 2 ** 24,
      eventBatchSize: 65_536,
      spin: false,
      engine: 'native',
      expiry: 'wheel',
      auth: null,
      allow: [],
      storm: { fraction: 1, windowMs: 16_777_214, minDowns: 2 ** 31 - 1, policy: 'hold' },
      tcp: null,
    } as const;
    expect(resolveOptions(high)).toEqual(high);
  });
});

describe('resolveOptions auth and allow', () => {
  const key = (bytes: number) => Buffer.alloc(bytes, 0xab);

  it('accepts 1 to 8 keys of 16 to 1024 bytes, and keeps them redacted', () => {
    const one = resolveOptions({ auth: { keys: [key(16)] } }).auth;
    expect(one?.required).toBe(false);
    expect(one?.keys.size).toBe(1);
    const eight = resolveOptions({
      auth: { keys: Array.from({ length: 8 }, () => key(1024)), required: true },
    });
    expect(eight.auth?.required).toBe(true);
    expect(eight.auth?.keys.keys[7]).toEqual(key(1024));
    expect(JSON.stringify(eight)).not.toMatch(/abab|171/);
    expect(String(eight.auth?.keys)).toBe('[8 heartwatch auth key(s), redacted]');
  });

  it.each([
    [{ keys: [] }, /"auth\.keys".*got 0 keys/],
    [{ keys: Array.from({ length: 9 }, () => Buffer.alloc(32)) }, /got 9 keys/],
    [{ keys: [Buffer.alloc(15, 0xab)] }, /got 15 bytes at index 0/],
    [{ keys: [Buffer.alloc(32), Buffer.alloc(1025)] }, /got 1025 bytes at index 1/],
    [{ keys: ['00112233445566778899aabbccddeeff'] }, /got string at index 0/],
    [{ keys: [Buffer.alloc(32)], required: 'yes' }, /"auth\.required": expected a boolean/],
    [{ keys: [Buffer.alloc(32)], requird: true }, /Unknown option "auth\.requird"/],
    [[Buffer.alloc(32)], /"auth": expected an object/],
  ])('rejects auth %#', (auth, message) => {
    const error = errorOf({ auth });
    expect(error.message).toMatch(message);
    expect(error.message).not.toMatch(/ab{2}|00112233/);
  });

  it('parses prefixes, folding IPv4-mapped ones into IPv4', () => {
    const { allow } = resolveOptions({
      allow: ['10.0.0.0/8', 'fd00::/8', '192.0.2.7', '::ffff:10.1.0.0/112', '::/0'],
    });
    expect(
      allow.map(({ family, bits, address }) => [family, bits, address.toString('hex')]),
    ).toEqual([
      [4, 8, '0a000000'],
      [6, 8, `fd${'0'.repeat(30)}`],
      [4, 32, 'c0000207'],
      [4, 16, '0a010000'],
      [6, 0, '0'.repeat(32)],
    ]);
    expect(
      resolveOptions({ allow: Array.from({ length: 256 }, () => '10.0.0.0/8') }).allow,
    ).toHaveLength(256);
  });

  it.each([
    '10.0.0.0/33',
    '::/129',
    '10.0.0.0/',
    '10.0.0.0/8/8',
    'fe80::1%eth0/64',
    'localhost',
    '',
    5,
  ])('rejects the prefix %j naming the entry', (entry) => {
    expect(errorOf({ allow: [entry] }).message).toMatch(/"allow\[0\]": expected an address prefix/);
  });

  it('rejects more than 256 prefixes and non-arrays', () => {
    expect(errorOf({ allow: Array.from({ length: 257 }, () => '10.0.0.0/8') }).message).toMatch(
      /257 entries/,
    );
    expect(errorOf({ allow: '10.0.0.0/8' }).message).toMatch(/"allow": expected an array/);
  });
});

describe('resolveOptions errors', () => {
  it('names the option, the value and what is allowed', () => {
    expect(errorOf({ timeoutMs: -5 }).message).toBe(
      'Invalid option "timeoutMs": expected an integer from 1 to 16777214 (milliseconds), got -5',
    );
    expect(errorOf({ port: 70000 }).message).toBe(
      'Invalid option "port": expected an integer from 0 to 65535 (0 picks a free port), got 70000',
    );
    expect(errorOf({ identity: 'name' }).message).toBe(
      'Invalid option "identity": expected one of "id", "address", "ip", got "name"',
    );
    expect(errorOf({ storm: { fraction: 0 } }).message).toBe(
      'Invalid option "storm.fraction": expected a number above 0, at most 1, got 0',
    );
    expect(errorOf({ storm: { policy: 'drop' } }).message).toBe(
      'Invalid option "storm.policy": expected one of "flag", "hold", got "drop"',
    );
    expect(errorOf({ storm: { window: 5 } }).message).toBe(
      'Invalid option "storm": expected an object with only fraction, windowMs, minDowns, policy, got { window: 5 } (unknown "window")',
    );
    expect(errorOf({ storm: true }).message).toBe(
      'Invalid option "storm": expected false or an object such as { fraction: 0.5, policy: "hold" }, got true',
    );
    expect(errorOf({ host: 'localhost' }).message).toBe(
      'Invalid option "host": expected an IP address literal such as "::", "0.0.0.0" or "127.0.0.1", got "localhost"',
    );
  });

  it.each([
    ['port', -1],
    ['port', 1.5],
    ['port', '7700'],
    ['host', 7700],
    ['host', '1.2.3'],
    ['timeoutMs', 0],
    ['timeoutMs', 86_400_001],
    ['timeoutMs', Number.NaN],
    ['missedBeats', 1001],
    ['receivers', 0],
    ['receivers', maxThreads() + 1],
    ['workers', 2.5],
    ['maxHosts', 0],
    ['maxHosts', 2 ** 31],
    ['forgetAfterMs', -1],
    ['maxStatusBytes', 65_536],
    ['statusBudgetBytes', -1],
    ['batchSize', 1025],
    ['recvBufferBytes', 4095],
    ['receiveBackend', 'uring'],
    ['receiveBackend', 1],
    ['ringCapacity', 3000],
    ['ringCapacity', 512],
    ['ringCapacity', 2 ** 25],
    ['eventRingCapacity', 1000],
    ['eventBatchSize', 0],
    ['spin', 1],
    ['engine', 'wasm'],
    ['expiry', 'heap'],
    ['identity', null],
  ])('rejects %s = %s', (option, value) => {
    const message = errorOf({ [option]: value }).message;
    expect(message).toMatch(new RegExp(`^Invalid option "${option}": expected .+, got `));
  });

  it('checks cpus: non-empty, integers, in range, distinct', () => {
    expect(errorOf({ cpus: [] }).message).toContain('"cpus"');
    expect(errorOf({ cpus: [0, 0] }).message).toContain('CPU 0 is listed twice');
    const outside = (allowed[cpuCount - 1] as number) + 1;
    expect(errorOf({ cpus: [outside] }).message).toContain(
      `CPU ${outside} is not in this process's affinity mask`,
    );
    expect(errorOf({ cpus: [-1] }).message).toContain('CPUs this process may run on');
    expect(errorOf({ cpus: '0,1' }).message).toContain('got "0,1"');
  });

  it('checks maxHosts in new Heartwatch() against the engine that will run', () => {
    const perShard = nativeMaxHostsPerShard();
    const build = (options: object) => () => new Heartwatch(options);
    expect(build({ engine: 'js', maxHosts: jsMaxHosts })).not.toThrow();
    expect(build({ engine: 'js', maxHosts: jsMaxHosts + 1 })).toThrow(
      /^Invalid option "maxHosts": expected an integer from 1 to 16777216 \(the pure-TS engine/,
    );
    if (perShard === undefined) return;
    expect(perShard).toBeGreaterThan(16_000_000);
    expect(perShard).toBeLessThan(2 ** 24);
    expect(build({ engine: 'native', workers: 2, maxHosts: 2 * perShard })).not.toThrow();
    expect(build({ engine: 'native', workers: 2, maxHosts: 2 * perShard + 1 })).toThrow(
      `expected an integer from 1 to ${2 * perShard} (the native engine tracks at most ${perShard} hosts per worker; workers: 2), got ${2 * perShard + 1}`,
    );
    expect(build({ workers: 1, maxHosts: 2 ** 31 - 1 })).toThrow(/"maxHosts"/);
  });

  it('rejects unknown options, suggesting the closest name', () => {
    expect(errorOf({ timeout: 5000 }).message).toMatch(
      /^Unknown option "timeout": did you mean "timeoutMs"\? Known options: port, host, /,
    );
    expect(errorOf({ recievers: 2 }).message).toContain('did you mean "receivers"?');
    expect(errorOf({ PORT: 1 }).message).toContain('did you mean "port"?');
    expect(errorOf({ somethingElse: 1 }).message).not.toContain('did you mean');
  });

  it('rejects a receive backend the pure-TS engine cannot use', () => {
    expect(errorOf({ engine: 'js', receiveBackend: 'recvmmsg' }).message).toBe(
      `Invalid option "receiveBackend": expected 'auto' with engine 'js' (the pure-TS engine reads with node:dgram), got "recvmmsg"`,
    );
    expect(resolveOptions({ engine: 'js', receiveBackend: 'auto' }).receiveBackend).toBe('auto');
    expect(resolveOptions({ receiveBackend: 'recvmmsg' }).receiveBackend).toBe('recvmmsg');
    expect(resolveOptions({ receiveBackend: 'io_uring' }).receiveBackend).toBe('io_uring');
    expect(errorOf({ engine: 'js', receiveBackend: 'io_uring' }).message).toContain(
      `expected 'auto' with engine 'js'`,
    );
  });

  it('rejects expiry fifo together with missedBeats > 0, naming both', () => {
    const message = errorOf({ expiry: 'fifo' }).message;
    expect(message).toContain('"expiry" and "missedBeats"');
    expect(message).toContain('got missedBeats: 3 (the default)');
    expect(errorOf({ expiry: 'fifo', missedBeats: 2 }).message).toContain('got missedBeats: 2');
  });

  it.each([null, 42, 'port=1', [1, 2]])('rejects options that are not an object: %s', (input) => {
    expect(errorOf(input).message).toMatch(/^Invalid options: expected an object/);
  });
});
