#include "core/detector/status_store.h"

#include <algorithm>
#include <bit>
#include <cstring>

namespace heartwatch {
namespace {

constexpr uint32_t kBlockShift = 27;
constexpr uint32_t kBlockMask = (1u << kBlockShift) - 1;
constexpr size_t kChunkBytes = 64 * 1024;
constexpr size_t kInitialSlots = 64;

struct BlockHeader {
  uint32_t hash;
  uint32_t size;
};
static_assert(sizeof(BlockHeader) == 8);

uint64_t mix(uint64_t x) noexcept {
  x ^= x >> 30;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 27;
  x *= 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

}  // namespace

// Eight bytes per multiply: a 64-byte status hashes in a few nanoseconds, well under the cost
// of the table probe the heartbeat already paid.
uint32_t status_hash(const uint8_t* data, size_t size) noexcept {
  uint64_t h = 0x9E3779B97F4A7C15ull ^ size;
  size_t i = 0;
  for (; i + 8 <= size; i += 8) {
    uint64_t word;
    std::memcpy(&word, data + i, 8);
    h = (h ^ word) * 0xBF58476D1CE4E5B9ull;
    h ^= h >> 29;
  }
  uint64_t tail = 0;
  if (i < size) std::memcpy(&tail, data + i, size - i);
  h = mix(h ^ tail);
  return static_cast<uint32_t>(h ^ (h >> 32));
}

StatusStore::StatusStore(uint32_t max_status_bytes, uint64_t budget_bytes)
    : max_status_bytes_(max_status_bytes), budget_bytes_(budget_bytes) {}

StatusStore::~StatusStore() = default;

uint32_t StatusStore::class_of(uint32_t size) noexcept {
  const uint32_t bytes = std::bit_ceil(std::max<uint32_t>(size + kHeaderBytes, 32));
  return static_cast<uint32_t>(std::countr_zero(bytes)) - 5;
}

size_t StatusStore::home(uint32_t record) const noexcept {
  return static_cast<size_t>(mix(record)) & (slots_.size() - 1);
}

size_t StatusStore::find(uint32_t record) const noexcept {
  if (slots_.empty()) return 0;
  for (size_t i = home(record);; i = (i + 1) & (slots_.size() - 1)) {
    if (slots_[i].record == record) return i;
    if (slots_[i].record == 0) return slots_.size();
  }
}

uint8_t* StatusStore::block(uint32_t handle) const noexcept {
  const SizeClass& c = classes_[handle >> kBlockShift];
  const uint32_t index = handle & kBlockMask;
  return c.chunks[index / c.blocks_per_chunk].get() +
         static_cast<size_t>(index % c.blocks_per_chunk) * block_bytes(handle >> kBlockShift);
}

uint32_t StatusStore::take_block(uint32_t size_class) {
  SizeClass& c = classes_[size_class];
  uint32_t index;
  if (!c.free.empty()) {
    index = c.free.back();
    c.free.pop_back();
  } else {
    if (c.blocks_per_chunk == 0) {
      c.blocks_per_chunk = static_cast<uint32_t>(std::max<size_t>(1, kChunkBytes / block_bytes(size_class)));
    }
    if (c.used == c.chunks.size() * c.blocks_per_chunk) {
      const size_t bytes = static_cast<size_t>(c.blocks_per_chunk) * block_bytes(size_class);
      // The free list can hold every block of the new chunk: free_block() then never allocates.
      c.free.reserve((c.chunks.size() + 1) * c.blocks_per_chunk);
      c.chunks.emplace_back(new uint8_t[bytes]);
      chunk_bytes_ += bytes;
    }
    index = c.used++;
  }
  in_use_ += block_bytes(size_class);
  return size_class << kBlockShift | index;
}

void StatusStore::free_block(uint32_t handle) noexcept {
  const uint32_t size_class = handle >> kBlockShift;
  classes_[size_class].free.push_back(handle & kBlockMask);
  in_use_ -= block_bytes(size_class);
}

StatusChange StatusStore::check(uint32_t record, StatusView status, uint32_t hash) const noexcept {
  if (status.size > max_status_bytes_) return StatusChange::kOversize;
  const size_t slot = find(record);
  uint64_t freed = 0;
  if (slot < slots_.size()) {
    const uint8_t* old = block(slots_[slot].block);
    BlockHeader header;
    std::memcpy(&header, old, sizeof(header));
    if (header.size == status.size && header.hash == hash &&
        std::memcmp(old + kHeaderBytes, status.data, status.size) == 0) {
      return StatusChange::kUnchanged;
    }
    freed = block_bytes(slots_[slot].block >> kBlockShift);
  }
  if (in_use_ - freed + block_bytes(class_of(status.size)) > budget_bytes_) return StatusChange::kOverBudget;
  return StatusChange::kChanged;
}

void StatusStore::put(uint32_t record, StatusView status, uint32_t hash) {
  const uint32_t size_class = class_of(status.size);
  size_t slot = find(record);
  if (slot == slots_.size() || (slots_[slot].block >> kBlockShift) != size_class) {
    const uint32_t handle = take_block(size_class);
    if (slot < slots_.size()) {
      free_block(slots_[slot].block);
      slots_[slot].block = handle;
    } else {
      try {
        insert_slot(record, handle);
      } catch (...) {
        free_block(handle);
        throw;
      }
      slot = find(record);
    }
  }
  uint8_t* b = block(slots_[slot].block);
  const BlockHeader header{hash, status.size};
  std::memcpy(b, &header, sizeof(header));
  std::memcpy(b + kHeaderBytes, status.data, status.size);
}

std::span<const uint8_t> StatusStore::get(uint32_t record) const noexcept {
  const size_t slot = find(record);
  if (slot >= slots_.size()) return {};
  const uint8_t* b = block(slots_[slot].block);
  BlockHeader header;
  std::memcpy(&header, b, sizeof(header));
  return {b + kHeaderBytes, header.size};
}

bool StatusStore::erase(uint32_t record) noexcept {
  const size_t slot = find(record);
  if (slot >= slots_.size()) return false;
  free_block(slots_[slot].block);
  erase_slot(slot);
  return true;
}

void StatusStore::insert_slot(uint32_t record, uint32_t handle) {
  // At most half full, so probes stay short.
  if ((count_ + 1) * 2 > slots_.size()) grow_table();
  size_t i = home(record);
  while (slots_[i].record != 0) i = (i + 1) & (slots_.size() - 1);
  slots_[i] = Slot{record, handle};
  ++count_;
}

// Backward-shift deletion: later entries of the probe run move up, so no tombstones pile up.
void StatusStore::erase_slot(size_t slot) noexcept {
  const size_t mask = slots_.size() - 1;
  size_t hole = slot;
  for (size_t i = (slot + 1) & mask; slots_[i].record != 0; i = (i + 1) & mask) {
    const size_t want = home(slots_[i].record);
    // Entry i may fill the hole if its home is not in (hole, i] (cyclically).
    if (((i - want) & mask) >= ((i - hole) & mask)) {
      slots_[hole] = slots_[i];
      hole = i;
    }
  }
  slots_[hole] = Slot{0, 0};
  --count_;
}

void StatusStore::grow_table() {
  std::vector<Slot> old(std::max(kInitialSlots, slots_.size() * 2));
  old.swap(slots_);
  for (const Slot& s : old) {
    if (s.record == 0) continue;
    size_t i = home(s.record);
    while (slots_[i].record != 0) i = (i + 1) & (slots_.size() - 1);
    slots_[i] = s;
  }
}

}  // namespace heartwatch
