#include "core/detector/slab_pool.h"

#include <sys/mman.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <new>
#include <stdexcept>

namespace heartwatch {
namespace {

constexpr size_t kHugePageBytes = size_t{2} << 20;

}  // namespace

SlabPool::SlabPool(uint32_t record_bytes, uint32_t max_records, uint32_t initial_records)
    : record_shift_(static_cast<uint32_t>(std::countr_zero(record_bytes))), max_records_(max_records) {
  if (record_bytes < 4 || !std::has_single_bit(record_bytes)) {
    throw std::invalid_argument("SlabPool: record size must be a power of two >= 4");
  }
  if (max_records < 2) throw std::invalid_argument("SlabPool: max_records must be >= 2");
  // Whole chunks (a multiple of every page size), and room to align the range to a huge page:
  // address space only, nothing is committed or counted until grow().
  const uint64_t chunks = (uint64_t{max_records} + kChunkRecords - 1) >> kChunkShift;
  const size_t reserved = static_cast<size_t>(chunks << (kChunkShift + record_shift_));
  const bool huge = reserved >= kHugePageBytes;
  mapping_bytes_ = reserved + (huge ? kHugePageBytes : 0);
  mapping_ = mmap(nullptr, mapping_bytes_, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (mapping_ == MAP_FAILED) {
    mapping_ = nullptr;
    throw std::bad_alloc();
  }
  const auto start = reinterpret_cast<uintptr_t>(mapping_);
  base_ = static_cast<std::byte*>(mapping_) + (huge ? (-start & (kHugePageBytes - 1)) : 0);
  // The table of records is touched at random: TLB reach matters more than the page rounding.
  if (huge) madvise(base_, reserved, MADV_HUGEPAGE);
  const uint64_t wanted = std::clamp<uint64_t>(uint64_t{initial_records} + 1, 2, max_records);
  try {
    grow(static_cast<uint32_t>((wanted + kChunkRecords - 1) >> kChunkShift));
  } catch (...) {
    munmap(mapping_, mapping_bytes_);
    throw;
  }
}

SlabPool::~SlabPool() { munmap(mapping_, mapping_bytes_); }

// Commits the next `chunks` chunks (fewer at the end of the range). Fresh anonymous pages read
// as zero, so nothing is cleared here; allocate() clears each record it hands out.
void SlabPool::grow(uint32_t chunks) {
  const uint32_t first = capacity_ >> kChunkShift;
  const uint32_t last = std::min<uint32_t>(first + chunks, (max_records_ + kChunkRecords - 1) >> kChunkShift);
  const size_t chunk_bytes = size_t{kChunkRecords} << record_shift_;
  const size_t bytes = (last - first) * chunk_bytes;
  if (mprotect(base_ + committed_bytes_, bytes, PROT_READ | PROT_WRITE) != 0) throw std::bad_alloc();
  committed_bytes_ += bytes;
  capacity_ = static_cast<uint32_t>(std::min<uint64_t>(uint64_t{last} << kChunkShift, max_records_));
}

uint32_t SlabPool::allocate() {
  uint32_t index;
  if (free_head_ != 0) {
    index = free_head_;
    std::memcpy(&free_head_, at(index), sizeof free_head_);
  } else {
    if (next_unused_ >= max_records_) return 0;
    if (next_unused_ == capacity_) grow(kGrowChunks);
    index = next_unused_++;
  }
  std::memset(at(index), 0, size_t{1} << record_shift_);
  ++live_;
  return index;
}

void SlabPool::release(uint32_t index) {
  std::memcpy(at(index), &free_head_, sizeof free_head_);
  free_head_ = index;
  --live_;
}

}  // namespace heartwatch
