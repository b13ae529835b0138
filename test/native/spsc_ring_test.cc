#include "core/ring/spsc_ring.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <stdexcept>
#include <thread>
#include <vector>

namespace heartwatch {
namespace {

// A record shaped like a receiver hand-off: a sequence number plus payload that must arrive
// intact, so a torn or misplaced copy is caught.
struct Record {
  uint64_t seq;
  uint64_t check;
  uint32_t extra;
};

Record make_record(uint64_t seq) {
  return Record{seq, seq * 0x9E3779B97F4A7C15ULL, static_cast<uint32_t>(seq ^ 0xA5A5)};
}

void expect_record(const Record& r, uint64_t seq) {
  ASSERT_EQ(r.seq, seq);
  ASSERT_EQ(r.check, seq * 0x9E3779B97F4A7C15ULL);
  ASSERT_EQ(r.extra, static_cast<uint32_t>(seq ^ 0xA5A5));
}

TEST(SpscRing, CapacityRoundsUpToAPowerOfTwo) {
  EXPECT_EQ(SpscRing<uint64_t>(1).capacity(), 1u);
  EXPECT_EQ(SpscRing<uint64_t>(2).capacity(), 2u);
  EXPECT_EQ(SpscRing<uint64_t>(3).capacity(), 4u);
  EXPECT_EQ(SpscRing<uint64_t>(1000).capacity(), 1024u);
  EXPECT_EQ(SpscRing<uint64_t>(1024).capacity(), 1024u);
  EXPECT_THROW(SpscRing<uint64_t>(0), std::invalid_argument);
  EXPECT_THROW(SpscRing<uint64_t>(SIZE_MAX), std::invalid_argument);
}

TEST(SpscRing, IndicesLiveOnSeparateLines) {
  SpscRing<Record> ring(8);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(&ring) % 128, 0u);
  EXPECT_GE(sizeof(ring), 3u * 128);
  auto* heap = new SpscRing<Record>(8);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(heap) % 128, 0u);
  delete heap;
}

TEST(SpscRing, EmptyRingPopsNothing) {
  SpscRing<Record> ring(4);
  Record out[4];
  EXPECT_EQ(ring.pop_batch(out, 4), 0u);
  EXPECT_EQ(ring.size_approx(), 0u);
}

TEST(SpscRing, TryPushFillsToCapacityThenRefuses) {
  SpscRing<Record> ring(4);
  for (uint64_t i = 0; i < 4; ++i) EXPECT_TRUE(ring.try_push(make_record(i)));
  EXPECT_FALSE(ring.try_push(make_record(4)));
  EXPECT_EQ(ring.size_approx(), 4u);
  Record out[8];
  ASSERT_EQ(ring.pop_batch(out, 8), 4u);
  for (uint64_t i = 0; i < 4; ++i) expect_record(out[i], i);
  EXPECT_TRUE(ring.try_push(make_record(4)));
  ASSERT_EQ(ring.pop_batch(out, 8), 1u);
  expect_record(out[0], 4);
}

TEST(SpscRing, PushBatchTakesWhatFitsAndKeepsOrder) {
  SpscRing<Record> ring(8);
  std::vector<Record> in;
  for (uint64_t i = 0; i < 12; ++i) in.push_back(make_record(i));
  EXPECT_EQ(ring.push_batch(in.data(), 5), 5u);
  EXPECT_EQ(ring.push_batch(in.data() + 5, 7), 3u);
  EXPECT_EQ(ring.push_batch(in.data() + 8, 4), 0u);
  EXPECT_EQ(ring.size_approx(), 8u);
  Record out[8];
  ASSERT_EQ(ring.pop_batch(out, 3), 3u);
  for (uint64_t i = 0; i < 3; ++i) expect_record(out[i], i);
  ASSERT_EQ(ring.pop_batch(out, 8), 5u);
  for (uint64_t i = 0; i < 5; ++i) expect_record(out[i], i + 3);
  EXPECT_EQ(ring.push_batch(in.data(), 0), 0u);
  EXPECT_EQ(ring.pop_batch(out, 0), 0u);
}

