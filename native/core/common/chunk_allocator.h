// Large, long-lived memory blocks for the core: hash-table arrays, rings, counters (the
// record pool reserves its own address range, see slab_pool.h).
//
// The core never allocates per heartbeat; it allocates a few big blocks and reuses them. Those
// blocks come from tcmalloc when libtcmalloc_minimal is present at run time (resolved once with
// dlopen, so a prebuilt addon still loads where it is absent) and from the system allocator
// otherwise. Blocks of 2 MiB and more are advised for transparent huge pages: host tables are
// probed at random, and TLB reach costs more there than any allocator difference.
#pragma once

#include <cstddef>

namespace heartwatch {

enum class AllocatorBackend { kSystem, kTcmalloc };

class ChunkAllocator {
 public:
  // Returns `bytes` of zeroed memory aligned to `alignment` (a power of two); blocks of
  // 2 MiB or more are aligned to 2 MiB.
  // Throws std::bad_alloc when the memory cannot be had.
  // Runs on: any thread.
  static void* allocate(std::size_t bytes, std::size_t alignment = 64);

  // Gives back a block from allocate(). `block` may be null.
  // Runs on: any thread.
  static void release(void* block) noexcept;

  // Bytes allocate() really takes for a block of `bytes`: it rounds blocks of 2 MiB and more up
  // to whole 2 MiB pages.
  // Runs on: any thread.
  static std::size_t footprint(std::size_t bytes) {
    constexpr std::size_t kHuge = std::size_t{2} << 20;
    return bytes >= kHuge ? (bytes + kHuge - 1) / kHuge * kHuge : bytes;
  }

  // Which backend serves allocate(); decided once, on first use.
  // HEARTWATCH_ALLOCATOR=system|tcmalloc overrides the automatic choice (tcmalloc falls back to
  // system when the library cannot be loaded).
  static AllocatorBackend backend() noexcept;
  static const char* backend_name() noexcept;
};

}  // namespace heartwatch
