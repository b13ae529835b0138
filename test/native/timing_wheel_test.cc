#include "core/detector/timing_wheel.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "core/detector/host_entry.h"
#include "core/detector/slab_pool.h"

namespace heartwatch {
namespace {

constexpr uint64_t kNever = std::numeric_limits<uint64_t>::max();

class WheelHarness {
 public:
  explicit WheelHarness(bool lazy = true, uint32_t records = 20'000)
      : pool_(sizeof(HostEntry), records + TimingWheel::kSentinels + 1, records + TimingWheel::kSentinels),
        wheel_(pool_, lazy),
        deadline_(records + TimingWheel::kSentinels + 1, kNever),
        fired_at_(deadline_.size(), kNever) {}

  uint32_t arm(uint64_t deadline, uint64_t now) {
    const uint32_t i = pool_.allocate();
    deadline_[i] = deadline;
    wheel_.insert(i, deadline, ExpiryLane::kAlive, now);
    return i;
  }
  void move(uint32_t i, uint64_t deadline, uint64_t now) {
    const uint64_t old = deadline_[i];
    deadline_[i] = deadline;
    wheel_.rearm(i, old, deadline, now);
  }
  // Polls at `now` until drained; returns what fired, in order.
  std::vector<uint32_t> poll(uint64_t now, size_t budget = kNever) {
    std::vector<uint32_t> due;
    for (;;) {
      const size_t work = wheel_.poll(now, budget, [this](uint32_t i) { return deadline_[i]; },
                                      [&](uint32_t i, uint64_t d) {
                                        EXPECT_EQ(d, deadline_[i]);
                                        EXPECT_LE(d, now) << "fired early";
                                        fired_at_[i] = now;
                                        due.push_back(i);
                                      });
      if (work < budget) return due;
    }
  }
  void remove(uint32_t i) {
    wheel_.remove(i);
    deadline_[i] = kNever;
  }
  uint64_t fired_at(uint32_t i) const { return fired_at_[i]; }
  uint64_t deadline(uint32_t i) const { return deadline_[i]; }
  TimingWheel& wheel() { return wheel_; }

 private:
  SlabPool pool_;
  TimingWheel wheel_;
  std::vector<uint64_t> deadline_;
  std::vector<uint64_t> fired_at_;
};

// Each deadline fires at exactly its millisecond: not one before, not one after.
void expect_exact(uint64_t start, uint64_t delta) {
  WheelHarness h;
  h.poll(start);
  const uint32_t i = h.arm(start + delta, start);
  // Walk up to the deadline in a few uneven strides, as expire() calls would.
  for (uint64_t t : {start + delta / 3, start + delta / 2, start + delta - 1}) {
    if (t >= start && t < start + delta) {
      ASSERT_TRUE(h.poll(t).empty()) << "delta " << delta << " at " << t;
    }
    ASSERT_LE(h.wheel().next_deadline([](uint32_t) { return uint64_t{0}; }), start + delta);
  }
  ASSERT_EQ(h.poll(start + delta), std::vector<uint32_t>{i}) << "start " << start << " delta " << delta;
}

TEST(TimingWheel, DeadlinesOnEverySlotAndLevelBoundaryFireExactly) {
  for (uint64_t start : {uint64_t{0}, uint64_t{1}, uint64_t{63}, uint64_t{4095}, uint64_t{1} << 30,
                         (uint64_t{1} << 36) - 1, (uint64_t{1} << 42) + 12345}) {
    for (uint32_t level = 0; level < TimingWheel::kLevels; ++level) {
      const uint64_t width = uint64_t{1} << (level * TimingWheel::kSlotBits);
      for (uint64_t delta : {width - 1, width, width + 1, 2 * width, 63 * width, 64 * width - 1, 64 * width,
                             64 * width + 1}) {
        if (delta == 0) continue;
        expect_exact(start, delta);
      }
    }
  }
}

TEST(TimingWheel, DeadlineExactlyOnTheCurrentSlotIsDueNow) {
  WheelHarness h;
  h.poll(1000);
  const uint32_t i = h.arm(1000, 1000);
  EXPECT_EQ(h.poll(1000), std::vector<uint32_t>{i});
}

TEST(TimingWheel, DeadlinesBeyondTheSpanWaitAndFireExactly) {
  WheelHarness h;
  const uint64_t start = 5;
  h.poll(start);
  const uint64_t far = start + (uint64_t{1} << 40) + 777;  // ~35 years, past the 795-day span
  const uint32_t i = h.arm(far, start);
  uint64_t t = start;
  while (t < far - 1) {
    t = std::min(far - 1, t + (uint64_t{1} << 33));
    ASSERT_TRUE(h.poll(t).empty()) << "at " << t;
  }
  EXPECT_EQ(h.poll(far), std::vector<uint32_t>{i});
}

TEST(TimingWheel, ClockWrapsAroundEveryLevel) {
  // Start just short of a level-5 turn (2^36 ms) so every level's digit wraps to 0 on the way.
  const uint64_t start = (uint64_t{1} << 36) - 3;
  WheelHarness h;
  h.poll(start);
  std::vector<uint32_t> armed;
  for (uint64_t delta : {uint64_t{2}, uint64_t{3}, uint64_t{4}, uint64_t{70}, uint64_t{5000}, uint64_t{300'000}}) {
    armed.push_back(h.arm(start + delta, start));
  }
  for (uint64_t t = start; t <= start + 300'000; ++t) h.poll(t);
  for (uint32_t i : armed) EXPECT_EQ(h.fired_at(i), h.deadline(i));
}

TEST(TimingWheel, ManyHostsInOneSlotDrainAcrossBudgetedPolls) {
  WheelHarness h;
  h.poll(0);
  for (int n = 0; n < 10'000; ++n) h.arm(4096, 0);  // a level-1 slot boundary: cascades first
  EXPECT_TRUE(h.poll(4095).empty());
  size_t fired = 0;
  int calls = 0;
  for (;; ++calls) {
    size_t work = 0;
    std::vector<uint32_t> part;
    work = h.wheel().poll(4096, 256, [&](uint32_t i) { return h.deadline(i); },
                          [&](uint32_t, uint64_t) { part.push_back(0); });
    EXPECT_LE(work, 256u);
    fired += part.size();
    if (work < 256) break;
  }
  EXPECT_EQ(fired, 10'000u);
  EXPECT_GE(calls, 10'000 / 256);  // the mass expiry really was spread over calls
  EXPECT_EQ(h.wheel().size(), 0u);
}

// A poll that stops part-way through a slot leaves every list valid: the records still filed
// there can be removed, and only the others fire.
TEST(TimingWheel, ABudgetedPollLeavesTheRestOfItsSlotRemovable) {
  WheelHarness h;
  h.poll(0);
  std::vector<uint32_t> first;
  std::vector<uint32_t> second;
  // Deadline 5000 from 0 files in the level-2 slot that opens at 4096; records fill the slot's
  // lanes in turn, so each lane holds one of `first` with one of `second` behind it.
  for (uint32_t n = 0; n < TimingWheel::kLanes; ++n) first.push_back(h.arm(5000, 0));
  for (uint32_t n = 0; n < TimingWheel::kLanes; ++n) second.push_back(h.arm(5000, 0));
  const size_t work = h.wheel().poll(4096, TimingWheel::kLanes, [&](uint32_t i) { return h.deadline(i); },
                                     [&](uint32_t i, uint64_t) { ADD_FAILURE() << "fired early: " << i; });
  ASSERT_EQ(work, TimingWheel::kLanes);  // took the front of each lane, re-filed it, and stopped
  for (uint32_t i : second) h.remove(i);
  EXPECT_EQ(h.wheel().size(), TimingWheel::kLanes);
  // Bounded polls: a broken list can cycle.
  std::vector<uint32_t> due;
  for (uint64_t now : {uint64_t{4999}, uint64_t{5000}}) {
    const size_t more = h.wheel().poll(now, 1000, [&](uint32_t i) { return h.deadline(i); },
                                       [&](uint32_t i, uint64_t d) {
                                         EXPECT_LE(d, now) << "fired early";
                                         due.push_back(i);
                                       });
    ASSERT_LT(more, 1000u);
  }
  std::sort(due.begin(), due.end());
  EXPECT_EQ(due, first);
  EXPECT_EQ(h.wheel().size(), 0u);
}

// A budget that runs out part-way through a slot puts the rest of each lane back in front of
// that lane's list: removing the first, a middle or the last record of a put-back lane, or the
// only one left in it, leaves the others to fire at their deadlines.
TEST(TimingWheel, RecordsPutBackByABudgetCutCanBeRemovedFromAnyPlace) {
  WheelHarness h;
  h.poll(0);
  // Deadline 5000 from 0 files in the level-2 slot that opens at 4096. Consecutive records go
  // to consecutive lanes, so lane n holds n, n + kLanes, n + 2 kLanes, n + 3 kLanes of these.
  constexpr uint32_t kDepth = 4;
  std::vector<uint32_t> armed;
  for (uint32_t n = 0; n < kDepth * TimingWheel::kLanes; ++n) armed.push_back(h.arm(5000, 0));
  const size_t work = h.wheel().poll(4096, TimingWheel::kLanes + 3, [&](uint32_t i) { return h.deadline(i); },
                                     [&](uint32_t i, uint64_t) { ADD_FAILURE() << "fired early: " << i; });
  ASSERT_EQ(work, TimingWheel::kLanes + 3);  // the first record of every lane, the second of three
  std::vector<uint32_t> removed;
  for (uint32_t depth : {1u, 2u, 3u}) removed.push_back(armed[depth * TimingWheel::kLanes + 4]);  // a whole lane's rest
  removed.push_back(armed[1 * TimingWheel::kLanes + 5]);  // first of the rest
  removed.push_back(armed[2 * TimingWheel::kLanes + 6]);  // middle
  removed.push_back(armed[3 * TimingWheel::kLanes + 7]);  // last
  removed.push_back(armed[3 * TimingWheel::kLanes + 0]);  // last of a lane already taken from twice
  for (uint32_t i : removed) h.remove(i);
  EXPECT_EQ(h.wheel().size(), armed.size() - removed.size());
  EXPECT_TRUE(h.poll(4999).empty());
  std::vector<uint32_t> due = h.poll(5000);
  std::vector<uint32_t> expected;
  for (uint32_t i : armed) {
    if (std::find(removed.begin(), removed.end(), i) == removed.end()) expected.push_back(i);
  }
  std::sort(due.begin(), due.end());
  EXPECT_EQ(due, expected);
  EXPECT_EQ(h.wheel().size(), 0u);
  EXPECT_EQ(h.wheel().next_deadline([](uint32_t) { return uint64_t{0}; }), kNever);
}

// on_due may file the record it is handed again, even into the slot being drained (a deadline
// that has already come): it is reported again in the same poll, after the slot's others.
TEST(TimingWheel, ARecordFiledAgainFromOnDueIntoTheDrainingSlotFiresInTheSamePoll) {
  WheelHarness h;
  h.poll(0);
  const uint32_t again = h.arm(70, 0);
  const uint32_t other = h.arm(70, 0);
  const uint32_t later = h.arm(71, 0);
  std::vector<uint32_t> due;
  bool filed_again = false;
  auto poll = [&](uint64_t now, size_t budget) {
    return h.wheel().poll(now, budget, [&](uint32_t i) { return h.deadline(i); }, [&](uint32_t i, uint64_t d) {
      EXPECT_LE(d, now) << "fired early";
      due.push_back(i);
      if (i == again && !filed_again) {
        filed_again = true;
        h.wheel().insert(i, now, ExpiryLane::kAlive, now);
      }
    });
  };
  // One record per call: the slot is cut after each.
  while (poll(70, 1) == 1) {
  }
  EXPECT_EQ(due.size(), 3u);
  EXPECT_EQ(std::count(due.begin(), due.end(), again), 2);
  EXPECT_EQ(std::count(due.begin(), due.end(), other), 1);
  EXPECT_EQ(due.back(), again);
  EXPECT_EQ(h.wheel().size(), 1u);
  due.clear();
  poll(71, 100);
  EXPECT_EQ(due, std::vector<uint32_t>{later});
}

// Budgets of 1 to 7 records, removals and earlier deadlines between the cut polls, records
// filed again from on_due: every record fires once, at the first poll that reaches its
// deadline (or, cut, at one of the polls that follow at the same time), never early, and
// never after it was removed.
TEST(TimingWheel, CutPollsWithRemovalsBetweenThemLoseAndDuplicateNothing) {
  for (bool lazy : {true, false}) {
    WheelHarness h(lazy);
    std::mt19937_64 rng(lazy ? 7 : 8);
    uint64_t now = 10'000;
    h.poll(now);
    std::vector<uint32_t> live;  // armed and not yet fired or removed
    std::vector<bool> is_live(20'000 + TimingWheel::kSentinels + 1, false);
    auto arm = [&](uint64_t deadline) {
      const uint32_t i = h.arm(deadline, now);
      live.push_back(i);
      is_live[i] = true;
    };
    for (int n = 0; n < 3000; ++n) arm(now + 1 + rng() % 9000);
    for (int step = 0; step < 4000 && !live.empty(); ++step) {
      now += rng() % 8;
      for (;;) {
        const size_t budget = 1 + rng() % 7;
        const size_t work = h.wheel().poll(now, budget, [&](uint32_t i) { return h.deadline(i); },
                                           [&](uint32_t i, uint64_t d) {
                                             ASSERT_TRUE(is_live[i]) << "fired twice or after removal: " << i;
                                             EXPECT_LE(d, now) << "fired early";
                                             is_live[i] = false;
                                           });
        ASSERT_LE(work, budget);
        if (work < budget) break;
        // Between cut polls: remove a live record, or move one earlier.
        if (!live.empty() && rng() % 2 == 0) {
          const size_t at = rng() % live.size();
          const uint32_t i = live[at];
          if (!is_live[i]) continue;
          if (rng() % 2 == 0) {
            h.remove(i);
            is_live[i] = false;
          } else if (h.deadline(i) > now + 1) {
            h.move(i, now + 1 + rng() % (h.deadline(i) - now - 1), now);
          }
        }
      }
      std::erase_if(live, [&](uint32_t i) { return !is_live[i]; });
      for (uint32_t i : live) ASSERT_GT(h.deadline(i), now) << "due, not fired";
      if (rng() % 4 == 0) arm(now + 1 + rng() % 5000);
      ASSERT_EQ(h.wheel().size(), live.size());
    }
  }
}

TEST(TimingWheel, LazyRearmRefilesAtTheNewDeadline) {
  WheelHarness h(/*lazy=*/true);
  h.poll(0);
  const uint32_t i = h.arm(100, 0);
  h.move(i, 5000, 50);
  EXPECT_TRUE(h.poll(4999).empty());
  EXPECT_EQ(h.poll(5000), std::vector<uint32_t>{i});
}

TEST(TimingWheel, AnEarlierDeadlineIsRelinkedEvenWhenLazy) {
  WheelHarness h(/*lazy=*/true);
  h.poll(0);
  const uint32_t i = h.arm(100'000, 0);
  h.move(i, 300, 10);
  EXPECT_TRUE(h.poll(299).empty());
  EXPECT_EQ(h.poll(300), std::vector<uint32_t>{i});
}

TEST(TimingWheel, RemoveEmptiesTheSlot) {
  WheelHarness h;
  h.poll(0);
  const uint32_t i = h.arm(500, 0);
  h.wheel().remove(i);
  EXPECT_EQ(h.wheel().next_deadline([](uint32_t) { return uint64_t{0}; }), kNever);
  EXPECT_TRUE(h.poll(1'000'000).empty());
}

TEST(TimingWheel, RandomDeadlinesFireInOrderAtTheFirstPollPastThem) {
  for (bool lazy : {true, false}) {
    WheelHarness h(lazy);
    std::mt19937_64 rng(lazy ? 1 : 2);
    uint64_t now = 1'000'000;
    h.poll(now);
    std::vector<uint32_t> live;
    std::vector<uint64_t> polled_at;
    uint64_t last_fired_deadline = 0;
    for (int step = 0; step < 20'000; ++step) {
      if (live.size() < 5000 && rng() % 2 == 0) {
        live.push_back(h.arm(now + 1 + rng() % (rng() % 4 == 0 ? 10'000'000 : 5000), now));
      } else if (!live.empty() && rng() % 3 == 0) {
        const uint32_t i = live[rng() % live.size()];
        if (h.fired_at(i) == kNever) h.move(i, now + 1 + rng() % 20'000, now);
      }
      const uint64_t prev = now;
      now += rng() % 50;
      for (uint32_t i : h.poll(now)) {
        EXPECT_GT(h.deadline(i), prev) << "late: due at an earlier poll";
        EXPECT_GE(h.deadline(i), last_fired_deadline) << "out of order";
        last_fired_deadline = h.deadline(i);
      }
      last_fired_deadline = 0;
    }
  }
}

}  // namespace
}  // namespace heartwatch
