import { maxAllowPrefixes } from '../auth/allow-list.js';
import { maxAuthKeyBytes, maxAuthKeys, minAuthKeyBytes } from '../auth/keys.js';
import { engineLimits, simulatorLimits } from '../engine/limits.js';
import { HeartwatchError } from '../errors.js';
import {
  authTagBytes,
  flagAuth,
  flagLeave,
  headerBytes,
  maxUdpPayloadBytes,
} from '../protocol/wire-v1.js';

/**
 * The field names of each table in the addon's `contract` export (native/addon/contract.h). The
 * addon supplies every number: sizes and offsets (from `sizeof`/`offsetof`), counter slots, enum
 * values and limits; lib/ holds only the names it reads, and {@link checkContract} proves at load
 * that the addon has each of them and no other.
 */
export const contractNames = {
  eventRecord: [
    'bytes',
    'key',
    'at',
    'lastSeen',
    'incarnation',
    'previousIncarnation',
    'type',
    'reason',
    'recovered',
    'family',
    'port',
    'uncertain',
    'worker',
    'ip',
    'ipBytes',
    'statusEnd',
    'statusSize',
    'previousSize',
    'timeoutMs',
  ],
  hostSnapshotRecord: [
    'bytes',
    'key',
    'lastSeen',
    'incarnation',
    'timeoutMs',
    'state',
    'family',
    'port',
    'ip',
    'ipBytes',
    'statusSize',
  ],
  eventType: ['up', 'down', 'restart', 'update'],
  downReason: ['none', 'timeout', 'left', 'disconnected'],
  hostSnapshotState: ['up', 'down'],
  family: ['unknown', 'ipv4', 'ipv6'],
  identity: ['id', 'address', 'ip'],
  expiry: ['fifo', 'wheel'],
  receiveBackend: ['auto', 'recvmmsg', 'io_uring'],
  command: ['remove', 'snapshot', 'host'],
  limits: [
    'maxHostsPerShard',
    'maxTimeoutMs',
    'minRingCapacity',
    'maxRingCapacity',
    'maxBatchSize',
    'maxStatusBytes',
  ],
  protocol: ['headerBytes', 'authTagBytes', 'maxUdpPayloadBytes', 'flagLeave', 'flagAuth'],
  auth: ['maxKeys', 'minKeyBytes', 'maxKeyBytes', 'maxAllowPrefixes'],
  simulator: ['maxBatch', 'minStatusBytes'],
} as const;

/** Each counter lib/ reads, by thread kind, in the names native/addon/contract.cc gives them. */
export const counterNames = {
  receiver: [
    'received',
    'malformed',
    'authUnsupported',
    'kernelDrops',
    'ringDrops',
    'recvBufferBytes',
    'batches',
    'receiveErrors',
    'authFailed',
    'unauthenticated',
    'notAllowed',
    'watermarkMs',
    'failedErrno',
  ],
  worker: [
    'processed',
    'hostsUp',
    'hostsDown',
    'trackedHosts',
    'refused',
    'eventsTaken',
    'eventsPublished',
    'forgotten',
    'replayed',
    'expiryWaits',
    'lossyDeferred',
    'uncertainDowns',
    'addressChanges',
    'lastMovedKey',
  ],
  tcpAcceptor: [
    'accepted',
    'refusedMaxConnections',
    'refusedPerIp',
    'acceptPaused',
    'handoffWaits',
    'openConnections',
    'descriptorLimit',
    'acceptErrors',
  ],
  tcpReactor: [
    'frames',
    'protocolErrors',
    'authUnsupported',
    'ringDrops',
    'handshakeTimeouts',
    'idleTimeouts',
    'slowFrames',
    'closedByPeer',
    'unauthenticated',
    'notAllowed',
    'authFailed',
    'authSlotsFull',
    'statusSlotsFull',
  ],
  status: ['hosts', 'bytes', 'oversize', 'overBudget', 'lost', 'eventsDropped'],
} as const;

type Names = typeof contractNames;
type CounterNames = typeof counterNames;
type Table<K extends readonly string[]> = { readonly [name in K[number]]: number };

/** The addon's `contract` export, as {@link checkContract} has proven it. */
export type NativeContract = { readonly [table in keyof Names]: Table<Names[table]> } & {
  readonly counters: { readonly slotsPerLine: number } & {
    readonly [kind in keyof CounterNames]: Table<CounterNames[kind]>;
  };
};

