// Open-addressing map from host key to a SlabPool record index.
//
// A slot is 4 bytes: the record index (24 bits) and 8 bits of the key's hash as a fingerprint,
// so a probe dereferences a record only when the fingerprint matches (1 in 256 otherwise).
// Linear probing from a home slot picked by multiply-shift, so capacity need not be a power of
// two (only a multiple of kGroup) and uses every byte of the block ChunkAllocator hands out.
// Maximum load 3/4, where a hit lies about 1.5 slots past home: candidate() compares the 4
// slots from home on at once (SSE2, one unaligned load; prefetch() loads both lines they may
// span), then aligned groups of 4, so most probes are one step. The branch after that step is
// the one mispredicted when the hit lies further (1 in 9 at 3/4, 1 in 6 at 85%), which is why
// 3/4 measured 10% faster than 85% at 10K hosts for 4/3 instead of 20/17 slots per host
// (bench/README.md, session 6).
//
// Growth is incremental: past the load limit a table twice the size is allocated and the old
// one is drained a few slots per operation (find checks both meanwhile), so no single call
// rehashes more than kMigrateStep entries. Both tables delete by backward shift, so neither
// ever holds tombstones: the old one stays a valid table that only shrinks, drained in slot
// order (a shift only ever pulls entries into the slot being drained or later).
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "core/detector/slab_pool.h"

namespace heartwatch {

class HostTable {
 public:
  static constexpr uint32_t kMigrateStep = 16;

  // pool holds HostEntry records (their keys are compared on lookup). The table is sized for
  // initial_hosts and never grows beyond what max_hosts needs.
  // Runs on: worker thread.
  HostTable(const SlabPool& pool, uint32_t initial_hosts, uint32_t max_hosts);
  ~HostTable();
  HostTable(const HostTable&) = delete;
  HostTable& operator=(const HostTable&) = delete;

  static uint64_t hash(uint64_t key) {
#if defined(__SIZEOF_INT128__)
    // The 128-bit product by the golden ratio, its halves folded (wyhash's "mum"): every key bit
    // reaches the high half, which picks the home slot, and the low byte, the fingerprint. Three
    // instructions where Murmur3's finalizer takes eleven.
    __extension__ typedef unsigned __int128 Wide;
    const Wide product = static_cast<Wide>(key) * 0x9E3779B97F4A7C15ULL;
    return static_cast<uint64_t>(product) ^ static_cast<uint64_t>(product >> 64);
#else
    // Murmur3's 64-bit finalizer: every input bit reaches every output bit.
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdULL;
    key ^= key >> 33;
    key *= 0xc4ceb9fe1a85ec53ULL;
    key ^= key >> 33;
    return key;
#endif
  }

  // Starts loading the key's home slot into cache, and the line of the last slot candidate()
  // reads in one step from there (the same line unless home is among its last three slots).
  // Runs on: worker thread.
  void prefetch(uint64_t hash) const {
    const uint32_t pos = home(hash, cur_.capacity);
    __builtin_prefetch(cur_.slots + pos);
    __builtin_prefetch(cur_.slots + std::min(pos + kGroup - 1, cur_.capacity - 1));
  }

  // The first record whose fingerprint matches (0 if none): what to prefetch before find().
  // Runs on: worker thread.
  uint32_t candidate(uint64_t hash) const {
    const uint32_t found = first_match(cur_, hash);
    return found != 0 || old_.slots == nullptr ? found : first_match(old_, hash);
  }

  // The key's record index, or 0. Runs on: worker thread.
  uint32_t find(uint64_t key, uint64_t hash) const {
    const uint32_t found = find_in(cur_, key, hash);
    return found != 0 || old_.slots == nullptr ? found : find_in(old_, key, hash);
  }

  // Adds a key known to be absent; its record (already holding the key) is `index`.
  // Throws std::bad_alloc if growth cannot get memory (the entry is then still added while
  // the table has room; past the hard cap the caller refuses hosts before calling).
  // Runs on: worker thread.
  void insert(uint32_t index, uint64_t hash);

  // Removes the key; false if absent. Runs on: worker thread.
  bool erase(uint64_t key, uint64_t hash);

  // Moves up to `slots` old slots into the new table while growing; no-op otherwise.
  // Runs on: worker thread.
  void migrate(uint32_t slots) {
    if (migrating()) drain_old(slots);  // inline: expire() calls it every millisecond
  }

