// One parsed heartbeat, already keyed by the receiver.
#pragma once

#include <cstdint>

#include "core/detector/peer_address.h"

namespace heartwatch {

struct Heartbeat {
  uint64_t key;  // non-zero host key (host_id, or derived from the address)
  PeerAddress address;
  uint32_t seq;
  uint32_t incarnation;
  uint32_t interval_ms;  // 0 = unknown: the detector uses its configured timeout
};

}  // namespace heartwatch
