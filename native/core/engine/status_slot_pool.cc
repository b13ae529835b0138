#include "core/engine/status_slot_pool.h"

namespace heartwatch {

uint16_t StatusSlotPool::take() {
  if (!free_.empty()) {
    const uint16_t slot = free_.back();
    free_.pop_back();
    return slot;
  }
  if (slots_.size() == kSlots) return kNone;
  // The first time this many are in flight: grow by one (an allocation off the common path,
  // which a status split across reads is not on).
  if (slots_.empty()) {
    slots_.reserve(kSlots);
    free_.reserve(kSlots);
  }
  slots_.emplace_back(new uint8_t[slot_bytes_]);
  return static_cast<uint16_t>(slots_.size() - 1);
}

}  // namespace heartwatch
