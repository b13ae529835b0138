import { describe, expect, it } from 'vitest';
import {
  formatAddress,
  hostIdFromName,
  hostIdFromSource,
  ipv6Bytes,
} from '../../lib/protocol/host-id.js';
import { decodeHeartbeat, encodeHeartbeat } from '../../lib/protocol/wire-v1.js';

// The spec table, byte by byte, written out by hand so encoder and decoder are checked against
// the spec rather than against each other.
const specVector = Buffer.from(
  [
    '4857', // magic "HW"
    '01', // version
    '01', // flags: LEAVE
    '0102030405060708', // host_id
    '0a0b0c0d', // incarnation
    'fffffffe', // seq
    '000003e8', // interval_ms = 1000
    '0002', // payload_len
    '0000', // reserved
    'dead', // payload
  ].join(''),
  'hex',
);

describe('encodeHeartbeat', () => {
  it('writes the v1 layout, big-endian', () => {
    const encoded = encodeHeartbeat({
      hostId: 0x0102030405060708n,
      incarnation: 0x0a0b0c0d,
      seq: 0xfffffffe,
      intervalMs: 1000,
      payload: Uint8Array.from([0xde, 0xad]),
      leave: true,
    });
    expect(encoded.toString('hex')).toBe(specVector.toString('hex'));
  });

  it('writes a 28-byte datagram with no flags by default', () => {
    const encoded = encodeHeartbeat({ hostId: 1n, incarnation: 0, seq: 0, intervalMs: 0 });
    expect(encoded).toHaveLength(28);
    expect(encoded[3]).toBe(0);
  });

  it.each([
    ['hostId', { hostId: 0n }],
    ['hostId', { hostId: 1n << 64n }],
    ['incarnation', { incarnation: -1 }],
    ['seq', { seq: 2 ** 32 }],
    ['intervalMs', { intervalMs: 1.5 }],
    ['payload', { payload: new Uint8Array(65_536) }],
  ])('rejects an out-of-range %s', (field, override) => {
    const fields = { hostId: 1n, incarnation: 0, seq: 0, intervalMs: 0, ...override };
    expect(() => encodeHeartbeat(fields)).toThrow(
      expect.objectContaining({
        code: 'ERR_HW_INVALID_ARGUMENT',
        message: expect.stringContaining(field),
      }),
    );
  });
});

describe('decodeHeartbeat', () => {
  it('reads every field of the spec vector', () => {
    expect(decodeHeartbeat(specVector)).toEqual({
      status: 'ok',
      hostId: 0x0102030405060708n,
      incarnation: 0x0a0b0c0d,
      seq: 0xfffffffe,
      intervalMs: 1000,
      payloadLength: 2,
      leave: true,
      auth: false,
    });
  });

  it('reads a datagram inside a larger buffer at an offset', () => {
    const outer = Buffer.concat([Buffer.alloc(5, 0xff), specVector, Buffer.alloc(3, 0xff)]);
    const view = outer.subarray(5, 5 + specVector.length);
    expect(decodeHeartbeat(view)).toMatchObject({ status: 'ok', hostId: 0x0102030405060708n });
  });

  it('round-trips the largest values', () => {
    const fields = {
      hostId: (1n << 64n) - 1n,
      incarnation: 0xffffffff,
      seq: 0xffffffff,
      intervalMs: 0xffffffff,
      payload: new Uint8Array(65_535),
    };
    expect(decodeHeartbeat(encodeHeartbeat(fields))).toEqual({
      status: 'ok',
      hostId: fields.hostId,
      incarnation: fields.incarnation,
      seq: fields.seq,
      intervalMs: fields.intervalMs,
      payloadLength: 65_535,
      leave: false,
      auth: false,
    });
  });

  const patched = (offset: number, hex: string): Buffer => {
    const copy = Buffer.from(specVector);
    Buffer.from(hex, 'hex').copy(copy, offset);
    return copy;
  };

  it.each([
    ['empty', Buffer.alloc(0)],
    ['shorter than the header', specVector.subarray(0, 27)],
    ['payload cut short', specVector.subarray(0, 29)],
    ['a trailing byte', Buffer.concat([specVector, Buffer.from([0])])],
    ['wrong magic', patched(0, '4858')],
    ['version 2', patched(2, '02')],
    ['version 0', patched(2, '00')],
    ['reserved flag bit 2', patched(3, '05')],
    ['reserved flag bit 7', patched(3, '81')],
    ['reserved field set', patched(26, '0001')],
    ['host_id 0', patched(4, '0000000000000000')],
    ['AUTH with a tag and a trailing byte', Buffer.concat([patched(3, '02'), Buffer.alloc(17)])],
  ])('calls %s malformed', (_name, datagram) => {
    expect(decodeHeartbeat(datagram)).toEqual({ status: 'malformed' });
  });

  it.each([
    ['AUTH without its tag', patched(3, '02')],
    ['AUTH with a short tag', Buffer.concat([patched(3, '02'), Buffer.alloc(15)])],
  ])('calls %s tagTruncated', (_name, datagram) => {
    expect(decodeHeartbeat(datagram)).toEqual({ status: 'tagTruncated' });
  });

  it('decodes a well-formed AUTH datagram, leaving the tag to the server', () => {
    const withTag = Buffer.concat([patched(3, '03'), Buffer.alloc(16, 0x5a)]);
    expect(decodeHeartbeat(withTag)).toMatchObject({ status: 'ok', leave: true, auth: true });
  });

  it('signs the spec example exactly as docs/protocol.md shows', () => {
    const datagram = encodeHeartbeat({
      hostId: 0x1234n,
      incarnation: 0xdb018fed,
      seq: 41,
      intervalMs: 50,
      payload: Buffer.from('heartwa'),
      key: Buffer.from(Array.from({ length: 32 }, (_, i) => i)),
    });
    expect(datagram.toString('hex')).toBe(
      '485701020000000000001234db018fed00000029000000320007000068656172747761' +
        '6aec7edeeff664c3d3afe9ec54ac4125',
    );
  });

  it('calls an AUTH datagram with host_id 0 malformed', () => {
    const bad = Buffer.concat([patched(3, '02'), Buffer.alloc(16)]);
    bad.fill(0, 4, 12);
    expect(decodeHeartbeat(bad)).toEqual({ status: 'malformed' });
  });

  it('never throws on random bytes, and accepts only exact lengths', () => {
    let seed = 12345;
    const random = (): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed >>> 16;
    };
    for (let i = 0; i < 2000; i++) {
      const datagram = Buffer.alloc(random() % 64);
      for (let j = 0; j < datagram.length; j++) datagram[j] = random() & 0xff;
      // Give some of them a valid prefix so the later checks are reached too.
      if (i % 2 === 0 && datagram.length >= 4) specVector.copy(datagram, 0, 0, 4);
      const result = decodeHeartbeat(datagram);
      if (result.status === 'ok') {
        expect(datagram.length).toBe(28 + result.payloadLength);
      }
    }
  });
});

