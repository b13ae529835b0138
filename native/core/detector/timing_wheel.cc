#include "core/detector/timing_wheel.h"

#include <stdexcept>

namespace heartwatch {

TimingWheel::TimingWheel(SlabPool& pool, bool lazy) : pool_(pool), lazy_(lazy) {
  for (uint32_t n = 0; n < kSentinels; ++n) {
    const uint32_t sentinel = pool_.allocate();
    if (sentinel == kNoIndex) throw std::length_error("TimingWheel: pool too small for its sentinels");
    // The slot arithmetic needs the sentinels contiguous; a fresh pool hands out ascending indices.
    if (n == 0) {
      first_sentinel_ = sentinel;
    } else if (sentinel != first_sentinel_ + n) {
      throw std::logic_error("TimingWheel: needs a fresh pool");
    }
    HostList::init(pool_, sentinel);
  }
}

bool TimingWheel::next_slot(uint32_t& level_out, uint32_t& slot_out, uint64_t& start_out) const {
  bool found = false;
  for (uint32_t level = 0; level < kLevels; ++level) {
    const uint64_t occupied = occupied_[level];
    if (occupied == 0) continue;
    const uint32_t shift = level * kSlotBits;
    const uint32_t now_slot = static_cast<uint32_t>(elapsed_ >> shift) & (kSlots - 1);
    const uint32_t slot = (now_slot + static_cast<uint32_t>(std::countr_zero(std::rotr(occupied, static_cast<int>(now_slot))))) & (kSlots - 1);
    const uint64_t level_span = uint64_t{1} << (shift + kSlotBits);
    uint64_t start = (elapsed_ & ~(level_span - 1)) + (uint64_t{slot} << shift);
    // A slot behind the clock's belongs to the level's next turn (records are filed up to 63
    // slots ahead of the clock's at every level, see level_for()).
    if (slot < now_slot) start += level_span;
    // Earliest start wins; on a tie the higher level goes first, so a slot is fully cascaded
    // before anything it feeds into the levels below is reported.
    if (!found || start <= start_out) {
      found = true;
      level_out = level;
      slot_out = slot;
      start_out = start;
    }
  }
  return found;
}

}  // namespace heartwatch