/**
 * Numbers lib/ also needs without the addon (the pure-TS engine, option checks, the sender),
 * defined by docs/protocol.md and lib/engine/limits.ts: the addon must agree with each.
 */
const sharedValues: {
  [table in 'protocol' | 'limits' | 'auth' | 'simulator']?: Record<string, number>;
} = {
  simulator: {
    maxBatch: simulatorLimits.maxBatch,
    minStatusBytes: simulatorLimits.minStatusBytes,
  },
  auth: {
    maxKeys: maxAuthKeys,
    minKeyBytes: minAuthKeyBytes,
    maxKeyBytes: maxAuthKeyBytes,
    maxAllowPrefixes,
  },
  protocol: { headerBytes, authTagBytes, maxUdpPayloadBytes, flagLeave, flagAuth },
  limits: {
    maxTimeoutMs: engineLimits.maxTimeoutMs,
    minRingCapacity: engineLimits.minRingCapacity,
    maxRingCapacity: engineLimits.maxRingCapacity,
    maxBatchSize: engineLimits.maxBatchSize,
    maxStatusBytes: engineLimits.maxStatusBytes,
  },
};

function mismatch(file: string, what: string): HeartwatchError {
  return new HeartwatchError(
    'ERR_HW_NATIVE_UNAVAILABLE',
    `heartwatch: the addon ${file} does not match this package's lib/: ${what}; ` +
      'rebuild it from the same sources (npm run build:native)',
  );
}

function checkTable(
  file: string,
  path: string,
  table: unknown,
  names: readonly string[],
  shared: Record<string, number> | undefined,
): void {
  if (typeof table !== 'object' || table === null) throw mismatch(file, `${path} is missing`);
  const record = table as Record<string, unknown>;
  for (const name of names) {
    const value = record[name];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
      throw mismatch(file, `${path}.${name} is ${String(value)}, expected a non-negative integer`);
    }
    const expected = shared?.[name];
    if (expected !== undefined && value !== expected) {
      throw mismatch(file, `${path}.${name} is ${value}, lib/ expects ${expected}`);
    }
  }
  const extra = Object.keys(record).filter((name) => !names.includes(name));
  if (extra.length > 0) throw mismatch(file, `${path} has ${extra.join(', ')}, unknown to lib/`);
}

/**
 * Proves that `contract` (the addon's export, loaded from `file`) has every name lib/ reads, no
 * other, and the same values lib/ holds for the pure-TS engine; throws
 * `HeartwatchError('ERR_HW_NATIVE_UNAVAILABLE')` naming the first difference.
 */
export function checkContract(contract: unknown, file: string): NativeContract {
  if (typeof contract !== 'object' || contract === null) {
    throw mismatch(file, 'it exports no contract');
  }
  const c = contract as Record<string, unknown>;
  for (const table of Object.keys(contractNames) as (keyof Names)[]) {
    checkTable(
      file,
      table,
      c[table],
      contractNames[table],
      sharedValues[table as keyof typeof sharedValues],
    );
  }
  const counters = c.counters as Record<string, unknown> | undefined;
  if (typeof counters !== 'object' || counters === null)
    throw mismatch(file, 'counters is missing');
  const slotsPerLine = counters.slotsPerLine;
  if (typeof slotsPerLine !== 'number' || !Number.isInteger(slotsPerLine) || slotsPerLine < 1) {
    throw mismatch(file, `counters.slotsPerLine is ${String(slotsPerLine)}`);
  }
  for (const kind of Object.keys(counterNames) as (keyof CounterNames)[]) {
    checkTable(file, `counters.${kind}`, counters[kind], counterNames[kind], undefined);
    for (const name of counterNames[kind]) {
      const slot = (counters[kind] as Record<string, number>)[name] as number;
      if (slot >= slotsPerLine) {
        throw mismatch(
          file,
          `counters.${kind}.${name} is slot ${slot} of a ${slotsPerLine}-slot line`,
        );
      }
    }
  }
  const extra = Object.keys(c).filter((key) => key !== 'counters' && !(key in contractNames));
  if (extra.length > 0) throw mismatch(file, `contract has ${extra.join(', ')}, unknown to lib/`);
  return contract as NativeContract;
}
