import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { CompiledInfo } from './binding.js';
import { loadNative } from './binding.js';

/** What `nativeInfo()` reports. */
export interface NativeInfo extends CompiledInfo {
  /** `true`: the addon loaded; the other fields are its own answers. */
  loaded: true;
  /** `prebuild` when a binary from `prebuilds/` was loaded, `source-build` for `build/Release`. */
  source: 'prebuild' | 'source-build';
  /** Absolute path of the `.node` file that was loaded. */
  file: string;
  /** The JS package's version; equal to `version` unless the build is stale. */
  packageVersion: string;
}

/** Why the addon is unavailable, when it is. */
export interface NativeUnavailable {
  loaded: false;
  /** The loader's message and the platform tag it looked for. */
  reason: string;
  packageVersion: string;
}

const packageVersion = (
  JSON.parse(readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as {
    version: string;
  }
).version;

/**
 * Reports the native addon: version, allocator backing native memory (`tcmalloc` when
 * libtcmalloc_minimal is installed, else `system`), build flags, and whether a prebuilt binary
 * or a source build was loaded. Never throws.
 */
export function nativeInfo(): NativeInfo | NativeUnavailable {
  const load = loadNative();
  if (!load.ok) return { loaded: false, reason: load.error.message, packageVersion };
  return {
    ...load.binding.nativeInfo(),
    loaded: true,
    source: load.source,
    file: load.file,
    packageVersion,
  };
}
