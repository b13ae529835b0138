#include "core/detector/expiry_fifo.h"

#include <stdexcept>

namespace heartwatch {

ExpiryFifo::ExpiryFifo(SlabPool& pool) : pool_(pool) {
  for (uint32_t& sentinel : lanes_) {
    sentinel = pool_.allocate();
    if (sentinel == kNoIndex) throw std::length_error("ExpiryFifo: pool too small for its sentinels");
    HostList::init(pool_, sentinel);
  }
}

}  // namespace heartwatch
