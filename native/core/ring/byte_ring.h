// A bounded single-producer single-consumer ring of variable-length byte runs: the bytes that
// ride beside fixed-size records in an SpscRing (heartbeat statuses from a receiver to a worker;
// event statuses from a worker to JS).
//
// The producer reserves a contiguous run (skipping to the start when the run would wrap), writes
// it, and then publishes a record that names the run by its end position (low 32 bits). The
// record ring's release store orders the bytes before the record, so this ring publishes
// nothing itself: only the consumer's head crosses threads. The consumer reads a run by the
// record's end and size, and releases everything up to an end once it no longer needs it.
// Runs that the producer reserved but never published (their record did not fit) are taken back
// with rewind(). Positions are 64-bit and never wrap; records carry 32 bits, enough while fewer
// than 2^31 bytes are outstanding (capacity is below that).
//
// Runs on: the producer methods on the producer thread, the consumer methods on the consumer
// thread; after the producer thread is joined, the consumer's thread may take its role.
#pragma once

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <stdexcept>

#include "core/common/chunk_allocator.h"

namespace heartwatch {

class ByteRing {
 public:
  static constexpr size_t kMaxCapacity = size_t{1} << 30;

  // Capacity is `min_capacity` rounded up to a power of two, at most kMaxCapacity.
  explicit ByteRing(size_t min_capacity) {
    if (min_capacity == 0 || min_capacity > kMaxCapacity) {
      throw std::invalid_argument("ByteRing capacity must be between 1 byte and 1 GiB");
    }
    capacity_ = std::bit_ceil(min_capacity);
    bytes_ = static_cast<uint8_t*>(ChunkAllocator::allocate(capacity_, 64));
  }
  ~ByteRing() { ChunkAllocator::release(bytes_); }
  ByteRing(const ByteRing&) = delete;
  ByteRing& operator=(const ByteRing&) = delete;

  // A contiguous run of `size` bytes, or nullptr when the ring has no room. After it, end() is
  // the position just past the run.
  // Runs on: producer thread.
  uint8_t* reserve(size_t size) noexcept {
    uint64_t position = tail_;
    const size_t offset = position & (capacity_ - 1);
    if (offset + size > capacity_) position += capacity_ - offset;
    if (position + size - cached_head_ > capacity_) {
      cached_head_ = head_.load(std::memory_order_acquire);
      if (position + size - cached_head_ > capacity_) return nullptr;
    }
    tail_ = position + size;
    return bytes_ + (position & (capacity_ - 1));
  }
  // Runs on: producer thread.
  uint64_t end() const noexcept { return tail_; }
  // Takes back the runs reserved after `position` (an earlier end() or a run's start).
  // Runs on: producer thread.
  void rewind(uint64_t position) noexcept { tail_ = position; }
  // The 64-bit position whose low 32 bits are `end32`, among those not yet rewound.
  // Runs on: producer thread.
  uint64_t widen_tail(uint32_t end32) const noexcept {
    return tail_ - static_cast<uint32_t>(static_cast<uint32_t>(tail_) - end32);
  }

  // The run of `size` bytes that ends at `end32`.
  // Runs on: consumer thread.
  const uint8_t* run(uint32_t end32, size_t size) const noexcept {
    return bytes_ + ((end32 - size) & (capacity_ - 1));
  }
  // Frees every run up to `end32`, which must not be before the last release.
  // Runs on: consumer thread.
  void release(uint32_t end32) noexcept {
    const uint64_t head = head_.load(std::memory_order_relaxed);
    head_.store(head + static_cast<uint32_t>(end32 - static_cast<uint32_t>(head)), std::memory_order_release);
  }

  uint8_t* data() const noexcept { return bytes_; }
  size_t capacity() const noexcept { return capacity_; }

 private:
  uint8_t* bytes_;
  size_t capacity_;
  uint64_t tail_ = 0;         // producer's
  uint64_t cached_head_ = 0;  // producer's copy of head_
  alignas(64) std::atomic<uint64_t> head_{0};
};

}  // namespace heartwatch
