#include "core/detector/slab_pool.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <set>
#include <stdexcept>
#include <vector>

namespace heartwatch {
namespace {

struct Record {
  uint64_t a, b, c, d;
};

TEST(SlabPool, HandsOutZeroedRecordsFromIndexOne) {
  SlabPool pool(sizeof(Record), 100, 10);
  const uint32_t first = pool.allocate();
  EXPECT_EQ(first, 1u);
  const Record& r = pool.get<Record>(first);
  EXPECT_EQ(r.a | r.b | r.c | r.d, 0u);
  EXPECT_EQ(pool.live(), 1u);
}

TEST(SlabPool, ReusesReleasedRecordsZeroedAgain) {
  SlabPool pool(sizeof(Record), 100, 10);
  const uint32_t a = pool.allocate();
  const uint32_t b = pool.allocate();
  pool.get<Record>(a) = Record{1, 2, 3, 4};
  pool.get<Record>(b) = Record{5, 6, 7, 8};
  pool.release(a);
  EXPECT_EQ(pool.live(), 1u);
  const uint32_t c = pool.allocate();
  EXPECT_EQ(c, a);
  const Record& r = pool.get<Record>(c);
  EXPECT_EQ(r.a | r.b | r.c | r.d, 0u);
  EXPECT_EQ(pool.get<Record>(b).d, 8u);
}

TEST(SlabPool, GrowsAcrossChunksWithoutMovingRecords) {
  const uint32_t n = SlabPool::kChunkRecords * 3 + 17;
  SlabPool pool(sizeof(Record), n + 1, 16);
  std::vector<Record*> where;
  for (uint32_t i = 0; i < n; ++i) {
    const uint32_t index = pool.allocate();
    ASSERT_EQ(index, i + 1);
    pool.get<Record>(index).a = index;
    where.push_back(&pool.get<Record>(index));
  }
  for (uint32_t i = 0; i < n; ++i) {
    ASSERT_EQ(&pool.get<Record>(i + 1), where[i]);
    ASSERT_EQ(where[i]->a, i + 1);
  }
  EXPECT_GE(pool.capacity(), n);
}

TEST(SlabPool, RefusesPastItsMaximum) {
  SlabPool pool(sizeof(Record), 5, 0);
  std::set<uint32_t> seen;
  for (int i = 0; i < 4; ++i) seen.insert(pool.allocate());
  EXPECT_EQ(seen, (std::set<uint32_t>{1, 2, 3, 4}));
  EXPECT_EQ(pool.allocate(), 0u);
  pool.release(3);
  EXPECT_EQ(pool.allocate(), 3u);
  EXPECT_EQ(pool.allocate(), 0u);
}

// Records lie at base + index * size in one range, across growth; memory is committed (and
// counted) a chunk block at a time as records are handed out, not for the whole range.
TEST(SlabPool, AddressesRecordsInOneRangeAndCommitsItAsItGrows) {
  const uint32_t max = SlabPool::kChunkRecords * 12;
  SlabPool pool(sizeof(Record), max, 16);
  const size_t chunk_bytes = size_t{SlabPool::kChunkRecords} * sizeof(Record);
  EXPECT_EQ(pool.bytes_allocated(), chunk_bytes);
  EXPECT_EQ(pool.capacity(), SlabPool::kChunkRecords);
  auto* base = static_cast<std::byte*>(pool.at(0));
  for (uint32_t i = 1; i < max; ++i) {
    const uint32_t index = pool.allocate();
    ASSERT_EQ(index, i);
    ASSERT_EQ(static_cast<void*>(&pool.get<Record>(index)), base + size_t{index} * sizeof(Record));
    pool.get<Record>(index).d = index;  // the committed memory is writable
    const size_t chunks = 1 + (index >= SlabPool::kChunkRecords ? SlabPool::kGrowChunks : 0) +
                          (index >= SlabPool::kChunkRecords * (1 + SlabPool::kGrowChunks) ? SlabPool::kGrowChunks : 0) +
                          (index >= SlabPool::kChunkRecords * (1 + 2 * SlabPool::kGrowChunks) ? 3 : 0);
    ASSERT_EQ(pool.bytes_allocated(), chunks * chunk_bytes) << "index " << index;
  }
  EXPECT_EQ(pool.allocate(), 0u);
  EXPECT_EQ(pool.bytes_allocated(), size_t{12} * chunk_bytes);
  EXPECT_EQ(pool.get<Record>(max - 1).d, max - 1);
}

TEST(SlabPool, CountsEveryByteItHolds) {
  SlabPool small(16, 1000, 0);
  EXPECT_GE(small.bytes_allocated(), size_t{SlabPool::kChunkRecords} * 16);
  // An initial block of whole chunks, rounded the way ChunkAllocator rounds huge blocks.
  SlabPool big(32, 1'000'001, 1'000'000);
  const size_t chunks = (1'000'001 + SlabPool::kChunkRecords - 1) / SlabPool::kChunkRecords;
  EXPECT_EQ(big.capacity(), 1'000'001u);  // backed up to its maximum, not past it
  EXPECT_GE(big.bytes_allocated(), chunks * SlabPool::kChunkRecords * 32);
  EXPECT_LT(big.bytes_allocated(), chunks * SlabPool::kChunkRecords * 32 + (size_t{2} << 20) + 16384);
}

TEST(SlabPool, RejectsRecordSizesItCannotIndex) {
  EXPECT_THROW(SlabPool(24, 100, 0), std::invalid_argument);
  EXPECT_THROW(SlabPool(2, 100, 0), std::invalid_argument);
  EXPECT_THROW(SlabPool(32, 1, 0), std::invalid_argument);
}

}  // namespace
}  // namespace heartwatch
