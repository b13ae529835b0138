import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { maxAllowPrefixes } from '../../lib/auth/allow-list.js';
import { maxAuthKeyBytes, maxAuthKeys, minAuthKeyBytes, tagBytes } from '../../lib/auth/keys.js';
import { engineLimits, simulatorLimits } from '../../lib/engine/limits.js';
import { loadNative } from '../../lib/native/binding.js';
import {
  checkContract,
  contractNames,
  counterNames,
  type NativeContract,
} from '../../lib/native/contract.js';
import { authTagBytes, headerBytes, maxUdpPayloadBytes } from '../../lib/protocol/wire-v1.js';

const root = path.join(__dirname, '..', '..');

function contract(): NativeContract {
  const load = loadNative();
  if (!load.ok) throw load.error;
  return load.binding.contract;
}

/** A deep, writable copy of the addon's contract: each table a plain record to break a field of. */
type ContractCopy = { [table in keyof NativeContract]: Record<string, unknown> } & {
  counters: { slotsPerLine: number };
};
function copy(): ContractCopy {
  return JSON.parse(JSON.stringify(contract())) as ContractCopy;
}

/** The width lib/ reads each record field with (native-engine.ts's DataView calls). */
const eventWidths = {
  key: 8,
  at: 8,
  lastSeen: 8,
  incarnation: 4,
  previousIncarnation: 4,
  type: 1,
  reason: 1,
  recovered: 1,
  family: 1,
  port: 2,
  uncertain: 1,
  worker: 1,
  statusEnd: 4,
  statusSize: 2,
  previousSize: 2,
  timeoutMs: 4,
} as const;
const hostWidths = {
  key: 8,
  lastSeen: 8,
  incarnation: 4,
  timeoutMs: 4,
  state: 1,
  family: 1,
  port: 2,
  statusSize: 4,
} as const;

/** Fields as [offset, width, alignment], sorted; each must end before the next begins and inside the record. */
function expectDisjoint(layout: Record<string, number>, widths: Record<string, number>): void {
  const fields: [offset: number, width: number, align: number][] = Object.entries(widths).map(
    ([name, width]) => [layout[name] as number, width, width],
  );
  fields.push([layout.ip as number, layout.ipBytes as number, 1]);
  fields.sort((a, b) => a[0] - b[0]);
  let end = 0;
  for (const [offset, width, align] of fields) {
    expect(offset % align).toBe(0);
    expect(offset).toBeGreaterThanOrEqual(end);
    end = offset + width;
  }
  expect(end).toBeLessThanOrEqual(layout.bytes as number);
}

