// The reactor's connection deadline wheel: never early, at most a slot late, lazy re-arm,
// disarm, deadlines beyond the window, and big clock jumps.
#include "core/net/deadline_wheel.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

namespace heartwatch {
namespace {

TEST(DeadlineWheel, FiresAtOrAfterTheDeadlineAndWithinOneSlot) {
  DeadlineWheel wheel(1000);
  std::mt19937 random(7);
  std::vector<uint64_t> deadline(500);
  for (uint32_t id = 0; id < deadline.size(); ++id) {
    deadline[id] = 1000 + 1 + random() % 200'000;  // up to 3x the window
    wheel.arm(id, deadline[id]);
  }
  std::vector<uint64_t> fired_at(deadline.size(), 0);
  for (uint64_t now = 1000; now <= 202'000; now += 5) {
    wheel.advance(now, [&](uint32_t id) { fired_at[id] = now; });
  }
  for (uint32_t id = 0; id < deadline.size(); ++id) {
    ASSERT_GE(fired_at[id], deadline[id]) << id;
    ASSERT_LE(fired_at[id], deadline[id] + DeadlineWheel::kSlotMs + 5) << id;
  }
  EXPECT_EQ(wheel.size(), 0u);
}

TEST(DeadlineWheel, LaterReArmIsHonouredAndEarlierReArmToo) {
  DeadlineWheel wheel(0);
  wheel.arm(1, 100);
  wheel.arm(1, 5000);  // lazy
  wheel.arm(2, 5000);
  wheel.arm(2, 200);   // earlier: must not fire late
  std::vector<std::pair<uint32_t, uint64_t>> fired;
  for (uint64_t now = 0; now <= 6000; now += 1) {
    wheel.advance(now, [&](uint32_t id) { fired.emplace_back(id, now); });
  }
  ASSERT_EQ(fired.size(), 2u);
  EXPECT_EQ(fired[0].first, 2u);
  EXPECT_GE(fired[0].second, 200u);
  EXPECT_LE(fired[0].second, 200u + DeadlineWheel::kSlotMs);
  EXPECT_EQ(fired[1].first, 1u);
  EXPECT_GE(fired[1].second, 5000u);
  EXPECT_LE(fired[1].second, 5000u + DeadlineWheel::kSlotMs);
}

TEST(DeadlineWheel, DisarmedNeverFiresAndFireMayReArm) {
  DeadlineWheel wheel(0);
  for (uint32_t id = 0; id < 10; ++id) wheel.arm(id, 50 + id);
  for (uint32_t id = 0; id < 10; id += 2) wheel.disarm(id);
  EXPECT_EQ(wheel.size(), 5u);
  std::vector<uint32_t> fired;
  uint32_t rearmed = 0;
  for (uint64_t now = 0; now <= 1000; now += 10) {
    wheel.advance(now, [&](uint32_t id) {
      fired.push_back(id);
      if (id == 1 && rearmed++ == 0) wheel.arm(id, now + 300);
    });
  }
  // Order within one slot is unspecified; id 1 fires again after its re-arm.
  ASSERT_EQ(fired.size(), 6u);
  EXPECT_EQ(fired.back(), 1u);
  std::sort(fired.begin(), fired.end() - 1);
  EXPECT_EQ(fired, (std::vector<uint32_t>{1, 3, 5, 7, 9, 1}));
  EXPECT_EQ(wheel.size(), 0u);
}

TEST(DeadlineWheel, AClockJumpOfManyTurnsFiresEverythingDueAndKeepsTheRest) {
  DeadlineWheel wheel(0);
  for (uint32_t id = 0; id < 100; ++id) wheel.arm(id, 1000 * (id + 1));
  uint32_t fired = 0;
  wheel.advance(50'500, [&](uint32_t id) {
    EXPECT_LE(1000 * (id + 1), 50'500u);
    ++fired;
  });
  EXPECT_EQ(fired, 50u);
  EXPECT_EQ(wheel.size(), 50u);
  wheel.advance(1'000'000, [&](uint32_t) { ++fired; });
  EXPECT_EQ(fired, 100u);
}

}  // namespace
}  // namespace heartwatch
