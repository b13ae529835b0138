// A spin-wait hint for the CPU, for every architecture the core builds on.
#pragma once

namespace heartwatch {

// Tells the CPU the caller is spinning (x86 PAUSE, arm64 YIELD), which saves power and frees the
// core's sibling hyperthread; on other CPUs a compiler barrier, so the loop still re-reads memory.
// Runs on: any thread.
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#else
  asm volatile("" ::: "memory");
#endif
}

}  // namespace heartwatch
