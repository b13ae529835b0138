#include "core/detector/expiry_fifo.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <vector>

#include "core/detector/host_entry.h"
#include "core/detector/slab_pool.h"

namespace heartwatch {
namespace {

class ExpiryFifoTest : public ::testing::Test {
 protected:
  SlabPool pool_{sizeof(HostEntry), 1000, 100};
  ExpiryFifo fifo_{pool_};
  std::vector<uint64_t> deadline_ = std::vector<uint64_t>(1000, 0);

  uint32_t arm(uint64_t deadline, ExpiryLane lane = ExpiryLane::kAlive) {
    const uint32_t i = pool_.allocate();
    deadline_[i] = deadline;
    fifo_.insert(i, deadline, lane, 0);
    return i;
  }
  std::vector<uint32_t> poll(uint64_t now, size_t budget = 1000) {
    std::vector<uint32_t> due;
    fifo_.poll(now, budget, [this](uint32_t i) { return deadline_[i]; },
               [&](uint32_t i, uint64_t d) {
                 EXPECT_EQ(d, deadline_[i]);
                 EXPECT_FALSE(pool_.get<HostEntry>(i).has(HostEntry::kLinked));
                 due.push_back(i);
               });
    return due;
  }
  uint64_t next() const {
    return fifo_.next_deadline([this](uint32_t i) { return deadline_[i]; });
  }
};

TEST_F(ExpiryFifoTest, ReportsOnlyWhatIsDueInOrder) {
  const uint32_t a = arm(10);
  const uint32_t b = arm(20);
  const uint32_t c = arm(20);
  EXPECT_EQ(next(), 10u);
  EXPECT_TRUE(poll(9).empty());
  EXPECT_EQ(poll(10), std::vector<uint32_t>{a});
  EXPECT_EQ(poll(25), (std::vector<uint32_t>{b, c}));
  EXPECT_EQ(next(), std::numeric_limits<uint64_t>::max());
}

TEST_F(ExpiryFifoTest, MergesLanesByDeadline) {
  const uint32_t alive = arm(30);
  const uint32_t timed_out = arm(10, ExpiryLane::kDownTimeout);
  const uint32_t left = arm(20, ExpiryLane::kDownLeft);
  const uint32_t left_later = arm(40, ExpiryLane::kDownLeft);
  EXPECT_EQ(next(), 10u);
  EXPECT_EQ(poll(100), (std::vector<uint32_t>{timed_out, left, alive, left_later}));
}

TEST_F(ExpiryFifoTest, RearmMovesAHostBehindEveryOther) {
  const uint32_t a = arm(10);
  const uint32_t b = arm(20);
  deadline_[a] = 30;
  fifo_.rearm(a, 10, 30, 0);
  EXPECT_EQ(next(), 20u);
  EXPECT_EQ(poll(100), (std::vector<uint32_t>{b, a}));
}

TEST_F(ExpiryFifoTest, RemoveTakesAHostOffItsLane) {
  const uint32_t a = arm(10);
  const uint32_t b = arm(20);
  fifo_.remove(a);
  EXPECT_FALSE(pool_.get<HostEntry>(a).has(HostEntry::kLinked));
  EXPECT_EQ(poll(100), std::vector<uint32_t>{b});
}

TEST_F(ExpiryFifoTest, BudgetBoundsWorkPerPoll) {
  std::vector<uint32_t> armed;
  for (int i = 0; i < 10; ++i) armed.push_back(arm(5));
  std::vector<uint32_t> due;
  for (int call = 0; call < 4; ++call) {
    const auto part = poll(5, 3);
    EXPECT_LE(part.size(), 3u);
    due.insert(due.end(), part.begin(), part.end());
  }
  EXPECT_EQ(due, armed);
}

}  // namespace
}  // namespace heartwatch
