// Where a host's last message came from, as the receiver saw it.
#pragma once

#include <cstdint>
#include <cstring>

namespace heartwatch {

struct PeerAddress {
  uint8_t family;  // 0 = unknown, 4 = IPv4, 6 = IPv6
  uint16_t port;   // host byte order
  uint8_t ip[16];  // IPv4 in ip[0..3], network order; the unused tail is zero

  friend bool operator==(const PeerAddress& a, const PeerAddress& b) {
    return a.family == b.family && a.port == b.port && std::memcmp(a.ip, b.ip, sizeof a.ip) == 0;
  }
};

}  // namespace heartwatch
