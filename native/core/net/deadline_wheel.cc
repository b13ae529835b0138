#include "core/net/deadline_wheel.h"

namespace heartwatch {

DeadlineWheel::DeadlineWheel(uint64_t now_ms) : heads_(kSlots, kNone), tick_(now_ms / kSlotMs) {}

void DeadlineWheel::arm(uint32_t id, uint64_t deadline_ms) {
  if (id >= nodes_.size()) nodes_.resize(id + 1, Node{0, kNone, kNone, 0, false});
  Node& node = nodes_[id];
  if (node.armed) {
    const bool later = deadline_ms >= node.deadline;
    node.deadline = deadline_ms;
    if (later) return;  // lazy: re-filed when its old slot comes due
    unlink(id);
  } else {
    node.deadline = deadline_ms;
    node.armed = true;
    ++count_;
  }
  file(id);
}

void DeadlineWheel::disarm(uint32_t id) noexcept {
  if (!armed(id)) return;
  unlink(id);
  nodes_[id].armed = false;
  --count_;
}

void DeadlineWheel::file(uint32_t id) noexcept {
  Node& node = nodes_[id];
  // Round up: the slot for tick t opens at t * kSlotMs, when every deadline in it has passed.
  uint64_t tick = (node.deadline + kSlotMs - 1) / kSlotMs;
  if (tick <= tick_) tick = tick_ + 1;
  if (tick - tick_ >= kSlots) tick = tick_ + kSlots - 1;
  node.slot = static_cast<uint32_t>(tick % kSlots);
  node.prev = kNone;
  node.next = heads_[node.slot];
  if (node.next != kNone) nodes_[node.next].prev = id;
  heads_[node.slot] = id;
}

void DeadlineWheel::unlink(uint32_t id) noexcept {
  Node& node = nodes_[id];
  if (node.prev != kNone) {
    nodes_[node.prev].next = node.next;
  } else {
    heads_[node.slot] = node.next;
  }
  if (node.next != kNone) nodes_[node.next].prev = node.prev;
}

}  // namespace heartwatch
