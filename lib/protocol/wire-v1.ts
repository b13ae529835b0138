import { computeTag, minAuthKeyBytes } from '../auth/keys.js';
import { HeartwatchError } from '../errors.js';

/**
 * Wire protocol v1 (docs/protocol.md): a 28-byte big-endian header, an opaque payload, and with
 * the AUTH flag a 16-byte tag.
 *
 * | offset | size | field       |
 * |--------|------|-------------|
 * | 0      | 2    | magic "HW"  |
 * | 2      | 1    | version = 1 |
 * | 3      | 1    | flags: bit 0 LEAVE, bit 1 AUTH, others 0 |
 * | 4      | 8    | host_id, non-zero |
 * | 12     | 4    | incarnation |
 * | 16     | 4    | seq         |
 * | 20     | 4    | interval_ms (0 = unknown) |
 * | 24     | 2    | payload_len n |
 * | 26     | 2    | reserved = 0 |
 * | 28     | n    | payload     |
 * | 28+n   | 16   | tag (AUTH only) |
 */
export const headerBytes = 28;
export const authTagBytes = 16;
export const protocolVersion = 1;
export const flagLeave = 0x01;
export const flagAuth = 0x02;

const magic0 = 0x48;
const magic1 = 0x57;
const knownFlags = flagLeave | flagAuth;
const maxU32 = 0xffff_ffff;
const maxU64 = (1n << 64n) - 1n;

/** What {@link encodeHeartbeat} puts on the wire. */
export interface HeartbeatFields {
  /** 1 to 2^64-1. */
  hostId: bigint;
  /** u32, picked at random when the sender starts. */
  incarnation: number;
  /** u32, +1 per heartbeat; wrap it with `>>> 0`. */
  seq: number;
  /** u32, the sender's period; 0 = unknown. */
  intervalMs: number;
  /** Opaque status bytes, at most 65 535. */
  payload?: Uint8Array;
  /** Set the LEAVE flag: the host is shutting down. */
  leave?: boolean;
  /**
   * Sign with this key (at least 16 bytes; 32 recommended): sets AUTH and appends the 16-byte
   * tag. A signing sender's incarnation must only go up across restarts (docs/protocol.md).
   */
  key?: Uint8Array | undefined;
}

/** A valid v1 heartbeat, as {@link decodeHeartbeat} reads it. */
export interface DecodedHeartbeat {
  status: 'ok';
  hostId: bigint;
  incarnation: number;
  seq: number;
  intervalMs: number;
  payloadLength: number;
  leave: boolean;
  /** AUTH is set: a 16-byte tag follows the payload, not checked here (see the server's `auth`). */
  auth: boolean;
}

/**
 * `malformed`: not a valid v1 datagram. `tagTruncated`: AUTH is set and all else is valid, but
 * fewer than 16 tag bytes follow the payload (a server with keys counts it `authFailed`, one
 * without, `malformed`).
 */
export type DecodeResult = DecodedHeartbeat | { status: 'malformed' } | { status: 'tagTruncated' };

function checkU32(name: string, value: number): void {
  if (!Number.isInteger(value) || value < 0 || value > maxU32) {
    throw new HeartwatchError(
      'ERR_HW_INVALID_ARGUMENT',
      `Invalid heartbeat field "${name}": expected an integer from 0 to ${maxU32}, got ${String(value)}`,
    );
  }
}

