/**
 * The replay check of one authenticated host (docs/protocol.md, "Replay protection"), as the
 * native detector does it: incarnations only go up; within one, a seq is accepted once if it is
 * newer than the highest seen, or one of the 63 before it not yet seen (a 64-bit bitmap, kept
 * as two 32-bit halves). Created only for hosts that authenticate.
 */
export class ReplayWindow {
  #incarnation: number;
  #top: number;
  /** Bit k: seq top-k was accepted; bits 0-31 in #low, 32-63 in #high. */
  #low = 1;
  #high = 0;

  constructor(incarnation: number, seq: number) {
    this.#incarnation = incarnation;
    this.#top = seq;
  }

  /** True (and recorded) if the pair is new; false for a replay. */
  fresh(incarnation: number, seq: number): boolean {
    if (incarnation > this.#incarnation) {
      this.#incarnation = incarnation;
      this.#top = seq;
      this.#low = 1;
      this.#high = 0;
      return true;
    }
    if (incarnation < this.#incarnation) return false;
    const ahead = (seq - this.#top) | 0;
    if (ahead > 0) {
      this.#shift(ahead);
      this.#top = seq;
      this.#low |= 1;
      return true;
    }
    const behind = (this.#top - seq) >>> 0;
    if (behind >= 64) return false;
    const word = behind < 32 ? this.#low : this.#high;
    const bit = 1 << (behind & 31);
    if ((word & bit) !== 0) return false;
    if (behind < 32) this.#low |= bit;
    else this.#high |= bit;
    return true;
  }

  #shift(by: number): void {
    if (by >= 64) {
      this.#low = 0;
      this.#high = 0;
    } else if (by >= 32) {
      this.#high = by === 32 ? this.#low : this.#low << (by - 32);
      this.#low = 0;
    } else {
      this.#high = ((this.#high << by) | (this.#low >>> (32 - by))) >>> 0;
      this.#low = (this.#low << by) >>> 0;
    }
  }
}
