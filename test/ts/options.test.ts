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
      batchSize: 64,
      recvBufferBytes: 8 * 1024 * 1024,
      receiveBackend: 'auto',
      ringCapacity: 65_536,
      eventRingCapacity: 65_536,
      eventBatchSize: 4096,
      spin: false,
      engine: 'auto',
      expiry: 'wheel',
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
      batchSize: 1,
      recvBufferBytes: 4096,
      receiveBackend: 'auto',
      ringCapacity: 1024,
      eventRingCapacity: 1024,
      eventBatchSize: 1,
      spin: true,
      engine: 'js',
      expiry: 'fifo',
      tcp: null,
    } as const;
    expect(resolveOptions(low)).toEqual(low);
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
      batchSize: 1024,
      recvBufferBytes: 2 ** 31 - 1,
      receiveBackend: 'io_uring',
      ringCapacity: 2 ** 24,
      eventRingCapacity: 2 ** 24,
      eventBatchSize: 65_536,
      spin: false,
      engine: 'native',
      expiry: 'wheel',
      tcp: null,
    } as const;
    expect(resolveOptions(high)).toEqual(high);
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
    expect(errorOf({ engine: 'js', receiveBackend: 'io_uring' }).message).toBe(
      `Invalid option "receiveBackend": expected 'auto' with engine 'js' (the pure-TS engine reads with node:dgram), got "io_uring"`,
    );
    expect(resolveOptions({ engine: 'js', receiveBackend: 'auto' }).receiveBackend).toBe('auto');
    expect(resolveOptions({ receiveBackend: 'recvmmsg' }).receiveBackend).toBe('recvmmsg');
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