describe('the native contract', () => {
  it('has exactly the tables and names lib/ reads', () => {
    const c = contract() as unknown as Record<string, Record<string, unknown>>;
    expect(Object.keys(c).sort()).toEqual([...Object.keys(contractNames), 'counters'].sort());
    for (const [table, names] of Object.entries(contractNames)) {
      expect(Object.keys(c[table] as object).sort(), table).toEqual([...names].sort());
    }
    const counters = c.counters as Record<string, Record<string, number>>;
    for (const [kind, names] of Object.entries(counterNames)) {
      expect(Object.keys(counters[kind] as object).sort(), kind).toEqual([...names].sort());
    }
  });

  it('lays out records so every field lib/ reads fits its width, aligned, without overlap', () => {
    const c = contract();
    expect(Object.keys(eventWidths).length + 3).toBe(contractNames.eventRecord.length);
    expect(Object.keys(hostWidths).length + 3).toBe(contractNames.hostSnapshotRecord.length);
    expectDisjoint(c.eventRecord, eventWidths);
    expectDisjoint(c.hostSnapshotRecord, hostWidths);
  });

  it('gives each counter of a thread kind its own slot inside the line', () => {
    const { counters } = contract();
    for (const kind of Object.keys(counterNames) as (keyof typeof counterNames)[]) {
      const slots = Object.values(counters[kind]);
      expect(new Set(slots).size, kind).toBe(slots.length);
      for (const slot of slots) expect(slot).toBeLessThan(counters.slotsPerLine);
    }
  });

  it('agrees with the numbers lib/ holds for the pure-TS engine', () => {
    const c = contract();
    expect(c.protocol.headerBytes).toBe(headerBytes);
    expect(c.protocol.authTagBytes).toBe(authTagBytes);
    expect(c.protocol.authTagBytes).toBe(tagBytes);
    expect(c.protocol.maxUdpPayloadBytes).toBe(maxUdpPayloadBytes);
    for (const [name, value] of Object.entries(engineLimits)) {
      expect(c.limits[name as keyof typeof engineLimits], name).toBe(value);
    }
    expect(c.simulator).toEqual(simulatorLimits);
    expect(c.auth).toEqual({
      maxKeys: maxAuthKeys,
      minKeyBytes: minAuthKeyBytes,
      maxKeyBytes: maxAuthKeyBytes,
      maxAllowPrefixes,
    });
  });

  it('refuses an addon whose contract differs, naming the field', () => {
    const cases: [string, (c: ContractCopy) => void, RegExp][] = [
      [
        'a protocol constant',
        (c) => Object.assign(c.protocol, { headerBytes: 32 }),
        /protocol\.headerBytes is 32, lib\/ expects 28/,
      ],
      [
        'a limit',
        (c) => Object.assign(c.limits, { maxTimeoutMs: 100 }),
        /limits\.maxTimeoutMs is 100/,
      ],
      [
        'a missing offset',
        (c) => delete c.eventRecord.lastSeen,
        /eventRecord\.lastSeen is undefined/,
      ],
      [
        'a field lib/ does not know',
        (c) => Object.assign(c.hostSnapshotRecord, { uncertain: 45 }),
        /hostSnapshotRecord has uncertain, unknown to lib/,
      ],
      [
        'a counter lib/ does not know',
        (c) => Object.assign(c.counters.worker as object, { storms: 3 }),
        /counters\.worker has storms/,
      ],
      [
        'a counter past the line',
        (c) => Object.assign(c.counters.receiver as object, { batches: c.counters.slotsPerLine }),
        /counters\.receiver\.batches is slot (\d+) of a \1-slot line/,
      ],
      [
        'a table lib/ does not know',
        (c) => Object.assign(c, { wheel: {} }),
        /contract has wheel, unknown to lib/,
      ],
    ];
    for (const [what, breakIt, message] of cases) {
      const broken = copy();
      breakIt(broken);
      let thrown: unknown;
      try {
        checkContract(broken, '/x/heartwatch.node');
      } catch (error) {
        thrown = error;
      }
      expect(thrown, what).toMatchObject({ code: 'ERR_HW_NATIVE_UNAVAILABLE' });
      expect((thrown as Error).message, what).toMatch(message);
      expect((thrown as Error).message).toContain('/x/heartwatch.node');
    }
    expect(checkContract(copy(), 'ok')).toBeTruthy();
  });
});

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) return tsFiles(full);
    return full.endsWith('.ts') ? [full] : [];
  });
}

describe('lib/ reading native memory', () => {
  // The files that read the addon's records and counters; the wire protocol's own decoder
  // (lib/protocol/wire-v1.ts) reads datagrams by docs/protocol.md's offsets and is not among them.
  const readers = tsFiles(path.join(root, 'lib')).filter(
    (file) =>
      !file.includes(`${path.sep}protocol${path.sep}`) &&
      /new DataView|BigUint64Array/.test(readFileSync(file, 'utf8')),
  );

  it('finds the readers', () => {
    expect(readers.map((file) => path.relative(root, file))).toContain(
      path.join('lib', 'engine', 'native-engine.ts'),
    );
  });

  it('reads no record field or counter at a literal offset or slot', () => {
    for (const file of readers) {
      const text = readFileSync(file, 'utf8');
      const calls = text.match(/\.(get|set)(Big)?(Uint|Int|Float)\d+\([^)]*\)/g) ?? [];
      for (const call of calls) expect(call, path.relative(root, file)).not.toMatch(/\b\d+\b/);
      const indexes = text.match(/counters\[[^\]]*\]/g) ?? [];
      for (const index of indexes) expect(index, path.relative(root, file)).not.toMatch(/\b\d+\b/);
    }
  });
});
