import path from 'node:path';
import nodeGypBuild from 'node-gyp-build';
import { HeartwatchError } from '../errors.js';

/** What the compiled addon says about itself. */
export interface CompiledInfo {
  version: string;
  allocator: 'tcmalloc' | 'system';
  buildFlags: {
    compiler: string;
    cplusplus: number;
    optimized: boolean;
    assertions: boolean;
    sanitizers: string[];
    napiVersion: number;
  };
}

/** The raw native module. Only lib/ talks to it; users see the typed classes. */
export interface NativeBinding {
  nativeInfo(): CompiledInfo;
  /** The CPUs this process may run on (its affinity mask), ascending. */
  allowedCpus(): number[];
  /** The native engine's limits, defined in native/core. */
  readonly limits: { readonly maxHostsPerShard: number };
}

/** The result of loading the addon: the binding and where it came from, or why it failed. */
export type NativeLoad =
  | { ok: true; binding: NativeBinding; file: string; source: 'prebuild' | 'source-build' }
  | { ok: false; error: HeartwatchError };

/** Package root: dist/native/ -> package root (and lib/native/ when run from sources). */
const packageRoot = path.join(__dirname, '..', '..');

/** The platform tag node-gyp-build looks for, as `prebuilds/<platform>-<arch>/...glibc.node`. */
export function platformTag(): string {
  const libc = process.report?.getReport
    ? (process.report.getReport() as { header?: { glibcVersionRuntime?: string } }).header
        ?.glibcVersionRuntime
      ? 'glibc'
      : 'musl'
    : 'unknown';
  return `${process.platform}-${process.arch} (napi, ${libc}, node abi ${process.versions.modules})`;
}

/**
 * Loads the addon from a package directory. Never throws: a failure is returned with the loader's
 * own message and the platform tag it looked for, so importing heartwatch never crashes.
 * `PREBUILDS_ONLY=1` (read by node-gyp-build) refuses a source build, to prove which one loads.
 */
export function loadNativeFrom(dir: string): NativeLoad {
  try {
    const file = nodeGypBuild.path(dir);
    const binding = require(file) as NativeBinding;
    const source = file.includes(`${path.sep}prebuilds${path.sep}`) ? 'prebuild' : 'source-build';
    return { ok: true, binding, file, source };
  } catch (cause) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    return {
      ok: false,
      error: new HeartwatchError(
        'ERR_HW_NATIVE_UNAVAILABLE',
        `heartwatch: the native addon could not be loaded for ${platformTag()} from ${dir}: ${reason}`,
        { cause },
      ),
    };
  }
}

let cached: NativeLoad | undefined;

/** Loads this package's addon once and remembers the outcome. */
export function loadNative(): NativeLoad {
  cached ??= loadNativeFrom(packageRoot);
  return cached;
}