  bool migrating() const { return old_.slots != nullptr; }
  uint32_t size() const { return size_; }
  uint32_t capacity() const { return cur_.capacity; }
  size_t bytes_allocated() const { return cur_.bytes + old_.bytes; }

 private:
  struct Slots {
    uint32_t* slots = nullptr;
    uint32_t capacity = 0;
    size_t bytes = 0;
  };

  static constexpr uint32_t kFingerprintBits = 8;
  static constexpr uint32_t kFingerprintMask = (1u << kFingerprintBits) - 1;
  // Slots compared at once by first_match(); capacities are a multiple of it, so a group never
  // runs past the end of the table (ChunkAllocator aligns blocks to 64 bytes).
  static constexpr uint32_t kGroup = 4;

  static uint32_t home(uint64_t hash, uint32_t capacity) {
    return static_cast<uint32_t>(((hash >> 32) * capacity) >> 32);
  }
  static uint32_t entry(uint32_t index, uint64_t hash) {
    return (index << kFingerprintBits) | static_cast<uint32_t>(hash & kFingerprintMask);
  }
#if defined(__SSE2__)
  // One bit per slot of the aligned group at `group`: empty or carrying the fingerprint.
  static unsigned stops(const Slots& t, uint32_t group, __m128i fingerprints) {
    return stops(_mm_load_si128(reinterpret_cast<const __m128i*>(t.slots + group)), fingerprints);
  }
  static unsigned stops(__m128i v, __m128i fingerprints) {
    const __m128i low = _mm_and_si128(v, _mm_set1_epi32(kFingerprintMask));
    const __m128i hit = _mm_or_si128(_mm_cmpeq_epi32(low, fingerprints), _mm_cmpeq_epi32(v, _mm_setzero_si128()));
    return static_cast<unsigned>(_mm_movemask_ps(_mm_castsi128_ps(hit)));
  }
  static __m128i fingerprints(uint64_t hash) {
    return _mm_set1_epi32(static_cast<int>(hash & kFingerprintMask));
  }
#endif
  // The first slot in probe order that is empty or has the fingerprint: its record, 0 if empty.
  static uint32_t first_match(const Slots& t, uint64_t hash) {
    const uint32_t pos = home(hash, t.capacity);
#if defined(__SSE2__)
    const __m128i wanted = fingerprints(hash);
    uint32_t from = pos;
    if (pos + kGroup <= t.capacity) [[likely]] {
      // The four slots from home on, unaligned: the common hit is among them.
      const unsigned stop =
          stops(_mm_loadu_si128(reinterpret_cast<const __m128i*>(t.slots + pos)), wanted);
      if (stop != 0) return t.slots[pos + static_cast<uint32_t>(std::countr_zero(stop))] >> kFingerprintBits;
      from = pos + kGroup == t.capacity ? 0 : pos + kGroup;
    }
    uint32_t group = from & ~(kGroup - 1);
    unsigned stop = stops(t, group, wanted) & (~0u << (from - group));
    while (stop == 0) {
      group += kGroup;
      if (group == t.capacity) group = 0;
      stop = stops(t, group, wanted);
    }
    return t.slots[group + static_cast<uint32_t>(std::countr_zero(stop))] >> kFingerprintBits;
#else
    const uint32_t fingerprint = static_cast<uint32_t>(hash & kFingerprintMask);
    for (uint32_t v, p = pos; (v = t.slots[p]) != 0;) {
      if ((v & kFingerprintMask) == fingerprint) return v >> kFingerprintBits;
      if (++p == t.capacity) p = 0;
    }
    return 0;
#endif
  }
  static Slots allocate_slots(uint64_t hosts);
  void drain_old(uint32_t slots);  // migrate() while migrating
  uint32_t find_in(const Slots& t, uint64_t key, uint64_t hash) const;
  uint32_t find_slot(const Slots& t, uint64_t key, uint64_t hash) const;  // capacity if absent
  static void place(Slots& t, uint32_t value, uint64_t hash);
  uint64_t entry_hash(uint32_t value) const;
  void erase_at(Slots& t, uint32_t hole);

  const SlabPool& pool_;
  Slots cur_;
  Slots old_;
  uint32_t migrate_pos_ = 0;
  uint32_t size_ = 0;
  uint32_t max_hosts_;
};

}  // namespace heartwatch
