// A single-level hashed timing wheel for connection deadlines (handshake, idle, slow frame),
// owned by one reactor thread: 2048 slots of 32 ms, a 65.5 s window.
//
// Entries are small integer ids (the reactor's connection slots) kept in intrusive doubly
// linked lists, so arming, re-arming and disarming are O(1) with no allocation once the id
// space has grown. Deadlines round up to the slot boundary and an entry fires only once its
// deadline has passed: never early, late by at most one slot plus the caller's poll period.
// A deadline beyond the window is parked in the window's last slot and re-filed when that slot
// comes due. Re-arming to a later deadline is lazy (only the stored deadline changes; the entry
// is re-filed when its old slot comes due), because every frame on a busy connection pushes its
// idle deadline out: that case costs one store.
#pragma once

#include <cstdint>
#include <limits>
#include <vector>

namespace heartwatch {

class DeadlineWheel {
 public:
  static constexpr uint32_t kSlots = 2048;
  static constexpr uint64_t kSlotMs = 32;
  static constexpr uint32_t kNone = std::numeric_limits<uint32_t>::max();

  // `now_ms` starts the wheel's clock.
  // Runs on: the owning thread, for every member.
  explicit DeadlineWheel(uint64_t now_ms);

  // Sets id's deadline (absolute ms on the caller's monotonic clock), filing it if needed.
  void arm(uint32_t id, uint64_t deadline_ms);
  void disarm(uint32_t id) noexcept;
  bool armed(uint32_t id) const noexcept { return id < nodes_.size() && nodes_[id].armed; }
  uint64_t deadline(uint32_t id) const noexcept { return nodes_[id].deadline; }
  uint32_t size() const noexcept { return count_; }

  // Moves the clock to `now_ms` and calls `fire(id)` for every entry whose deadline is at or
  // before it, disarmed first (so `fire` may arm it again; it must not disarm other ids).
  // Returns how many fired.
  template <typename Fire>
  uint32_t advance(uint64_t now_ms, Fire&& fire);

 private:
  struct Node {
    uint64_t deadline;
    uint32_t prev, next;
    uint32_t slot;
    bool armed;
  };

  void file(uint32_t id) noexcept;
  void unlink(uint32_t id) noexcept;

  std::vector<Node> nodes_;
  std::vector<uint32_t> heads_;
  uint64_t tick_;  // the last slot boundary processed: now_ms / kSlotMs
  uint32_t count_ = 0;
};

template <typename Fire>
uint32_t DeadlineWheel::advance(uint64_t now_ms, Fire&& fire) {
  const uint64_t target = now_ms / kSlotMs;
  if (target <= tick_) return 0;
  // Past a whole turn every slot is visited once: each entry is then either due or re-filed.
  const uint64_t from = target - tick_ > kSlots ? target - kSlots : tick_;
  tick_ = target;
  uint32_t fired = 0;
  for (uint64_t t = from + 1; t <= target; ++t) {
    const uint32_t slot = static_cast<uint32_t>(t % kSlots);
    uint32_t id = heads_[slot];
    heads_[slot] = kNone;
    while (id != kNone) {
      const uint32_t next = nodes_[id].next;
      Node& node = nodes_[id];
      node.armed = false;
      --count_;
      if (node.deadline <= now_ms) {
        ++fired;
        fire(id);
      } else {
        node.armed = true;
        ++count_;
        file(id);
      }
      id = next;
    }
  }
  return fired;
}

}  // namespace heartwatch
