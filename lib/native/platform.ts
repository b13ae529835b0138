import { availableParallelism } from 'node:os';
import { loadNative } from './binding.js';

/**
 * The CPUs this process may run on, ascending. The addon reads the affinity mask
 * (`sched_getaffinity`), so `taskset` and a container's cpuset count. Without the addon it is
 * 0 to n-1 with n from `os.availableParallelism()`, which counts the same mask but cannot name
 * its CPUs; only the native engine pins threads, so only it needs the names.
 */
export function allowedCpus(): readonly number[] {
  const load = loadNative();
  const cpus = load.ok ? load.binding.allowedCpus() : [];
  return cpus.length > 0 ? cpus : Array.from({ length: availableParallelism() }, (_, i) => i);
}

/** A CPU list as the kernel writes one (`0-3,6`). */
export function formatCpuList(cpus: readonly number[]): string {
  const runs: string[] = [];
  for (let i = 0; i < cpus.length; ) {
    let j = i;
    while (j + 1 < cpus.length && (cpus[j + 1] as number) === (cpus[j] as number) + 1) j++;
    runs.push(j === i ? `${cpus[i]}` : `${cpus[i]}-${cpus[j]}`);
    i = j + 1;
  }
  return runs.join(',');
}

/** Hosts the pure-TS engine can track: V8 holds at most 2^24 entries in one Map. */
export const jsMaxHosts = 2 ** 24;

/** Hosts one native worker (shard) can track, as the core defines it; undefined without the addon. */
export function nativeMaxHostsPerShard(): number | undefined {
  const load = loadNative();
  return load.ok ? load.binding.limits.maxHostsPerShard : undefined;
}
