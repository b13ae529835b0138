import { isIPv4, isIPv6 } from 'node:net';
import { HeartwatchError } from '../errors.js';

/** Most prefixes in `allow` (kMaxAllowPrefixes in native/core/auth/source_allow_list.h). */
export const maxAllowPrefixes = 256;

/** One checked `allow` entry; the native engine takes it as is. */
export interface AddressPrefix {
  /** As written, e.g. `'10.0.0.0/8'`. */
  readonly text: string;
  readonly family: 4 | 6;
  readonly bits: number;
  /** Network-order address: 4 bytes for IPv4, 16 for IPv6. */
  readonly address: Buffer;
}

function ipv4Bytes(text: string): Buffer {
  return Buffer.from(text.split('.').map(Number));
}

/** 16 bytes of an IPv6 literal (node:net has validated it), a dotted IPv4 tail included. */
function ipv6Bytes(text: string): Buffer {
  const literal = text.replace(/(\d+)\.(\d+)\.(\d+)\.(\d+)$/, (_, a, b, c, d) =>
    [(Number(a) << 8) | Number(b), (Number(c) << 8) | Number(d)]
      .map((w) => w.toString(16))
      .join(':'),
  );
  const [head = '', rest] = literal.split('::');
  const parse = (part: string): number[] =>
    part === '' ? [] : part.split(':').map((w) => Number.parseInt(w, 16));
  const front = parse(head);
  const back = rest === undefined ? [] : parse(rest);
  const words = [...front, ...new Array<number>(8 - front.length - back.length).fill(0), ...back];
  const out = Buffer.alloc(16);
  words.forEach((w, i) => {
    out.writeUInt16BE(w, i * 2);
  });
  return out;
}

const mappedPrefix = Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);

/** Parses one `'addr/bits'` (or a bare address: all its bits). An IPv4-mapped IPv6 prefix of at least /96 becomes its IPv4 form, since mapped sources are matched as IPv4. */
function parsePrefix(entry: unknown, index: number): AddressPrefix {
  const fail = (): HeartwatchError =>
    new HeartwatchError(
      'ERR_HW_INVALID_OPTION',
      `Invalid option "allow[${index}]": expected an address prefix such as "10.0.0.0/8", "fd00::/8" or "192.0.2.7", got ${JSON.stringify(entry)}`,
    );
  if (typeof entry !== 'string') throw fail();
  const slash = entry.indexOf('/');
  const ip = slash < 0 ? entry : entry.slice(0, slash);
  const lengthText = slash < 0 ? undefined : entry.slice(slash + 1);
  const family = isIPv4(ip) ? 4 : isIPv6(ip) && !ip.includes('%') ? 6 : 0;
  if (family === 0) throw fail();
  const maxBits = family === 4 ? 32 : 128;
  const bits = lengthText === undefined ? maxBits : Number(lengthText);
  if (
    lengthText === '' ||
    !Number.isInteger(bits) ||
    bits < 0 ||
    bits > maxBits ||
    !/^\d*$/.test(lengthText ?? '')
  ) {
    throw fail();
  }
  const address = family === 4 ? ipv4Bytes(ip) : ipv6Bytes(ip);
  if (family === 6 && bits >= 96 && address.subarray(0, 12).equals(mappedPrefix)) {
    return Object.freeze({
      text: entry,
      family: 4,
      bits: bits - 96,
      address: address.subarray(12),
    });
  }
  return Object.freeze({ text: entry, family, bits, address });
}

/** Checks the `allow` option: an array of at most 256 prefixes. */
export function checkAllowList(value: unknown): readonly AddressPrefix[] {
  if (!Array.isArray(value) || value.length > maxAllowPrefixes) {
    throw new HeartwatchError(
      'ERR_HW_INVALID_OPTION',
      `Invalid option "allow": expected an array of at most ${maxAllowPrefixes} address prefixes such as ["10.0.0.0/8", "fd00::/8"], got ${Array.isArray(value) ? `${value.length} entries` : JSON.stringify(value)}`,
    );
  }
  return Object.freeze((value as unknown[]).map(parsePrefix));
}

function matches(prefix: AddressPrefix, address: Buffer): boolean {
  const whole = prefix.bits >> 3;
  if (!address.subarray(0, whole).equals(prefix.address.subarray(0, whole))) return false;
  const rest = prefix.bits & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return ((address[whole] as number) & mask) === ((prefix.address[whole] as number) & mask);
}

/**
 * True if the source IP (as node:dgram reports it) is in one of the prefixes; an empty list
 * allows everything. IPv4-mapped IPv6 sources are matched as their IPv4 address, as natively.
 */
export function allowsSource(prefixes: readonly AddressPrefix[], ip: string): boolean {
  if (prefixes.length === 0) return true;
  let family: 4 | 6 = isIPv4(ip) ? 4 : 6;
  let address = family === 4 ? ipv4Bytes(ip) : ipv6Bytes(ip.split('%')[0] as string);
  if (family === 6 && address.subarray(0, 12).equals(mappedPrefix)) {
    family = 4;
    address = address.subarray(12);
  }
  return prefixes.some((p) => p.family === family && matches(p, address));
}
