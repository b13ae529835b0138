#include "core/common/chunk_allocator.h"

#include <dlfcn.h>
#include <sys/mman.h>

#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <new>

namespace heartwatch {
namespace {

constexpr std::size_t kHugePageBytes = std::size_t{2} << 20;

using MemalignFn = void* (*)(std::size_t alignment, std::size_t bytes);
using FreeFn = void (*)(void*);

struct Backend {
  AllocatorBackend kind = AllocatorBackend::kSystem;
  MemalignFn memalign = nullptr;
  FreeFn free = nullptr;
};

// RTLD_LOCAL keeps tcmalloc's malloc/free from interposing on the rest of the process (Node and
// V8 keep the system allocator); the core calls tc_memalign/tc_free explicitly, so every block
// goes back to the allocator that made it.
Backend load_tcmalloc() {
  for (const char* name : {"libtcmalloc_minimal.so.4", "libtcmalloc.so.4"}) {
    void* handle = dlopen(name, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (handle == nullptr) continue;
    auto memalign = reinterpret_cast<MemalignFn>(dlsym(handle, "tc_memalign"));
    auto free_fn = reinterpret_cast<FreeFn>(dlsym(handle, "tc_free"));
    if (memalign != nullptr && free_fn != nullptr) {
      return Backend{AllocatorBackend::kTcmalloc, memalign, free_fn};
    }
    dlclose(handle);
  }
  return Backend{};
}

const Backend& backend_instance() {
  static const Backend instance = [] {
    const char* choice = std::getenv("HEARTWATCH_ALLOCATOR");
    if (choice != nullptr && std::strcmp(choice, "system") == 0) return Backend{};
    return load_tcmalloc();
  }();
  return instance;
}

}  // namespace

void* ChunkAllocator::allocate(std::size_t bytes, std::size_t alignment) {
  if (bytes == 0) bytes = 1;
  if (alignment < alignof(std::max_align_t)) alignment = alignof(std::max_align_t);
  const bool huge = bytes >= kHugePageBytes;
  if (huge) {
    // madvise needs whole, aligned pages; the rounding wastes under 2 MiB of a block this big.
    alignment = kHugePageBytes;
    bytes = (bytes + kHugePageBytes - 1) & ~(kHugePageBytes - 1);
  }
  const Backend& b = backend_instance();
  void* block = nullptr;
  if (b.kind == AllocatorBackend::kTcmalloc) {
    block = b.memalign(alignment, bytes);
  } else if (posix_memalign(&block, alignment, bytes) != 0) {
    block = nullptr;
  }
  if (block == nullptr) throw std::bad_alloc();
  if (huge) madvise(block, bytes, MADV_HUGEPAGE);
  std::memset(block, 0, bytes);
  return block;
}

void ChunkAllocator::release(void* block) noexcept {
  if (block == nullptr) return;
  const Backend& b = backend_instance();
  if (b.kind == AllocatorBackend::kTcmalloc) {
    b.free(block);
  } else {
    std::free(block);
  }
}

AllocatorBackend ChunkAllocator::backend() noexcept { return backend_instance().kind; }

const char* ChunkAllocator::backend_name() noexcept {
  return backend() == AllocatorBackend::kTcmalloc ? "tcmalloc" : "system";
}

}  // namespace heartwatch
