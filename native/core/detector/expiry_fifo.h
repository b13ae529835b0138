// Expiry index for one uniform timeout: records in last-heartbeat order on doubly-linked lists.
//
// With one timeout, deadline order is arrival order, so a heartbeat moves its record to the
// back of the kAlive lane (O(1)) and the front is always the next host to time out (O(1) to
// check, O(k) for k expiries). Down hosts waiting to be forgotten sit on two more lanes, each
// also in deadline order: timed-out hosts (down since last_seen + timeout) and hosts that left
// (down since their leave). poll() merges the three fronts.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>

#include "core/detector/expiry_index.h"
#include "core/detector/host_list.h"
#include "core/detector/host_entry.h"
#include "core/detector/slab_pool.h"

namespace heartwatch {

class ExpiryFifo {
 public:
  static constexpr uint32_t kSentinels = kExpiryLanes;

  // Takes kSentinels records from the pool for the lanes' list heads.
  // Runs on: worker thread.
  explicit ExpiryFifo(SlabPool& pool);

  // Appends to `lane`; `deadline` must be >= every deadline already on that lane.
  // Runs on: worker thread.
  void insert(uint32_t index, uint64_t /*deadline*/, ExpiryLane lane, uint64_t /*now*/) {
    HostList::push_back(pool_, lanes_[static_cast<uint32_t>(lane)], index);
    pool_.get<HostEntry>(index).set(HostEntry::kLinked);
  }

  // Runs on: worker thread.
  void remove(uint32_t index) {
    HostList::unlink(pool_, index);
    pool_.get<HostEntry>(index).clear(HostEntry::kLinked);
  }

  // A heartbeat: the record becomes the newest on kAlive.
  // Runs on: worker thread.
  void rearm(uint32_t index, uint64_t /*old_deadline*/, uint64_t /*new_deadline*/, uint64_t /*now*/) {
    const uint32_t alive = lanes_[0];
    if (pool_.get<HostEntry>(alive).prev == index) return;
    HostList::unlink(pool_, index);
    HostList::push_back(pool_, alive, index);
  }

  // A heartbeat with the host's timeout unchanged: the same as rearm().
  // Runs on: worker thread.
  void extend(uint32_t index, uint64_t new_deadline, uint64_t now) { rearm(index, 0, new_deadline, now); }

  // Runs on: worker thread.
  template <class DeadlineOf>
  uint64_t next_deadline(DeadlineOf&& deadline_of) const {
    uint64_t best = std::numeric_limits<uint64_t>::max();
    for (uint32_t sentinel : lanes_) {
      if (!HostList::empty(pool_, sentinel)) {
        const uint64_t d = deadline_of(HostList::front(pool_, sentinel));
        if (d < best) best = d;
      }
    }
    return best;
  }

  // Runs on: worker thread.
  template <class DeadlineOf, class OnDue>
  size_t poll(uint64_t now, size_t budget, DeadlineOf&& deadline_of, OnDue&& on_due) {
    size_t work = 0;
    while (work < budget) {
      uint32_t best = kNoIndex;
      uint64_t best_deadline = std::numeric_limits<uint64_t>::max();
      for (uint32_t sentinel : lanes_) {
        if (HostList::empty(pool_, sentinel)) continue;
        const uint32_t front = HostList::front(pool_, sentinel);
        const uint64_t d = deadline_of(front);
        if (d < best_deadline) {
          best = front;
          best_deadline = d;
        }
      }
      if (best == kNoIndex || best_deadline > now) break;
      remove(best);
      ++work;
      on_due(best, best_deadline);
    }
    return work;
  }

 private:
  SlabPool& pool_;
  std::array<uint32_t, kExpiryLanes> lanes_;
};

static_assert(ExpiryIndex<ExpiryFifo>);

}  // namespace heartwatch
