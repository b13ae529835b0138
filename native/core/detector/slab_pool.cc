#include "core/detector/slab_pool.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <stdexcept>

#include "core/common/chunk_allocator.h"

namespace heartwatch {

SlabPool::SlabPool(uint32_t record_bytes, uint32_t max_records, uint32_t initial_records)
    : record_shift_(static_cast<uint32_t>(std::countr_zero(record_bytes))), max_records_(max_records) {
  if (record_bytes < 4 || !std::has_single_bit(record_bytes)) {
    throw std::invalid_argument("SlabPool: record size must be a power of two >= 4");
  }
  if (max_records < 2) throw std::invalid_argument("SlabPool: max_records must be >= 2");
  const uint32_t max_chunks = static_cast<uint32_t>((uint64_t{max_records} + kChunkRecords - 1) >> kChunkShift);
  chunks_.assign(max_chunks, nullptr);
  bytes_allocated_ += chunks_.capacity() * sizeof(std::byte*);
  const uint64_t wanted = std::clamp<uint64_t>(uint64_t{initial_records} + 1, 2, max_records);
  grow(static_cast<uint32_t>((wanted + kChunkRecords - 1) >> kChunkShift));
}

SlabPool::~SlabPool() {
  for (void* block : blocks_) ChunkAllocator::release(block);
}

void SlabPool::grow(uint32_t chunks) {
  const uint32_t first = capacity_ >> kChunkShift;
  chunks = std::min<uint32_t>(chunks, static_cast<uint32_t>(chunks_.size()) - first);
  const size_t chunk_bytes = size_t{kChunkRecords} << record_shift_;
  blocks_.reserve(blocks_.size() + 1);
  auto* block = static_cast<std::byte*>(ChunkAllocator::allocate(chunk_bytes * chunks));
  blocks_.push_back(block);
  for (uint32_t c = 0; c < chunks; ++c) chunks_[first + c] = block + c * chunk_bytes;
  bytes_allocated_ += footprint(chunk_bytes * chunks);
  capacity_ = static_cast<uint32_t>(std::min<uint64_t>(uint64_t{first + chunks} << kChunkShift, max_records_));
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
