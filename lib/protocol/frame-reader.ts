import { type DecodedHeartbeat, decodeHeartbeatHeader, headerBytes } from './wire-v1.js';

/**
 * Cuts a TCP byte stream into v1 heartbeat frames (docs/protocol.md, "Over TCP"), the pure-TS
 * twin of native/core/protocol/frame_reader.h: a two-state machine (header, body) fed whatever
 * each `'data'` event brought, so a frame may be split at any byte and many may come in one
 * chunk. It keeps only the 28-byte header of the frame in progress, and a payload of at most
 * `keepPayloadBytes` (a host's status); longer payloads and tags are skipped.
 */
export class FrameReader {
  readonly #header = new Uint8Array(headerBytes);
  readonly #keepPayloadBytes: number;
  #filled = 0;
  #bodyLeft = 0;
  #payload: Uint8Array | undefined;
  #kept = 0;

  constructor(keepPayloadBytes = 0) {
    this.#keepPayloadBytes = keepPayloadBytes;
  }

  /** Whether part of a frame has arrived and the rest has not. */
  get midFrame(): boolean {
    return this.#filled !== 0;
  }

  /**
   * Feeds one chunk; calls `frame` for every frame it completes (its `auth` says a tag followed).
   * Returns `false` when a header breaks a v1 rule: the stream cannot be re-synchronised and
   * the caller closes the connection (the reader must not be fed again).
   */
  feed(
    chunk: Uint8Array,
    frame: (result: DecodedHeartbeat, payload?: Uint8Array) => void,
  ): boolean {
    let at = 0;
    while (at < chunk.byteLength) {
      if (this.#filled < headerBytes) {
        const take = Math.min(headerBytes - this.#filled, chunk.byteLength - at);
        this.#header.set(chunk.subarray(at, at + take), this.#filled);
        this.#filled += take;
        at += take;
        if (this.#filled < headerBytes) return true;
        const { result, messageBytes } = decodeHeartbeatHeader(this.#header);
        if (result.status === 'malformed') return false;
        this.#bodyLeft = messageBytes - headerBytes;
        const payloadLength = result.status === 'ok' ? result.payloadLength : 0;
        this.#payload =
          payloadLength > 0 && payloadLength <= this.#keepPayloadBytes
            ? new Uint8Array(payloadLength)
            : undefined;
        this.#kept = 0;
      } else {
        const skip = Math.min(this.#bodyLeft, chunk.byteLength - at);
        const payload = this.#payload;
        if (payload !== undefined && this.#kept < payload.byteLength) {
          const take = Math.min(skip, payload.byteLength - this.#kept);
          payload.set(chunk.subarray(at, at + take), this.#kept);
          this.#kept += take;
        }
        this.#bodyLeft -= skip;
        at += skip;
      }
      if (this.#bodyLeft === 0) {
        this.#filled = 0;
        const { result } = decodeHeartbeatHeader(this.#header);
        if (result.status === 'ok') frame(result, this.#payload);
        this.#payload = undefined;
      }
    }
    return true;
  }
}
