#include "core/detector/host_table.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <unordered_map>
#include <vector>

#include "core/detector/host_entry.h"
#include "core/detector/slab_pool.h"

namespace heartwatch {
namespace {

class HostTableTest : public ::testing::Test {
 protected:
  static constexpr uint32_t kMax = 300'000;
  SlabPool pool_{sizeof(HostEntry), kMax + 1, 16};

  uint32_t add(HostTable& table, uint64_t key) {
    const uint32_t index = pool_.allocate();
    pool_.get<HostEntry>(index).key = key;
    table.insert(index, HostTable::hash(key));
    return index;
  }
  static uint32_t find(const HostTable& table, uint64_t key) { return table.find(key, HostTable::hash(key)); }
};

TEST_F(HostTableTest, FindsWhatWasInsertedAndNothingElse) {
  HostTable table(pool_, 16, kMax);
  const uint32_t a = add(table, 42);
  const uint32_t b = add(table, 7);
  EXPECT_EQ(find(table, 42), a);
  EXPECT_EQ(find(table, 7), b);
  EXPECT_EQ(find(table, 8), 0u);
  EXPECT_EQ(table.size(), 2u);
  EXPECT_TRUE(table.erase(42, HostTable::hash(42)));
  EXPECT_FALSE(table.erase(42, HostTable::hash(42)));
  EXPECT_EQ(find(table, 42), 0u);
  EXPECT_EQ(find(table, 7), b);
  EXPECT_EQ(table.size(), 1u);
}

TEST_F(HostTableTest, GrowsIncrementallyAndKeepsEveryKeyFindable) {
  HostTable table(pool_, 16, kMax);
  std::vector<std::pair<uint64_t, uint32_t>> added;
  bool saw_migration = false;
  for (uint64_t k = 1; k <= 200'000; ++k) {
    const uint64_t key = k * 0x9E3779B97F4A7C15ULL;
    added.emplace_back(key, add(table, key));
    if (table.migrating()) {
      saw_migration = true;
      // Mid-migration, keys from before and after the growth are both found.
      if (k % 997 == 0) {
        for (size_t i = 0; i < added.size(); i += 101) ASSERT_EQ(find(table, added[i].first), added[i].second);
      }
    }
  }
  EXPECT_TRUE(saw_migration);
  for (const auto& [key, index] : added) ASSERT_EQ(find(table, key), index);
  // Load stays within 3/4 once migration is done.
  table.migrate(~0u);
  EXPECT_FALSE(table.migrating());
  EXPECT_LE(uint64_t{table.size()} * 4, uint64_t{table.capacity()} * 3);
}

TEST_F(HostTableTest, MatchesAStandardMapUnderRandomChurn) {
  HostTable table(pool_, 16, kMax);
  std::unordered_map<uint64_t, uint32_t> model;
  std::mt19937_64 rng(7);
  for (int op = 0; op < 400'000; ++op) {
    const uint64_t key = 1 + rng() % 50'000;
    const auto it = model.find(key);
    if (rng() % 3 == 0) {
      const bool erased = table.erase(key, HostTable::hash(key));
      ASSERT_EQ(erased, it != model.end());
      if (erased) {
        pool_.release(it->second);
        model.erase(it);
      }
    } else if (it == model.end()) {
      model[key] = add(table, key);
    } else {
      ASSERT_EQ(find(table, key), it->second);
    }
    ASSERT_EQ(table.size(), model.size());
  }
  for (const auto& [key, index] : model) ASSERT_EQ(find(table, key), index);
}

TEST_F(HostTableTest, NeverGrowsBeyondWhatMaxHostsNeeds) {
  HostTable capped(pool_, 16, 1000);
  for (uint64_t key = 1; key <= 1000; ++key) add(capped, key);
  capped.migrate(~0u);
  EXPECT_LE(capped.capacity(), 4096u);  // 1000 / 0.75, doubled at most once past it
  for (uint64_t key = 1; key <= 1000; ++key) ASSERT_NE(find(capped, key), 0u);
}

TEST_F(HostTableTest, CandidateIsTheRecordToPrefetch) {
  HostTable table(pool_, 1024, kMax);
  const uint32_t a = add(table, 99);
  EXPECT_EQ(table.candidate(HostTable::hash(99)), a);
}

// At the 3/4 load limit, where probes are longest and some run past the table's end: candidate()
// (4 slots per step where SSE2 is there) stops at the first slot that is empty or carries the
// fingerprint, so it is the key's record unless a fingerprint collision sits earlier in the run,
// and 0 or a colliding record for an absent key.
TEST_F(HostTableTest, CandidateIsTheFirstFingerprintMatchInProbeOrder) {
  constexpr uint32_t kHosts = 100'000;
  HostTable table(pool_, kHosts, kMax);
  for (uint64_t k = 1; k <= kHosts; ++k) add(table, k * 0x9E3779B97F4A7C15ULL);
  ASSERT_FALSE(table.migrating());
  ASSERT_GT(uint64_t{table.size()} * 100, uint64_t{table.capacity()} * 70);  // near the limit
  auto fingerprint_of = [&](uint32_t index) { return HostTable::hash(pool_.get<HostEntry>(index).key) & 0xff; };
  uint32_t collisions = 0;
  for (uint64_t k = 1; k <= kHosts; ++k) {
    const uint64_t key = k * 0x9E3779B97F4A7C15ULL;
    const uint64_t hash = HostTable::hash(key);
    const uint32_t c = table.candidate(hash);
    const uint32_t found = find(table, key);
    ASSERT_NE(c, 0u) << "key " << key;
    if (c == found) continue;
    ASSERT_EQ(fingerprint_of(c), hash & 0xff) << "key " << key;
    ++collisions;
  }
  EXPECT_LT(collisions, kHosts / 50);  // about 1 in 256 per slot passed
  uint32_t absent_hits = 0;
  for (uint64_t k = kHosts + 1; k <= 2 * kHosts; ++k) {
    const uint64_t hash = HostTable::hash(k * 0x9E3779B97F4A7C15ULL);
    const uint32_t c = table.candidate(hash);
    if (c == 0) continue;
    ASSERT_EQ(fingerprint_of(c), hash & 0xff);
    ++absent_hits;
  }
  EXPECT_LT(absent_hits, kHosts / 16);  // a miss passes about (1 + 1 / 0.25^2) / 2 = 8.5 slots
}

// find() checks the key of every fingerprint match in the run, four slots at a time where SSE2
// is there: past collisions to the key's record, and to the run's end for an absent key.
TEST_F(HostTableTest, FindLooksPastFingerprintCollisionsToTheKeysRecord) {
  constexpr uint32_t kHosts = 100'000;
  HostTable table(pool_, kHosts, kMax);
  std::vector<uint32_t> records;
  for (uint64_t k = 1; k <= kHosts; ++k) records.push_back(add(table, k * 0x9E3779B97F4A7C15ULL));
  uint32_t collisions = 0;
  for (uint64_t k = 1; k <= kHosts; ++k) {
    const uint64_t key = k * 0x9E3779B97F4A7C15ULL;
    if (table.candidate(HostTable::hash(key)) != records[k - 1]) ++collisions;
    ASSERT_EQ(find(table, key), records[k - 1]) << "key " << key;
  }
  EXPECT_GT(collisions, 0u);
  uint32_t absent_hits = 0;
  for (uint64_t k = kHosts + 1; k <= 2 * kHosts; ++k) {
    const uint64_t key = k * 0x9E3779B97F4A7C15ULL;
    if (table.candidate(HostTable::hash(key)) != 0) ++absent_hits;
    ASSERT_EQ(find(table, key), 0u) << "key " << key;
  }
  EXPECT_GT(absent_hits, 0u);
}

}  // namespace
}  // namespace heartwatch
