// The TCP reactor's pool of status slots: bounded, allocated only as far as it has been used,
// released slots reused.
#include "core/engine/status_slot_pool.h"

#include <gtest/gtest.h>

#include <cstring>
#include <set>
#include <vector>

namespace heartwatch {
namespace {

TEST(StatusSlotPool, HandsOutAtMostKSlotsThenNone) {
  StatusSlotPool pool;
  pool.set_slot_bytes(1024);
  EXPECT_EQ(pool.allocated(), 0u);  // nothing until a status spans reads
  std::set<uint16_t> taken;
  for (uint32_t i = 0; i < StatusSlotPool::kSlots; ++i) {
    const uint16_t slot = pool.take();
    ASSERT_NE(slot, StatusSlotPool::kNone) << i;
    ASSERT_TRUE(taken.insert(slot).second) << "slot " << slot << " handed out twice";
    // Each slot holds slot_bytes of its own (ASan sees any overlap or overrun).
    std::memset(pool.bytes(slot), static_cast<int>(slot), 1024);
  }
  EXPECT_EQ(pool.take(), StatusSlotPool::kNone);
  EXPECT_EQ(pool.take(), StatusSlotPool::kNone);
  EXPECT_EQ(pool.allocated(), StatusSlotPool::kSlots);
  for (uint16_t slot : taken) EXPECT_EQ(pool.bytes(slot)[1023], static_cast<uint8_t>(slot));
}

TEST(StatusSlotPool, ReleasedSlotsAreReusedBeforeAnyIsAllocated) {
  StatusSlotPool pool;
  pool.set_slot_bytes(64);
  const uint16_t a = pool.take();
  const uint16_t b = pool.take();
  EXPECT_EQ(pool.allocated(), 2u);
  pool.release(a);
  EXPECT_EQ(pool.take(), a);
  pool.release(b);
  pool.release(a);
  // One at a time, as a stream of split statuses that each complete: no more memory.
  for (int i = 0; i < 1000; ++i) {
    const uint16_t slot = pool.take();
    ASSERT_NE(slot, StatusSlotPool::kNone);
    pool.release(slot);
  }
  EXPECT_EQ(pool.allocated(), 2u);
  // All kSlots again after releases: the bound is on slots in use, not on takes.
  std::vector<uint16_t> all;
  for (uint16_t slot; (slot = pool.take()) != StatusSlotPool::kNone;) all.push_back(slot);
  EXPECT_EQ(all.size(), StatusSlotPool::kSlots);
}

}  // namespace
}  // namespace heartwatch