TEST(SpscRing, BatchesWrapAroundTheEndOfTheSlots) {
  SpscRing<Record> ring(8);
  uint64_t next_in = 0, next_out = 0;
  std::vector<Record> in(8), out(8);
  // Batch sizes that are coprime with the capacity put the wrap point at every offset.
  for (int round = 0; round < 200; ++round) {
    const size_t push = 1 + static_cast<size_t>(round % 7);
    for (size_t i = 0; i < push; ++i) in[i] = make_record(next_in + i);
    const size_t pushed = ring.push_batch(in.data(), push);
    next_in += pushed;
    ASSERT_EQ(ring.size_approx(), next_in - next_out);
    const size_t popped = ring.pop_batch(out.data(), 1 + static_cast<size_t>(round % 5));
    for (size_t i = 0; i < popped; ++i) expect_record(out[i], next_out + i);
    next_out += popped;
  }
  const size_t rest = ring.pop_batch(out.data(), 8);
  for (size_t i = 0; i < rest; ++i) expect_record(out[i], next_out + i);
  EXPECT_EQ(next_out + rest, next_in);
  EXPECT_GT(next_in, 8u * 20);
}

TEST(SpscRing, CapacityOneAlternates) {
  SpscRing<uint64_t> ring(1);
  uint64_t out = 0;
  for (uint64_t i = 0; i < 10; ++i) {
    ASSERT_TRUE(ring.try_push(i));
    ASSERT_FALSE(ring.try_push(i));
    ASSERT_EQ(ring.pop_batch(&out, 1), 1u);
    ASSERT_EQ(out, i);
  }
}

// Moves tens of millions of sequenced records between two threads through a small ring, mixing
// single pushes and batches of every size so both sides hit full, empty and the wrap point
// constantly; any loss, duplicate, reordering or torn record fails. Runs under TSan in CI.
TEST(SpscRing, TwoThreadsMoveEveryRecordInOrder) {
  constexpr uint64_t kRecords = 20'000'000;
  SpscRing<Record> ring(1024);
  uint64_t producer_refusals = 0;

  std::thread producer([&] {
    std::vector<Record> batch(97);
    uint64_t next = 0;
    while (next < kRecords) {
      if (next % 5 == 0) {
        if (ring.try_push(make_record(next))) {
          ++next;
        } else {
          ++producer_refusals;
          std::this_thread::yield();
        }
        continue;
      }
      const size_t want = std::min<uint64_t>(1 + next % 97, kRecords - next);
      for (size_t i = 0; i < want; ++i) batch[i] = make_record(next + i);
      const size_t pushed = ring.push_batch(batch.data(), want);
      if (pushed == 0) {
        ++producer_refusals;
        std::this_thread::yield();
      }
      next += pushed;
    }
  });

  // The consumer drains everything even after a mismatch so the producer never waits forever.
  std::vector<Record> out(256);
  uint64_t expected = 0;
  uint64_t mismatches = 0;
  while (expected < kRecords) {
    const size_t n = ring.pop_batch(out.data(), 1 + expected % 256);
    if (n == 0) std::this_thread::yield();
    for (size_t i = 0; i < n; ++i) {
      const Record& r = out[i];
      const uint64_t seq = expected + i;
      if (r.seq != seq || r.check != seq * 0x9E3779B97F4A7C15ULL ||
          r.extra != static_cast<uint32_t>(seq ^ 0xA5A5)) {
        if (mismatches++ == 0) ADD_FAILURE() << "record " << seq << " arrived as " << r.seq;
      }
    }
    expected += n;
  }
  producer.join();
  EXPECT_EQ(expected, kRecords);
  EXPECT_EQ(mismatches, 0u);
  EXPECT_EQ(ring.size_approx(), 0u);
  RecordProperty("producer_refusals", std::to_string(producer_refusals));
}

}  // namespace
}  // namespace heartwatch
