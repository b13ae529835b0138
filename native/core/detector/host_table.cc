#include "core/detector/host_table.h"

#include <algorithm>
#include <cassert>

#include "core/common/chunk_allocator.h"
#include "core/detector/host_entry.h"

namespace heartwatch {
namespace {

// The maximum load, 3/4 (host_table.h says why), in integers: size * 4 <= capacity * 3.
constexpr uint64_t kLoadNumerator = 3;
constexpr uint64_t kLoadDenominator = 4;
bool over_load(uint64_t size, uint64_t capacity) { return size * kLoadDenominator > capacity * kLoadNumerator; }
uint64_t hosts_within_load(uint64_t slots) { return slots * kLoadNumerator / kLoadDenominator; }
uint64_t slots_for(uint64_t hosts) { return (hosts * kLoadDenominator + kLoadNumerator - 1) / kLoadNumerator; }

}  // namespace

HostTable::HostTable(const SlabPool& pool, uint32_t initial_hosts, uint32_t max_hosts)
    : pool_(pool), max_hosts_(max_hosts) {
  cur_ = allocate_slots(std::min(std::max(initial_hosts, 16u), max_hosts));
}

HostTable::~HostTable() {
  ChunkAllocator::release(cur_.slots);
  ChunkAllocator::release(old_.slots);
}

HostTable::Slots HostTable::allocate_slots(uint64_t hosts) {
  const uint64_t wanted = (std::max<uint64_t>(slots_for(hosts), 16) + kGroup - 1) / kGroup * kGroup;
  // Take the whole block the allocator will reserve anyway: more slots, shorter probes.
  const size_t bytes = ChunkAllocator::footprint(wanted * sizeof(uint32_t));
  Slots t;
  t.slots = static_cast<uint32_t*>(ChunkAllocator::allocate(bytes));
  t.capacity = static_cast<uint32_t>(bytes / sizeof(uint32_t));
  t.bytes = bytes;
  assert(t.capacity % kGroup == 0);  // 2 MiB blocks and up are whole pages, smaller ones `wanted`
  return t;
}

// The key's slot: the first fingerprint match whose record holds the key, before the run's
// empty slot. With SSE2 four slots at a time, as first_match() (an absent key walks its whole
// run, about 8.5 slots at 3/4 load).
uint32_t HostTable::find_slot(const Slots& t, uint64_t key, uint64_t hash) const {
  const uint32_t pos = home(hash, t.capacity);
#if defined(__SSE2__)
  const __m128i wanted = fingerprints(hash);
  uint32_t group = pos & ~(kGroup - 1);
  unsigned stop = stops(t, group, wanted) & (~0u << (pos - group));  // from home on
  for (;;) {
    for (; stop != 0; stop &= stop - 1) {
      const uint32_t p = group + static_cast<uint32_t>(std::countr_zero(stop));
      const uint32_t v = t.slots[p];
      if (v == 0) return t.capacity;
      if (pool_.get<HostEntry>(v >> kFingerprintBits).key == key) return p;
    }
    group += kGroup;
    if (group == t.capacity) group = 0;
    stop = stops(t, group, wanted);
  }
#else
  const uint32_t fingerprint = static_cast<uint32_t>(hash & kFingerprintMask);
  for (uint32_t p = pos;;) {
    const uint32_t v = t.slots[p];
    if (v == 0) return t.capacity;
    if ((v & kFingerprintMask) == fingerprint && pool_.get<HostEntry>(v >> kFingerprintBits).key == key) return p;
    if (++p == t.capacity) p = 0;
  }
#endif
}

uint32_t HostTable::find_in(const Slots& t, uint64_t key, uint64_t hash) const {
  const uint32_t pos = find_slot(t, key, hash);
  return pos == t.capacity ? 0 : t.slots[pos] >> kFingerprintBits;
}

void HostTable::place(Slots& t, uint32_t value, uint64_t hash) {
  uint32_t pos = home(hash, t.capacity);
  while (t.slots[pos] != 0) {
    if (++pos == t.capacity) pos = 0;
  }
  t.slots[pos] = value;
}

uint64_t HostTable::entry_hash(uint32_t value) const {
  return hash(pool_.get<HostEntry>(value >> kFingerprintBits).key);
}

void HostTable::insert(uint32_t index, uint64_t hash) {
  if (migrating()) {
    drain_old(kMigrateStep);
  } else if (over_load(uint64_t{size_} + 1, cur_.capacity) && size_ < max_hosts_) {
    const uint64_t target = std::min<uint64_t>(hosts_within_load(uint64_t{cur_.capacity} * 2), max_hosts_);
    if (target > size_) {
      const Slots grown = allocate_slots(target);
      old_ = cur_;
      cur_ = grown;
      migrate_pos_ = 0;
    }
  }
  place(cur_, entry(index, hash), hash);
  ++size_;
}

void HostTable::drain_old(uint32_t slots) {
  for (uint32_t moved = 0; moved < slots && migrate_pos_ < old_.capacity;) {
    const uint32_t v = old_.slots[migrate_pos_];
    if (v == 0) {
      ++migrate_pos_;
      continue;
    }
    place(cur_, v, entry_hash(v));
    erase_at(old_, migrate_pos_);  // may pull a later entry into this slot: look again
    ++moved;
  }
  if (migrate_pos_ == old_.capacity) {
    ChunkAllocator::release(old_.slots);
    old_ = Slots{};
  }
}

bool HostTable::erase(uint64_t key, uint64_t hash) {
  const uint32_t pos = find_slot(cur_, key, hash);
  if (pos != cur_.capacity) {
    erase_at(cur_, pos);
    --size_;
    return true;
  }
  if (!migrating()) return false;
  const uint32_t old_pos = find_slot(old_, key, hash);
  if (old_pos == old_.capacity) return false;
  erase_at(old_, old_pos);
  --size_;
  return true;
}

// Backward-shift deletion: pulls later members of the probe run into the hole, so lookups
// can stop at the first empty slot and no tombstones are needed.
void HostTable::erase_at(Slots& t, uint32_t hole) {
  uint32_t pos = hole;
  for (;;) {
    if (++pos == t.capacity) pos = 0;
    const uint32_t v = t.slots[pos];
    if (v == 0) break;
    const uint32_t h = home(entry_hash(v), t.capacity);
    // The entry may fill the hole unless its home lies cyclically in (hole, pos].
    const bool stays = hole <= pos ? (hole < h && h <= pos) : (hole < h || h <= pos);
    if (stays) continue;
    t.slots[hole] = v;
    hole = pos;
  }
  t.slots[hole] = 0;
}

}  // namespace heartwatch
