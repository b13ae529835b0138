// One parsed heartbeat, already keyed by the receiver.
#pragma once

#include <cstdint>

#include "core/detector/peer_address.h"

namespace heartwatch {

// Incarnation 0 means "not known": a plain datagram in address/ip identity, or a sender that
// does not track restarts. It never causes a restart event and never replaces a known value.
inline constexpr uint32_t kUnknownIncarnation = 0;

struct Heartbeat {
  uint64_t key;  // non-zero host key (host_id, or derived from the address)
  PeerAddress address;
  uint32_t seq;
  uint32_t incarnation;  // kUnknownIncarnation when the datagram carries none
  uint32_t interval_ms;  // 0 = unknown: the detector uses its configured timeout
  bool authenticated;    // its tag matched a key: seq and incarnation are checked for replay
};

}  // namespace heartwatch
