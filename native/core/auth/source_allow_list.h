// The `allow` option: the source prefixes a receiver accepts datagrams from, checked before
// anything is parsed. An IPv4-mapped IPv6 source (::ffff:a.b.c.d, what a dual-stack socket
// reports for IPv4 peers) is matched as the IPv4 address it carries, so one IPv4 prefix covers a
// peer whichever socket family hears it; lib/options.ts folds a mapped prefix
// (::ffff:10.0.0.0/104) into its IPv4 form (10.0.0.0/8) for the same reason.
//
// Immutable after construction. Runs on: built on the JS thread, used by receiver threads.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <vector>

namespace heartwatch {

inline constexpr size_t kMaxAllowPrefixes = 256;

struct AddressPrefix {
  uint8_t family;       // 4 or 6
  uint8_t bits;         // prefix length: 0..32 (IPv4) or 0..128 (IPv6)
  uint8_t address[16];  // network order; IPv4 in the first 4 bytes
};

class SourceAllowList {
 public:
  // An empty list allows every source. Throws std::invalid_argument for a bad family or length.
  explicit SourceAllowList(std::vector<AddressPrefix> prefixes);

  bool empty() const noexcept { return v4_.empty() && v6_.empty(); }
  // Runs on: receiver thread; a linear scan, no allocation.
  bool allows(const sockaddr_storage& source) const noexcept;

 private:
  struct V4 {
    uint32_t network, mask;  // host order
  };
  struct V6 {
    uint64_t network[2], mask[2];  // host order, high then low half
  };
  bool allows_v4(uint32_t address) const noexcept;

  std::vector<V4> v4_;
  std::vector<V6> v6_;
};

}  // namespace heartwatch
