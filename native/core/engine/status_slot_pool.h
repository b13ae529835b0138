// Room for the statuses that span reads on a reactor's TCP connections. A status wholly inside
// one read is passed on from the read buffer in place and needs none of this; one whose bytes
// come over several reads is gathered in a slot of `max_status_bytes` until its frame completes.
// At most kSlots are taken at once, each allocated the first time it is taken and kept for the
// next, so the pool holds only as much as the most statuses ever in flight at once, and at most
// kSlots x max_status_bytes (256 KiB at the default 1 KiB, 16 MiB at the largest limit). Past
// kSlots the caller refuses the status and keeps the beat (TcpReactor, tcp.statusSlotsFull).
//
// Runs on: the owning reactor thread, for every member.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

namespace heartwatch {

class StatusSlotPool {
 public:
  static constexpr uint16_t kSlots = 256;
  static constexpr uint16_t kNone = 0xffff;

  // Before the first take(); 0 (statuses off) leaves the pool unused.
  void set_slot_bytes(uint32_t slot_bytes) noexcept { slot_bytes_ = slot_bytes; }
  // A free slot, or kNone when all kSlots are taken.
  uint16_t take();
  void release(uint16_t slot) noexcept { free_.push_back(slot); }
  uint8_t* bytes(uint16_t slot) noexcept { return slots_[slot].get(); }
  // Slots whose bytes have been allocated: the most ever taken at once.
  uint32_t allocated() const noexcept { return static_cast<uint32_t>(slots_.size()); }

 private:
  uint32_t slot_bytes_ = 0;
  std::vector<std::unique_ptr<uint8_t[]>> slots_;
  std::vector<uint16_t> free_;  // released slots, reused last-in first-out (warm in cache)
};

}  // namespace heartwatch
