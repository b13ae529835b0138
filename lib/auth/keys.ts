import { createHmac, timingSafeEqual } from 'node:crypto';
import { inspect } from 'node:util';
import { HeartwatchError } from '../errors.js';

/**
 * Heartbeat tags (docs/protocol.md, "Authentication"): the first 16 bytes of
 * HMAC-SHA256(key, header || payload). The limits are the native KeyRing's
 * (native/core/auth/key_ring.h); they are repeated here because the pure-TS engine and the
 * senders must work where the addon does not load.
 */
export const maxAuthKeys = 8;
export const minAuthKeyBytes = 16;
export const maxAuthKeyBytes = 1024;
export const tagBytes = 16;

/**
 * The checked `auth` option. Keys never print: `util.inspect`, `JSON.stringify` and template
 * strings show how many there are, not what they are.
 */
export class AuthKeys {
  readonly #keys: readonly Buffer[];

  constructor(keys: readonly Buffer[]) {
    this.#keys = Object.freeze(keys.map((k) => Buffer.from(k)));
  }

  /** The keys, the signing key first. Copies: mutating them changes nothing here. */
  get keys(): Buffer[] {
    return this.#keys.map((k) => Buffer.from(k));
  }

  get size(): number {
    return this.#keys.length;
  }

  /** The 16-byte tag of `data` under the signing key. */
  sign(data: Uint8Array): Buffer {
    return computeTag(this.#keys[0] as Buffer, data);
  }

  /** True if `tag` is the tag of `data` under any key; every key is tried, each compare constant-time. */
  verify(data: Uint8Array, tag: Uint8Array): boolean {
    let matched = false;
    for (const key of this.#keys) {
      if (timingSafeEqual(computeTag(key, data), tag)) matched = true;
    }
    return matched;
  }

  toString(): string {
    return `[${this.#keys.length} heartwatch auth key(s), redacted]`;
  }

  toJSON(): string {
    return this.toString();
  }

  [inspect.custom](): string {
    return this.toString();
  }
}

/** The first 16 bytes of HMAC-SHA256(key, data), computed by node:crypto. */
export function computeTag(key: Uint8Array, data: Uint8Array): Buffer {
  return createHmac('sha256', key).update(data).digest().subarray(0, tagBytes);
}

/**
 * Checks a key list: 1 to 8 keys, each a Uint8Array of 16 to 1024 bytes. The error names the
 * option and what was wrong, never the key bytes.
 */
export function checkAuthKeys(option: string, value: unknown): AuthKeys {
  const fail = (what: string): HeartwatchError =>
    new HeartwatchError(
      'ERR_HW_INVALID_OPTION',
      `Invalid option "${option}": expected an array of 1 to ${maxAuthKeys} keys, each a Buffer or ` +
        `Uint8Array of ${minAuthKeyBytes} to ${maxAuthKeyBytes} bytes (32 recommended), ${what}`,
    );
  if (!Array.isArray(value)) throw fail(`got ${value === null ? 'null' : typeof value}`);
  if (value.length === 0 || value.length > maxAuthKeys) throw fail(`got ${value.length} keys`);
  const keys = (value as unknown[]).map((key, i) => {
    if (!(key instanceof Uint8Array)) throw fail(`got ${typeof key} at index ${i}`);
    if (key.byteLength < minAuthKeyBytes || key.byteLength > maxAuthKeyBytes) {
      throw fail(`got ${key.byteLength} bytes at index ${i}`);
    }
    return Buffer.from(key);
  });
  return new AuthKeys(keys);
}