/** Builds one v1 heartbeat datagram. Throws `ERR_HW_INVALID_ARGUMENT` for out-of-range fields. */
export function encodeHeartbeat(fields: HeartbeatFields): Buffer {
  const { hostId, incarnation, seq, intervalMs, payload, leave, key } = fields;
  if (typeof hostId !== 'bigint' || hostId < 1n || hostId > maxU64) {
    throw new HeartwatchError(
      'ERR_HW_INVALID_ARGUMENT',
      `Invalid heartbeat field "hostId": expected a bigint from 1 to 2^64-1, got ${String(hostId)}`,
    );
  }
  checkU32('incarnation', incarnation);
  checkU32('seq', seq);
  checkU32('intervalMs', intervalMs);
  const payloadLength = payload?.byteLength ?? 0;
  if (payloadLength > 0xffff) {
    throw new HeartwatchError(
      'ERR_HW_INVALID_ARGUMENT',
      `Invalid heartbeat field "payload": expected at most 65535 bytes, got ${payloadLength}`,
    );
  }
  if (key !== undefined && (!(key instanceof Uint8Array) || key.byteLength < minAuthKeyBytes)) {
    throw new HeartwatchError(
      'ERR_HW_INVALID_ARGUMENT',
      `Invalid heartbeat field "key": expected a Buffer or Uint8Array of at least ${minAuthKeyBytes} bytes`,
    );
  }
  const signedLength = headerBytes + payloadLength;
  const buf = Buffer.alloc(signedLength + (key === undefined ? 0 : authTagBytes));
  buf[0] = magic0;
  buf[1] = magic1;
  buf[2] = protocolVersion;
  buf[3] = (leave === true ? flagLeave : 0) | (key === undefined ? 0 : flagAuth);
  buf.writeBigUInt64BE(hostId, 4);
  buf.writeUInt32BE(incarnation, 12);
  buf.writeUInt32BE(seq, 16);
  buf.writeUInt32BE(intervalMs, 20);
  buf.writeUInt16BE(payloadLength, 24);
  if (payload !== undefined) buf.set(payload, headerBytes);
  if (key !== undefined) buf.set(computeTag(key, buf.subarray(0, signedLength)), signedLength);
  return buf;
}

const malformed = Object.freeze({ status: 'malformed' } as const);
const tagTruncated = Object.freeze({ status: 'tagTruncated' } as const);

/**
 * Checks a v1 header alone (every rule except the length one) and says how many bytes the whole
 * message takes: 28 + payload_len, + 16 with AUTH. A TCP stream is cut into frames by this
 * length (docs/protocol.md, "Over TCP"); `header` must hold at least 28 bytes.
 */
export function decodeHeartbeatHeader(header: Uint8Array): {
  result: DecodedHeartbeat | typeof malformed;
  messageBytes: number;
} {
  const view = new DataView(header.buffer, header.byteOffset, headerBytes);
  const flags = header[3] as number;
  const auth = (flags & flagAuth) !== 0;
  const payloadLength = view.getUint16(24);
  const messageBytes = headerBytes + payloadLength + (auth ? authTagBytes : 0);
  const hostId = view.getBigUint64(4);
  if (
    header[0] !== magic0 ||
    header[1] !== magic1 ||
    header[2] !== protocolVersion ||
    (flags & ~knownFlags) !== 0 ||
    view.getUint16(26) !== 0 ||
    hostId === 0n
  ) {
    return { result: malformed, messageBytes };
  }
  return {
    result: {
      status: 'ok',
      hostId,
      incarnation: view.getUint32(12),
      seq: view.getUint32(16),
      intervalMs: view.getUint32(20),
      payloadLength,
      leave: (flags & flagLeave) !== 0,
      auth,
    },
    messageBytes,
  };
}

/**
 * Parses one datagram: a valid header ({@link decodeHeartbeatHeader}) whose message length is
 * exactly the datagram's, `28 + payload_len` (`+ 16` with AUTH). The tag is not checked here.
 */
export function decodeHeartbeat(buf: Uint8Array): DecodeResult {
  if (buf.byteLength < headerBytes) return malformed;
  const { result, messageBytes } = decodeHeartbeatHeader(buf);
  if (result.status !== 'ok' || buf.byteLength === messageBytes) return result;
  const short =
    result.auth && buf.byteLength >= messageBytes - authTagBytes && buf.byteLength < messageBytes;
  return short ? tagTruncated : malformed;
}
