// Fixed-size records addressed by stable 32-bit indices, carved from large zeroed chunks.
//
// Indices, not pointers, link records together (4 bytes instead of 8, and stable across
// growth). Chunks are never moved or returned before the pool dies, so growing the pool never
// stalls: it costs one ChunkAllocator call per kChunkRecords records. A released record goes on
// an intrusive free list (its first 4 bytes hold the next free index).
#pragma once

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace heartwatch {

class SlabPool {
 public:
  static constexpr uint32_t kChunkShift = 14;
  static constexpr uint32_t kChunkRecords = 1u << kChunkShift;
  // Growth past the initial block adds this many chunks at once: with 32-byte records that is
  // 2 MiB, the size from which ChunkAllocator advises huge pages.
  static constexpr uint32_t kGrowChunks = 4;

  // record_bytes: a power of two >= 4. Index 0 is reserved (never handed out), so at most
  // max_records - 1 records are live. initial_records are backed by one block up front.
  // Runs on: worker thread.
  SlabPool(uint32_t record_bytes, uint32_t max_records, uint32_t initial_records);
  ~SlabPool();
  SlabPool(const SlabPool&) = delete;
  SlabPool& operator=(const SlabPool&) = delete;

  // A zeroed record, or 0 when max_records are live. Throws std::bad_alloc if a new chunk
  // cannot be had. O(1).
  // Runs on: worker thread.
  uint32_t allocate();

  // Returns a record from allocate() to the free list. O(1).
  // Runs on: worker thread.
  void release(uint32_t index);

  void* at(uint32_t index) const {
    return chunks_[index >> kChunkShift] + (static_cast<size_t>(index & (kChunkRecords - 1)) << record_shift_);
  }
  // T must be the pool's record type (sizeof(T) == record_bytes). The shift is then a
  // constant, where at() reloads record_shift_ after every store through a uint32_t field
  // (such a store may alias it): on the detector's hot paths that is after most stores.
  template <class T>
  T& get(uint32_t index) const {
    static_assert(sizeof(T) >= 4 && (sizeof(T) & (sizeof(T) - 1)) == 0, "records are a power of two >= 4");
    assert(sizeof(T) == size_t{1} << record_shift_);
    return *reinterpret_cast<T*>(chunks_[index >> kChunkShift] + size_t{index & (kChunkRecords - 1)} * sizeof(T));
  }

  // Bytes ChunkAllocator really takes for a block of `bytes`: it rounds blocks of 2 MiB and
  // more up to whole 2 MiB pages.
  static size_t footprint(size_t bytes) {
    constexpr size_t kHuge = size_t{2} << 20;
    return bytes >= kHuge ? (bytes + kHuge - 1) / kHuge * kHuge : bytes;
  }

  uint32_t live() const { return live_; }
  // One past the highest index ever handed out: iteration bound for callers that scan.
  uint32_t end() const { return next_unused_; }
  uint32_t capacity() const { return capacity_; }
  size_t bytes_allocated() const { return bytes_allocated_; }

 private:
  void grow(uint32_t chunks);

  uint32_t record_shift_;
  uint32_t max_records_;
  uint32_t capacity_ = 0;     // records backed by chunks
  uint32_t next_unused_ = 1;  // index 0 is reserved
  uint32_t free_head_ = 0;
  uint32_t live_ = 0;
  size_t bytes_allocated_ = 0;
  std::vector<std::byte*> chunks_;  // sized once for max_records, never reallocated
  std::vector<void*> blocks_;
};

}  // namespace heartwatch
