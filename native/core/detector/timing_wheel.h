// Hierarchical timing wheel for per-host deadlines: 6 levels of 64 slots, 1 ms at the bottom.
//
//   level  slot width           level span
//     0    1 ms                 64 ms
//     1    64 ms                4.1 s
//     2    4.096 s              4.4 min
//     3    4.4 min              4.7 h
//     4    4.7 h                12.4 days
//     5    12.4 days            795 days (farther deadlines wait in level 5 and are re-armed)
//
// A record is filed at the lowest level whose slots reach its deadline: the level where the
// deadline's slot number is less than 64 slots past the clock's (`elapsed_`), in that slot, which
// may lie in the level's next turn; each level keeps a 64-bit occupied bitmap, so finding the
// next non-empty slot is a rotate and a count-trailing-zeros. (Filing by the highest 6-bit digit
// in which deadline and clock differ, as tokio does, puts a deadline 3 s ahead one level higher
// whenever a 4.096 s boundary lies between, and it then cascades once more: with lazy re-arm
// 130K records were taken off lists in the 10K-host bench, 106K by distance; docs/detector.md.)
// When the clock reaches a slot, its records are re-filed against the new clock (cascade) or,
// at level 0, reported. Slots only ever open at or after their start and a record is reported
// only once deadline_of() says its deadline has come, so nothing fires early.
//
// Lazy re-arm: with `lazy` set, rearm() to a later deadline does nothing; the record is re-filed
// when its old slot comes due, because cascades and level-0 checks ask deadline_of() for the
// current deadline. A heartbeat then costs no list work at all. A deadline that moves earlier
// (shorter announced interval) is always relinked, since the wheel must not fire late either.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <limits>

#include "core/detector/expiry_index.h"
#include "core/detector/host_list.h"
#include "core/detector/host_entry.h"
#include "core/detector/slab_pool.h"

namespace heartwatch {

class TimingWheel {
 public:
  static constexpr uint32_t kLevels = 6;
  static constexpr uint32_t kSlotBits = 6;
  static constexpr uint32_t kSlots = 1u << kSlotBits;
  // Each slot is kLanes lists filled in turn and drained in turn: draining one list is a chain
  // of dependent cache misses (each record names the next), eight lists are eight chains in
  // flight at once.
  static constexpr uint32_t kLanes = 8;
  static constexpr uint32_t kSentinels = kLevels * kSlots * kLanes;
  // Farthest a record is filed ahead of the clock; it lands one level-5 slot short of a full
  // turn, so never in the slot the clock is in.
  static constexpr uint64_t kMaxSpan = uint64_t{kSlots - 1} << (kSlotBits * (kLevels - 1));

  // Takes kSentinels records from the pool for the slots' list heads.
  // Runs on: worker thread.
  TimingWheel(SlabPool& pool, bool lazy);

  // Runs on: worker thread.
  void insert(uint32_t index, uint64_t deadline, ExpiryLane /*lane*/, uint64_t now) {
    if (count_ == 0 && now > elapsed_) elapsed_ = now;  // nothing filed: the clock may jump
    file(index, deadline);
  }

  // Runs on: worker thread.
  void remove(uint32_t index) {
    const uint32_t emptied = HostList::unlink(pool_, index);
    if (emptied != kNoIndex) {
      const uint32_t n = (emptied - first_sentinel_) / kLanes;  // level * kSlots + slot
      if (slot_empty(n)) occupied_[n / kSlots] &= ~(uint64_t{1} << (n % kSlots));
    }
    pool_.get<HostEntry>(index).clear(HostEntry::kLinked);
    --count_;
  }

  // Runs on: worker thread.
  void rearm(uint32_t index, uint64_t old_deadline, uint64_t new_deadline, uint64_t now) {
    if (lazy_ && new_deadline >= old_deadline) return;
    remove(index);
    insert(index, new_deadline, ExpiryLane::kAlive, now);
  }

  // rearm() to a deadline the caller knows is later (a heartbeat with the host's timeout
  // unchanged): lazily, nothing to compare or touch.
  // Runs on: worker thread.
  void extend(uint32_t index, uint64_t new_deadline, uint64_t now) {
    if (lazy_) return;
    remove(index);
    insert(index, new_deadline, ExpiryLane::kAlive, now);
  }

  // Start of the earliest non-empty slot (a lower bound on every filed deadline), or
  // UINT64_MAX when empty. expire() has work from then on.
  // Runs on: worker thread.
  template <class DeadlineOf>
  uint64_t next_deadline(DeadlineOf&& /*deadline_of*/) const {
    uint32_t level;
    uint32_t slot;
    uint64_t start;
    return next_slot(level, slot, start) ? start : std::numeric_limits<uint64_t>::max();
  }

  // Runs on: worker thread.
  template <class DeadlineOf, class OnDue>
  size_t poll(uint64_t now, size_t budget, DeadlineOf&& deadline_of, OnDue&& on_due) {
    size_t work = 0;
    while (work < budget) {
      uint32_t level;
      uint32_t slot;
      uint64_t start = earliest_;
      if (start <= now && !next_slot(level, slot, start)) start = std::numeric_limits<uint64_t>::max();
      if (start > now) {
        earliest_ = start;
        if (now > elapsed_) elapsed_ = now;  // everything up to now is handled
        break;
      }
      if (start > elapsed_) elapsed_ = start;
      const uint32_t lanes = first_sentinel_ + (level * kSlots + slot) * kLanes;
      for (bool more = true; more && work < budget;) {
        more = false;
        for (uint32_t lane = lanes; lane < lanes + kLanes && work < budget; ++lane) {
          const uint32_t index = pop_front(lane);
          if (index == kNoIndex) continue;
          more = true;
          ++work;
          const uint64_t deadline = deadline_of(index);
          if (level == 0 && deadline <= elapsed_) {
            pool_.get<HostEntry>(index).clear(HostEntry::kLinked);
            --count_;
            on_due(index, deadline);
          } else {
            // Against this slot's time: never back into this slot, never before the clock.
            [[maybe_unused]] const uint64_t opens = place(index, deadline);
            assert(earliest_ <= elapsed_ && elapsed_ <= opens);
          }
        }
      }
      settle(level * kSlots + slot);
    }
    return work;
  }

