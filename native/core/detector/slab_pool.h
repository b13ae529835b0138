// Fixed-size records addressed by stable 32-bit indices in one reserved range of address space.
//
// Indices, not pointers, link records together (4 bytes instead of 8). The pool reserves
// address space for all max_records records up front (PROT_NONE, no memory behind it) and
// commits it for reading and writing kChunkRecords records at a time as it grows, so a record
// is at base + index * record_bytes: one add and a shift, no chunk table to load (that lookup
// was about 40 instructions per heartbeat at 10K hosts, bench/README.md). Records never move and
// growing never copies. A released record goes on an intrusive free list (its first 4 bytes
// hold the next free index).
#pragma once

#include <cassert>
#include <cstddef>
#include <cstdint>

namespace heartwatch {

class SlabPool {
 public:
  // Records committed at once: growth past the initial block commits kGrowChunks of these, with
  // 32-byte records 2 MiB, one huge page (the range is advised for transparent huge pages).
  static constexpr uint32_t kChunkShift = 14;
  static constexpr uint32_t kChunkRecords = 1u << kChunkShift;
  static constexpr uint32_t kGrowChunks = 4;

  // record_bytes: a power of two >= 4. Index 0 is reserved (never handed out), so at most
  // max_records - 1 records are live. initial_records are committed up front.
  // Throws std::bad_alloc when the address space or the first block cannot be had.
  // Runs on: worker thread.
  SlabPool(uint32_t record_bytes, uint32_t max_records, uint32_t initial_records);
  ~SlabPool();
  SlabPool(const SlabPool&) = delete;
  SlabPool& operator=(const SlabPool&) = delete;

  // A zeroed record, or 0 when max_records are live. Throws std::bad_alloc if more memory
  // cannot be committed. O(1).
  // Runs on: worker thread.
  uint32_t allocate();

  // Returns a record from allocate() to the free list. O(1).
  // Runs on: worker thread.
  void release(uint32_t index);

  void* at(uint32_t index) const { return base_ + (size_t{index} << record_shift_); }
  // T must be the pool's record type (sizeof(T) == record_bytes). The shift is then a
  // constant, where at() reloads record_shift_ after every store through a uint32_t field
  // (such a store may alias it): on the detector's hot paths that is after most stores.
  template <class T>
  T& get(uint32_t index) const {
    static_assert(sizeof(T) >= 4 && (sizeof(T) & (sizeof(T) - 1)) == 0, "records are a power of two >= 4");
    assert(sizeof(T) == size_t{1} << record_shift_);
    return *reinterpret_cast<T*>(base_ + size_t{index} * sizeof(T));
  }

  uint32_t live() const { return live_; }
  // One past the highest index ever handed out: iteration bound for callers that scan.
  uint32_t end() const { return next_unused_; }
  uint32_t capacity() const { return capacity_; }
  // The committed bytes: what the pool can touch, an upper bound on what it adds to RSS.
  size_t bytes_allocated() const { return committed_bytes_; }

 private:
  void grow(uint32_t chunks);

  std::byte* base_ = nullptr;  // the reserved range, 2 MiB aligned when it spans huge pages
  void* mapping_ = nullptr;    // what mmap returned (base_ lies within it)
  size_t mapping_bytes_ = 0;
  size_t committed_bytes_ = 0;
  uint32_t record_shift_;
  uint32_t max_records_;
  uint32_t capacity_ = 0;     // records committed
  uint32_t next_unused_ = 1;  // index 0 is reserved
  uint32_t free_head_ = 0;
  uint32_t live_ = 0;
};

}  // namespace heartwatch