describe('hostIdFromName', () => {
  it('is the first 8 bytes of SHA-256 of the UTF-8 name, big-endian', () => {
    // Reference values from `printf %s NAME | sha256sum | cut -c1-16`.
    expect(hostIdFromName('web-01')).toBe(0x0b9d9f06cc8cf447n);
    expect(hostIdFromName('')).toBe(0xe3b0c44298fc1c14n);
    expect(hostIdFromName('héllo')).toBe(0x3c48591d8d098a45n);
  });
});

describe('hostIdFromSource', () => {
  it('packs IPv4 into the id: the address, and the port below it in address identity', () => {
    expect(hostIdFromSource('127.0.0.1', 9, 'ip')).toBe(0x7f000001n);
    expect(hostIdFromSource('10.1.2.3', 7700, 'address')).toBe((0x0a010203n << 16n) | 7700n);
    expect(hostIdFromSource('::ffff:10.1.2.3', 7700, 'address')).toBe(
      hostIdFromSource('10.1.2.3', 7700, 'address'),
    );
  });

  it('hashes IPv6 bytes (and port) with SHA-256 and sets bit 63', () => {
    // The same reference values are pinned for identity_key() in test/native/heartbeat_parser_test.cc.
    expect(hostIdFromSource('::1', 8080, 'ip')).toBe(0xc5cec29cd9a24e4bn);
    expect(hostIdFromSource('::1', 8080, 'address')).toBe(0x9b0e1ac65ce3eb11n);
    expect(hostIdFromSource('0:0:0:0:0:0:0:1', 8080, 'ip')).toBe(hostIdFromSource('::1', 1, 'ip'));
  });

  it('parses IPv6 forms into 16 bytes', () => {
    expect(ipv6Bytes('::')?.toString('hex')).toBe('0'.repeat(32));
    expect(ipv6Bytes('fe80::1%eth0')?.toString('hex')).toBe(`fe80${'0'.repeat(27)}1`);
    expect(ipv6Bytes('2001:db8::ff00:42:8329')?.toString('hex')).toBe(
      '20010db8000000000000ff0000428329',
    );
    expect(ipv6Bytes('::ffff:1.2.3.4')?.toString('hex')).toBe(`${'0'.repeat(20)}ffff01020304`);
    expect(ipv6Bytes('1:2:3:4:5:6:7:8')?.toString('hex')).toBe('00010002000300040005000600070008');
    expect(ipv6Bytes('1.2.3.4')).toBeNull();
  });
});

describe('formatAddress', () => {
  it('writes ip:port, IPv6 in brackets, IPv4-mapped as IPv4', () => {
    expect(formatAddress('127.0.0.1', 80)).toBe('127.0.0.1:80');
    expect(formatAddress('::1', 80)).toBe('[::1]:80');
    expect(formatAddress('::ffff:127.0.0.1', 80)).toBe('127.0.0.1:80');
    expect(formatAddress('fe80::1%eth0', 80)).toBe('[fe80::1%eth0]:80');
  });
});