  uint64_t elapsed() const { return elapsed_; }
  uint32_t size() const { return count_; }

 private:
  void file(uint32_t index, uint64_t deadline) {
    earliest_ = std::min(earliest_, place(index, deadline));
    pool_.get<HostEntry>(index).set(HostEntry::kLinked);
    ++count_;
  }
  // Links the record into its deadline's slot and returns when that slot opens; its kLinked
  // flag, count_ and earliest_ are the caller's (a re-filed record keeps the first two, so a
  // cascade does not clear and set them again, and during a poll earliest_ is at most the clock,
  // below every slot a record can be filed in).
  uint64_t place(uint32_t index, uint64_t deadline) {
    deadline = std::clamp(deadline, elapsed_, elapsed_ + kMaxSpan);
    const uint32_t level = level_for(deadline);
    const uint32_t slot = static_cast<uint32_t>(deadline >> (level * kSlotBits)) & (kSlots - 1);
    next_lane_ = (next_lane_ + 1) & (kLanes - 1);
    HostList::push_back(pool_, first_sentinel_ + (level * kSlots + slot) * kLanes + next_lane_, index);
    occupied_[level] |= uint64_t{1} << slot;
    // The slot opens at the deadline with the digits below its level cleared.
    return deadline & ~((uint64_t{1} << (level * kSlotBits)) - 1);
  }

  // The lowest level whose 64 slots from the clock's reach `deadline` (in [elapsed_, elapsed_ +
  // kMaxSpan]): where the deadline's slot number is less than 64 past the clock's. Tried from
  // level 0 up, which for the common re-file (2-3 s ahead, level 1) is two compares, fewer
  // instructions than deriving it from the distance's highest bit. At level L >= 1 the slot
  // number one level down is at least 64 past the clock's, so at L it is at least one past:
  // never the clock's own.
  uint32_t level_for(uint64_t deadline) const {
    const uint64_t clock = elapsed_;
    uint32_t level = 0;
    while ((deadline >> (level * kSlotBits)) - (clock >> (level * kSlotBits)) >= kSlots) ++level;
    assert(level < kLevels);  // kMaxSpan keeps level 5's slot within 63 of the clock's
    return level;
  }
  // Takes the first record off `lane` (kNoIndex when empty) without touching the record after
  // it, which is likely not in cache: that one's prev is left stale, and only prefetched, so
  // the lanes' chains of misses overlap instead of stalling one by one. settle() repairs the
  // fronts before poll() returns; nothing else runs on the wheel in between (on_due may file
  // records, which reads only a lane's sentinel and its last record). The record stays kLinked
  // and counted: poll() re-files it with both, or clears both before reporting it.
  uint32_t pop_front(uint32_t lane) {
    HostEntry& sentinel = pool_.get<HostEntry>(lane);
    const uint32_t index = static_cast<uint32_t>(sentinel.next);
    if (index == lane) return kNoIndex;
    HostEntry& r = pool_.get<HostEntry>(index);
    const uint32_t next = static_cast<uint32_t>(r.next);
    sentinel.next = next;
    if (next == lane) {
      sentinel.prev = lane;  // now empty: push_back reads prev
    } else {
      __builtin_prefetch(pool_.at(next), 1);
    }
    return index;
  }
  // Makes each lane of the slot a valid list again (see pop_front) and clears the slot's
  // occupied bit if it is empty.
  void settle(uint32_t level_slot) {
    const uint32_t lanes = first_sentinel_ + level_slot * kLanes;
    bool empty = true;
    for (uint32_t lane = lanes; lane < lanes + kLanes; ++lane) {
      if (HostList::empty(pool_, lane)) continue;
      pool_.get<HostEntry>(HostList::front(pool_, lane)).prev = lane;
      empty = false;
    }
    if (empty) occupied_[level_slot / kSlots] &= ~(uint64_t{1} << (level_slot % kSlots));
  }
  bool next_slot(uint32_t& level_out, uint32_t& slot_out, uint64_t& start_out) const;
  bool slot_empty(uint32_t level_slot) const {
    const uint32_t lanes = first_sentinel_ + level_slot * kLanes;
    for (uint32_t lane = lanes; lane < lanes + kLanes; ++lane) {
      if (!HostList::empty(pool_, lane)) return false;
    }
    return true;
  }

  SlabPool& pool_;
  bool lazy_;
  uint32_t first_sentinel_ = 0;
  uint32_t count_ = 0;
  uint32_t next_lane_ = 0;
  uint64_t elapsed_ = 0;
  // A lower bound on the start of the earliest non-empty slot (UINT64_MAX: none), so a poll
  // with nothing due, most of them, skips next_slot(): next_slot() sets it, file() lowers it,
  // and taking records off or re-filing them in a poll only makes the true start later.
  uint64_t earliest_ = std::numeric_limits<uint64_t>::max();
  std::array<uint64_t, kLevels> occupied_{};
};

static_assert(ExpiryIndex<TimingWheel>);

}  // namespace heartwatch
