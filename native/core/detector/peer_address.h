// Where a host's last message came from, as the receiver saw it.
#pragma once

#include <cstdint>
#include <cstring>

namespace heartwatch {

// PeerAddress::family values; the addon exports them (`contract.family`).
inline constexpr uint8_t kFamilyUnknown = 0, kFamilyIpv4 = 4, kFamilyIpv6 = 6;

struct PeerAddress {
  uint8_t family;  // kFamilyUnknown, kFamilyIpv4 or kFamilyIpv6
  uint16_t port;   // host byte order
  uint8_t ip[16];  // IPv4 in ip[0..3], network order; the unused tail is zero

  friend bool operator==(const PeerAddress& a, const PeerAddress& b) {
    return a.family == b.family && a.port == b.port && std::memcmp(a.ip, b.ip, sizeof a.ip) == 0;
  }
};

}  // namespace heartwatch
