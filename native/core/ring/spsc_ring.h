// A bounded, lock-free, single-producer single-consumer ring of trivially copyable records: the
// hand-off from one receiver thread to one worker thread.
//
// Indices count up forever (64 bits do not wrap in practice) and are masked into the slot array,
// so every slot is usable and "full" is simply tail - head == capacity. Each side owns one index
// and keeps a private copy of the other side's, reloading it (an acquire load of a line the other
// core writes) only when the copy says the ring is full (producer) or has too little (consumer).
// A batch moves with one index store, so the cross-core traffic is per batch, not per record.
//
// Layout: the read-only fields, the producer's line and the consumer's line each sit on their own
// 128-byte line; 128 rather than 64 because adjacent-line prefetch pairs lines on x86.
#pragma once

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstring>
#include <new>
#include <stdexcept>
#include <type_traits>

#include "core/common/chunk_allocator.h"

namespace heartwatch {

template <typename T>
class SpscRing {
  static_assert(std::is_trivially_copyable_v<T>, "records are moved with memcpy");
  static_assert(std::atomic<size_t>::is_always_lock_free);

 public:
  static constexpr size_t kLineBytes = 128;

  // Capacity is `min_capacity` rounded up to a power of two. Throws std::invalid_argument for 0
  // or an impossible size, std::bad_alloc when the memory cannot be had.
  // Runs on: any thread, before the producer and consumer start.
  explicit SpscRing(size_t min_capacity) {
    static_assert(alignof(SpscRing) == kLineBytes);
    static_assert(sizeof(SpscRing) % kLineBytes == 0);
    static_assert(offsetof(SpscRing, tail_) - offsetof(SpscRing, slots_) >= kLineBytes);
    static_assert(offsetof(SpscRing, head_) - offsetof(SpscRing, tail_) >= kLineBytes);
    static_assert(sizeof(SpscRing) - offsetof(SpscRing, head_) >= kLineBytes);
    if (min_capacity == 0 || min_capacity > (size_t{1} << 40) / sizeof(T)) {
      throw std::invalid_argument("SpscRing capacity must be between 1 and 2^40 bytes of records");
    }
    const size_t capacity = std::bit_ceil(min_capacity);
    slots_ = static_cast<T*>(
        ChunkAllocator::allocate(capacity * sizeof(T), std::max<size_t>(alignof(T), 64)));
    mask_ = capacity - 1;
  }

  ~SpscRing() { ChunkAllocator::release(slots_); }

  SpscRing(const SpscRing&) = delete;
  SpscRing& operator=(const SpscRing&) = delete;

  // Appends one record; false when the ring is full (the caller counts the drop).
  // Runs on: producer thread.
  bool try_push(const T& record) noexcept {
    const size_t tail = tail_.load(std::memory_order_relaxed);
    if (tail - cached_head_ > mask_) {
      cached_head_ = head_.load(std::memory_order_acquire);
      if (tail - cached_head_ > mask_) return false;
    }
    std::memcpy(&slots_[tail & mask_], &record, sizeof(T));
    tail_.store(tail + 1, std::memory_order_release);
    return true;
  }

  // Appends up to `count` records from `records`, in order; returns how many fit.
  // Runs on: producer thread.
  size_t push_batch(const T* records, size_t count) noexcept {
    const size_t tail = tail_.load(std::memory_order_relaxed);
    size_t space = capacity() - (tail - cached_head_);
    if (space < count) {
      cached_head_ = head_.load(std::memory_order_acquire);
      space = capacity() - (tail - cached_head_);
    }
    const size_t n = std::min(count, space);
    if (n == 0) return 0;
    copy_in(tail, records, n);
    tail_.store(tail + n, std::memory_order_release);
    return n;
  }

  // Moves up to `max_count` of the oldest records into `records`, in order; returns how many.
  // Runs on: consumer thread.
  size_t pop_batch(T* records, size_t max_count) noexcept {
    const size_t head = head_.load(std::memory_order_relaxed);
    size_t available = cached_tail_ - head;
    if (available < max_count) {
      cached_tail_ = tail_.load(std::memory_order_acquire);
      available = cached_tail_ - head;
    }
    const size_t n = std::min(max_count, available);
    if (n == 0) return 0;
    copy_out(head, records, n);
    head_.store(head + n, std::memory_order_release);
    return n;
  }

  // Records in the ring at some instant during the call; exact when neither side is active.
  // Runs on: any thread.
  size_t size_approx() const noexcept {
    // Head first: it never passes a tail read after it, so the difference cannot underflow.
    const size_t head = head_.load(std::memory_order_acquire);
    const size_t tail = tail_.load(std::memory_order_acquire);
    return std::min(tail - head, capacity());
  }

  // Runs on: any thread.
  size_t capacity() const noexcept { return mask_ + 1; }

 private:
  // At most two copies: up to the end of the slot array, then from its start.
  // Runs on: producer thread.
  void copy_in(size_t index, const T* records, size_t n) noexcept {
    const size_t start = index & mask_;
    const size_t first = std::min(n, capacity() - start);
    std::memcpy(slots_ + start, records, first * sizeof(T));
    std::memcpy(slots_, records + first, (n - first) * sizeof(T));
  }

  // Runs on: consumer thread.
  void copy_out(size_t index, T* records, size_t n) const noexcept {
    const size_t start = index & mask_;
    const size_t first = std::min(n, capacity() - start);
    std::memcpy(records, slots_ + start, first * sizeof(T));
    std::memcpy(records + first, slots_, (n - first) * sizeof(T));
  }

  // Read-only once constructed; shared by both sides without traffic.
  alignas(kLineBytes) T* slots_ = nullptr;
  size_t mask_ = 0;

  // Written by the producer only.
  alignas(kLineBytes) std::atomic<size_t> tail_{0};
  size_t cached_head_ = 0;

  // Written by the consumer only.
  alignas(kLineBytes) std::atomic<size_t> head_{0};
  size_t cached_tail_ = 0;
};

}  // namespace heartwatch
