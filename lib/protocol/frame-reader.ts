import { type AuthKeys, type PartialTag, tagBytes } from '../auth/keys.js';
import { type DecodedHeartbeat, decodeHeartbeatHeader, headerBytes } from './wire-v1.js';

/**
 * Cuts a TCP byte stream into v1 heartbeat frames (docs/protocol.md, "Over TCP"), the pure-TS
 * twin of native/core/protocol/frame_reader.h: a two-state machine (header, body) fed whatever
 * each `'data'` event brought, so a frame may be split at any byte and many may come in one
 * chunk. It keeps only the 28-byte header of the frame in progress, and a payload of at most
 * `keepPayloadBytes` (a host's status); longer payloads are skipped. With `keys`, a signed
 * frame's tag is checked as its bytes pass: the header and payload are hashed under the keys in
 * force when its header completed, and the 16 tag bytes kept, so memory does not depend on the
 * frame's size.
 */
export class FrameReader {
  readonly #header = new Uint8Array(headerBytes);
  readonly #keepPayloadBytes: number;
  readonly #keys: () => AuthKeys | null;
  #filled = 0;
  #bodyLeft = 0;
  #bodyBytes = 0;
  #payloadLength = 0;
  #payload: Uint8Array | undefined;
  #kept = 0;
  #partial: PartialTag | undefined;
  readonly #tag = new Uint8Array(tagBytes);

  /** `keys`: the server's keys now (null: none), read as each signed frame's header completes. */
  constructor(keepPayloadBytes = 0, keys: () => AuthKeys | null = () => null) {
    this.#keepPayloadBytes = keepPayloadBytes;
    this.#keys = keys;
  }

  /** Whether part of a frame has arrived and the rest has not. */
  get midFrame(): boolean {
    return this.#filled !== 0;
  }

  /**
   * Feeds one chunk; calls `frame` for every frame it completes (its `auth` says a tag followed;
   * `authentic` says whether that tag matched a key, undefined when there was no key to check it
   * with). Returns `false` when a header breaks a v1 rule: the stream cannot be re-synchronised
   * and the caller closes the connection (the reader must not be fed again).
   */
  feed(
    chunk: Uint8Array,
    frame: (result: DecodedHeartbeat, payload?: Uint8Array, authentic?: boolean) => void,
  ): boolean {
    let at = 0;
    while (at < chunk.byteLength) {
      if (this.#filled < headerBytes) {
        const take = Math.min(headerBytes - this.#filled, chunk.byteLength - at);
        this.#header.set(chunk.subarray(at, at + take), this.#filled);
        this.#filled += take;
        at += take;
        if (this.#filled < headerBytes) return true;
        if (!this.#startBody()) return false;
      } else {
        const skip = Math.min(this.#bodyLeft, chunk.byteLength - at);
        this.#body(chunk.subarray(at, at + skip));
        this.#bodyLeft -= skip;
        at += skip;
      }
      if (this.#bodyLeft === 0) {
        this.#filled = 0;
        const { result } = decodeHeartbeatHeader(this.#header);
        const authentic = this.#partial?.finish(this.#tag);
        this.#partial = undefined;
        if (result.status === 'ok') frame(result, this.#payload, authentic);
        this.#payload = undefined;
      }
    }
    return true;
  }

  /** The header is complete: sets up the body. False when the header breaks a v1 rule. */
  #startBody(): boolean {
    const { result, messageBytes } = decodeHeartbeatHeader(this.#header);
    if (result.status === 'malformed') return false;
    this.#bodyLeft = messageBytes - headerBytes;
    this.#bodyBytes = this.#bodyLeft;
    const payloadLength = result.status === 'ok' ? result.payloadLength : 0;
    this.#payloadLength = payloadLength;
    this.#payload =
      payloadLength > 0 && payloadLength <= this.#keepPayloadBytes
        ? new Uint8Array(payloadLength)
        : undefined;
    this.#kept = 0;
    const keys = result.status === 'ok' && result.auth ? this.#keys() : null;
    this.#partial = keys?.begin();
    this.#partial?.update(this.#header);
    return true;
  }

  /** The next body bytes: payload (kept if small, hashed if signed), then the tag. */
  #body(bytes: Uint8Array): void {
    const done = this.#bodyBytes - this.#bodyLeft;
    const inPayload = Math.max(0, Math.min(bytes.byteLength, this.#payloadLength - done));
    const payload = this.#payload;
    if (payload !== undefined && this.#kept < payload.byteLength) {
      const take = Math.min(inPayload, payload.byteLength - this.#kept);
      payload.set(bytes.subarray(0, take), this.#kept);
      this.#kept += take;
    }
    if (this.#partial === undefined) return;
    this.#partial.update(bytes.subarray(0, inPayload));
    if (inPayload < bytes.byteLength) {
      this.#tag.set(bytes.subarray(inPayload), done + inPayload - this.#payloadLength);
    }
  }
}
