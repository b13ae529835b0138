import { createHash } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';

const bit63 = 1n << 63n;

function first8Bytes(digest: Buffer): bigint {
  return digest.readBigUInt64BE(0);
}

/**
 * The host id for a name: the first 8 bytes of SHA-256 over the name's UTF-8 bytes, read as a
 * big-endian u64; 0 (not a valid id) becomes 1. Any language can compute it, e.g.
 * `printf %s web-01 | sha256sum | cut -c1-16` gives the id in hex. With a million names the
 * chance that any two share an id is about 3 in 10^8, so names need no central registry.
 */
export function hostIdFromName(name: string): bigint {
  const id = first8Bytes(createHash('sha256').update(name, 'utf8').digest());
  return id === 0n ? 1n : id;
}

/** The 4 bytes of an IPv4 address, or of an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`); else null. */
export function ipv4Of(ip: string): number | null {
  let text = ip;
  if (!isIPv4(text)) {
    const lower = text.toLowerCase();
    if (!lower.startsWith('::ffff:')) return null;
    text = lower.slice(7);
    if (!isIPv4(text)) return null;
  }
  const parts = text.split('.');
  let value = 0;
  for (const part of parts) value = value * 256 + Number(part);
  return value;
}

/** The 16 bytes of an IPv6 address (zone id ignored), or null when `ip` is not IPv6. */
export function ipv6Bytes(ip: string): Buffer | null {
  const text = ip.split('%', 1)[0] as string;
  if (!isIPv6(text)) return null;
  const out = Buffer.alloc(16);
  const halves = text.split('::');
  const groupsOf = (part: string | undefined): number[] => {
    if (part === undefined || part === '') return [];
    const groups: number[] = [];
    for (const piece of part.split(':')) {
      const v4 = ipv4Of(piece);
      if (v4 !== null) groups.push(Math.floor(v4 / 0x10000), v4 % 0x10000);
      else groups.push(Number.parseInt(piece, 16));
    }
    return groups;
  };
  const head = groupsOf(halves[0]);
  const tail = groupsOf(halves[1]);
  head.forEach((g, i) => {
    out.writeUInt16BE(g, i * 2);
  });
  tail.forEach((g, i) => {
    out.writeUInt16BE(g, 16 - (tail.length - i) * 2);
  });
  return out;
}

/**
 * The host id in `address` and `ip` identity, where the source is the host. Both engines use
 * this rule, so ids match whichever engine runs:
 *
 * - IPv4 (also IPv4-mapped IPv6): `ip` identity: the address as a u32 (`127.0.0.1` -> 2130706433);
 *   `address` identity: `u32 * 65536 + port`. Below 2^48, and reversible.
 * - IPv6: a 63-bit SplitMix64 chain over the two address halves and the port (0 in `ip`
 *   identity), with bit 63 set so the ids never meet IPv4 ones; the scope id is ignored. The
 *   native receiver computes exactly this (`identity_key()`, docs/protocol.md).
 */
export function hostIdFromSource(ip: string, port: number, identity: 'address' | 'ip'): bigint {
  const v4 = ipv4Of(ip);
  if (v4 !== null) return identity === 'ip' ? BigInt(v4) : BigInt(v4) * 65536n + BigInt(port);
  const bytes = ipv6Bytes(ip);
  if (bytes === null) throw new TypeError(`Not an IP address: ${ip}`);
  const withPort = identity === 'address' ? BigInt(port) : 0n;
  let h = mix64(bytes.readBigUInt64BE(0) ^ 0x9e3779b97f4a7c15n);
  h = mix64(h ^ bytes.readBigUInt64BE(8));
  h = mix64(h ^ (withPort << 32n));
  return h | bit63;
}

const mask64 = (1n << 64n) - 1n;

/** The SplitMix64 finalizer, a bijection on 64 bits (as in native/core/protocol). */
function mix64(value: bigint): bigint {
  let x = value & mask64;
  x ^= x >> 30n;
  x = (x * 0xbf58476d1ce4e5b9n) & mask64;
  x ^= x >> 27n;
  x = (x * 0x94d049bb133111ebn) & mask64;
  x ^= x >> 31n;
  return x;
}

/** `ip:port`, IPv6 in brackets; IPv4-mapped IPv6 shown as plain IPv4. */
export function formatAddress(ip: string, port: number): string {
  const lower = ip.toLowerCase();
  if (lower.startsWith('::ffff:') && isIPv4(lower.slice(7))) return `${lower.slice(7)}:${port}`;
  return isIPv6(ip) || ip.includes('%') ? `[${ip}]:${port}` : `${ip}:${port}`;
}
