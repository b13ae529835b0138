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
// Each slot is kLanes lists; a record goes to the lane its index's low bits name. poll() drains
// a slot by taking its lanes off their sentinels whole and walking them in turn, one record per
// budget unit; a cut budget puts the rest back in front of the lanes. Re-filing is a push onto
// another slot's lane, its level found by two compares against bounds computed once per slot.
// Records are intrusive list nodes (HostEntry::prev/next), so the wheel allocates nothing past
// its sentinels: bounded memory under any input, O(1) remove().
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
  // Each slot is kLanes lists, drained in turn: draining one list is a chain of dependent cache
  // misses (each record names the next), eight lists are eight chains in flight at once.
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
      work += drain(level, slot, budget - work, deadline_of, on_due);
    }
    return work;
  }

  uint64_t elapsed() const { return elapsed_; }
  uint32_t size() const { return count_; }

 private:
  // A lane's list while its slot is drained: taken off its sentinel whole, walked by `next`.
  struct DetachedLane {
    uint32_t next;  // the next record to take off
    uint32_t last;  // the list's last record
  };

  // Takes up to `budget` records off the slot the clock has reached (elapsed_ is its start) and
  // returns how many. A record still ahead of the clock is re-filed against it; at level 0 one
  // whose deadline has come is reported. The lanes are detached first, so the slot is empty
  // while it drains (a record on_due files into it lands on the fresh lists and is taken at
  // the next turn of poll()'s loop), and walked in turn: each lane is a chain of dependent cache
  // misses (each record names the next), eight lanes keep eight in flight; the record after the
  // one taken is prefetched. What the budget leaves is put back in front of the lanes' lists
  // (any lane of the slot: a lane is only a share of it).
  // Nothing else runs on the wheel meanwhile: on_due only files records (never removes one).
  // Above level 0 nothing is reported, and that loop, the common re-file, has no call in it.
  template <class DeadlineOf, class OnDue>
  size_t drain(uint32_t level, uint32_t slot, size_t budget, DeadlineOf deadline_of, OnDue& on_due) {
    HostEntry* const records = HostList::records(pool_);
    const uint32_t first_lane = first_sentinel_ + (level * kSlots + slot) * kLanes;
    std::array<DetachedLane, kLanes> lanes;
    const uint32_t active = detach(records, first_lane, lanes);
    occupied_[level] &= ~(uint64_t{1} << slot);
    // Against this slot's time: never back into this slot, never before the clock.
    const auto refile = [this, records, level](uint32_t index, uint64_t deadline, const Reach& reach) {
      [[maybe_unused]] uint64_t opens;
      if (deadline < reach.level0) {
        opens = link(records, index, 0, std::max(deadline, reach.clock));
      } else if (deadline < reach.level1) {
        opens = link(records, index, 1, deadline);
      } else {
        const uint64_t at = std::min(deadline, reach.clock + kMaxSpan);
        opens = link(records, index, level_for(at, reach.clock), at);
      }
      assert(opens > reach.clock || (opens == reach.clock && level != 0));
    };
    DrainResult done;
    if (level == 0) {
      done = walk(records, lanes, active, budget, [&](uint32_t index) {
        const uint64_t deadline = deadline_of(index);
        // elapsed_, not a copy: on_due's insert() moves it when it finds the wheel empty.
        if (deadline > elapsed_) {
          refile(index, deadline, Reach(elapsed_));
          return;
        }
        records[index].clear(HostEntry::kLinked);
        --count_;
        on_due(index, deadline);
      });
    } else {
      // Computed once: elapsed_ is reloaded after every store into a record (it may alias them).
      const Reach reach(elapsed_);
      done = walk(records, lanes, active, budget,
                  [&](uint32_t index) { refile(index, deadline_of(index), reach); });
    }
    for (uint32_t k = 0; k < done.left; ++k) {
      HostList::push_front_chain(records, first_lane + k, lanes[k].next, lanes[k].last);
      occupied_[level] |= uint64_t{1} << slot;
    }
    return done.taken;
  }

  // Takes the non-empty lists of the kLanes sentinels from `first_lane` into `lanes`, leaving
  // each sentinel an empty list, and prefetches their first records. Returns how many.
  static uint32_t detach(HostEntry* records, uint32_t first_lane, std::array<DetachedLane, kLanes>& lanes) {
    uint32_t active = 0;
    for (uint32_t lane = first_lane; lane < first_lane + kLanes; ++lane) {
      HostEntry& sentinel = records[lane];
      const uint32_t first = static_cast<uint32_t>(sentinel.next);
      if (first == lane) continue;
      __builtin_prefetch(&records[first], 1);
      lanes[active++] = DetachedLane{first, static_cast<uint32_t>(sentinel.prev)};
      HostList::init(records, lane);
    }
    return active;
  }

  // Where levels 0 and 1 end for a clock: a deadline below level0 is filed at level 0, one
  // below level1 at level 1 (level_for()'s test, as two compares against the clock's bounds).
  struct Reach {
    explicit Reach(uint64_t c)
        : clock(c), level0(c + kSlots), level1(((c >> kSlotBits) + kSlots) << kSlotBits) {}
    uint64_t clock;
    uint64_t level0;
    uint64_t level1;
  };

  struct DrainResult {
    size_t taken;   // records handed to take()
    uint32_t left;  // lanes[0, left) still hold records
  };
  // Hands take() the records of the first `active` lanes, one record from each lane in turn,
  // until they are empty or `budget` records were taken. take() may overwrite the record's
  // links: its successor is read first.
  template <class Take>
  static DrainResult walk(HostEntry* records, std::array<DetachedLane, kLanes>& lanes, uint32_t active,
                          size_t budget, Take&& take) {
    size_t left = budget;
    for (uint32_t k = 0; active > 0 && left > 0; --left) {
      DetachedLane& lane = lanes[k];
      const uint32_t index = lane.next;
      if (index == lane.last) {
        lane = lanes[--active];  // and lanes[k] is the next one to take from
      } else {
        lane.next = static_cast<uint32_t>(records[index].next);
        __builtin_prefetch(&records[lane.next], 1);
        ++k;
      }
      if (k >= active) k = 0;
      take(index);
    }
    return DrainResult{budget - left, active};
  }

  void file(uint32_t index, uint64_t deadline) {
    HostEntry* const records = HostList::records(pool_);
    deadline = std::clamp(deadline, elapsed_, elapsed_ + kMaxSpan);
    earliest_ = std::min(earliest_, link(records, index, level_for(deadline, elapsed_), deadline));
    records[index].set(HostEntry::kLinked);
    ++count_;
  }
  // Links the record into `deadline`'s slot of `level` and returns when that slot opens; its
  // kLinked flag, count_ and earliest_ are the caller's (a re-filed record keeps the first two,
  // so a cascade does not clear and set them again, and during a poll earliest_ is at most the
  // clock, below every slot a record can be filed in). The lane is the record index's low bits:
  // lanes only need filling evenly.
  uint64_t link(HostEntry* records, uint32_t index, uint32_t level, uint64_t deadline) {
    const uint32_t slot = static_cast<uint32_t>(deadline >> (level * kSlotBits)) & (kSlots - 1);
    const uint32_t lane = first_sentinel_ + (level * kSlots + slot) * kLanes + (index & (kLanes - 1));
    HostList::push_back(records, lane, index);
    occupied_[level] |= uint64_t{1} << slot;
    // The slot opens at the deadline with the digits below its level cleared.
    return deadline & ~((uint64_t{1} << (level * kSlotBits)) - 1);
  }

  // The lowest level whose 64 slots from the clock's reach `deadline` (in [clock, clock +
  // kMaxSpan]): where the deadline's slot number is less than 64 past the clock's. Levels 0 and
  // 1 (the common re-file, 2-3 s ahead) are tried first with constant shifts, fewer instructions
  // than deriving the level from the distance's highest bit. At level L >= 1 the slot number one
  // level down is at least 64 past the clock's, so at L it is at least one past: never the
  // clock's own.
  static uint32_t level_for(uint64_t deadline, uint64_t clock) {
    if (deadline - clock < kSlots) return 0;
    if ((deadline >> kSlotBits) - (clock >> kSlotBits) < kSlots) return 1;
    uint32_t level = 2;
    while ((deadline >> (level * kSlotBits)) - (clock >> (level * kSlotBits)) >= kSlots) ++level;
    assert(level < kLevels);  // kMaxSpan keeps level 5's slot within 63 of the clock's
    return level;
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
  uint64_t elapsed_ = 0;
  // A lower bound on the start of the earliest non-empty slot (UINT64_MAX: none), so a poll
  // with nothing due, most of them, skips next_slot(): next_slot() sets it, file() lowers it,
  // and taking records off or re-filing them in a poll only makes the true start later.
  uint64_t earliest_ = std::numeric_limits<uint64_t>::max();
  std::array<uint64_t, kLevels> occupied_{};
};

static_assert(ExpiryIndex<TimingWheel>);

}  // namespace heartwatch
