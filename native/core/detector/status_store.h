// The latest status (heartbeat payload) of each host that sent one, kept out of line from the
// 32-byte host records: a host without a status costs nothing here.
//
// Bytes live in blocks of power-of-two size classes (32 B .. 128 KiB), carved from chunks of at
// least 64 KiB and recycled through one free list per class, so replacing a status allocates
// nothing once its class has a free block. A block holds an 8-byte header (hash, length) and the
// bytes. An open-addressing table (linear probing, backward-shift deletion) maps a host record
// index to its block; it holds only hosts with a status.
//
// Bounds: a status longer than max_status_bytes is refused (kOversize); one whose block would
// take the blocks in use past budget_bytes is refused (kOverBudget). Either way the old status
// stays. Chunks are kept for reuse until the store dies, so bytes_allocated() is at most the
// budget plus one chunk per class and the table.
//
// Runs on: worker thread (the shard's owner), like the Detector that holds it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace heartwatch {

// The largest status a host can have: a v1 payload is at most 65,535 bytes.
inline constexpr uint32_t kMaxStatusBytes = 65535;

// A status as the receiver hands it over; `data` is valid for the call only.
struct StatusView {
  const uint8_t* data = nullptr;
  uint32_t size = 0;
};

enum class StatusChange : uint8_t { kUnchanged, kChanged, kOversize, kOverBudget };

// Cheap content hash for change detection: compared (with the length) before the bytes are.
uint32_t status_hash(const uint8_t* data, size_t size) noexcept;

class StatusStore {
 public:
  StatusStore(uint32_t max_status_bytes, uint64_t budget_bytes);
  ~StatusStore();
  StatusStore(const StatusStore&) = delete;
  StatusStore& operator=(const StatusStore&) = delete;

  // What put() would do with `status` for `record`, without doing it (and without counting).
  StatusChange check(uint32_t record, StatusView status, uint32_t hash) const noexcept;
  // Stores `status` for `record`, replacing its old one; only after check() said kChanged.
  // Throws std::bad_alloc if a new chunk cannot be had (the old status then stays).
  void put(uint32_t record, StatusView status, uint32_t hash);
  // The status of `record`, empty when it has none; valid until the next put() or erase().
  std::span<const uint8_t> get(uint32_t record) const noexcept;
  // Prefetch hints for a batch: the table slot `record` would start its probe at, then (once
  // that slot has arrived) the block of the status the slot holds, if it is `record`'s.
  void prefetch_slot(uint32_t record) const noexcept {
    if (!slots_.empty()) __builtin_prefetch(&slots_[home(record)]);
  }
  void prefetch_block(uint32_t record) const noexcept {
    if (slots_.empty()) return;
    const Slot& slot = slots_[home(record)];
    if (slot.record != record) return;
    const uint8_t* b = block(slot.block);
    __builtin_prefetch(b);
    __builtin_prefetch(b + 64);
  }
  // Frees the status of `record`; false when it had none.
  bool erase(uint32_t record) noexcept;

  uint32_t max_status_bytes() const noexcept { return max_status_bytes_; }
  uint64_t count() const noexcept { return count_; }
  // Bytes of the blocks holding statuses (header and class rounding included).
  uint64_t bytes_in_use() const noexcept { return in_use_; }
  // Every byte the store holds: chunks and table.
  uint64_t bytes_allocated() const noexcept { return chunk_bytes_ + slots_.size() * sizeof(Slot); }

  // Size class of a status of `size` bytes: blocks of 32 << class bytes.
  static uint32_t class_of(uint32_t size) noexcept;
  static uint32_t block_bytes(uint32_t size_class) noexcept { return 32u << size_class; }

 private:
  struct Slot {
    uint32_t record;  // 0: empty (record index 0 is never a host)
    uint32_t block;   // size class << 27 | block index within the class
  };
  struct SizeClass {
    std::vector<std::unique_ptr<uint8_t[]>> chunks;
    uint32_t blocks_per_chunk = 0;
    uint32_t used = 0;            // blocks handed out from chunks, freed or not
    std::vector<uint32_t> free;   // freed block indices
  };
  static constexpr uint32_t kClasses = 13;  // 32 B .. 128 KiB: 65,535 bytes + header fit
  static constexpr uint32_t kHeaderBytes = 8;

  size_t find(uint32_t record) const noexcept;  // slot index, or slots_.size() when absent
  size_t home(uint32_t record) const noexcept;
  uint8_t* block(uint32_t handle) const noexcept;
  uint32_t take_block(uint32_t size_class);
  void free_block(uint32_t handle) noexcept;
  void insert_slot(uint32_t record, uint32_t handle);
  void erase_slot(size_t slot) noexcept;
  void grow_table();

  uint32_t max_status_bytes_;
  uint64_t budget_bytes_;
  SizeClass classes_[kClasses];
  std::vector<Slot> slots_;
  uint64_t count_ = 0;
  uint64_t in_use_ = 0;
  uint64_t chunk_bytes_ = 0;
};

}  // namespace heartwatch
