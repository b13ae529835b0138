#include "core/auth/source_allow_list.h"

#include <netinet/in.h>

#include <cstring>
#include <stdexcept>

namespace heartwatch {
namespace {

uint64_t load_be64(const uint8_t* p) noexcept {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | p[i];
  return v;
}

uint32_t load_be32(const uint8_t* p) noexcept {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

// The top `bits` of a 64-bit half set (bits may be outside 0..64: clamped).
uint64_t half_mask(int bits) noexcept {
  if (bits <= 0) return 0;
  if (bits >= 64) return ~uint64_t{0};
  return ~uint64_t{0} << (64 - bits);
}

}  // namespace

SourceAllowList::SourceAllowList(std::vector<AddressPrefix> prefixes) {
  if (prefixes.size() > kMaxAllowPrefixes) throw std::invalid_argument("allow: too many prefixes");
  for (const AddressPrefix& p : prefixes) {
    if (p.family == 4 && p.bits <= 32) {
      const uint32_t mask = p.bits == 0 ? 0 : ~uint32_t{0} << (32 - p.bits);
      v4_.push_back({load_be32(p.address) & mask, mask});
    } else if (p.family == 6 && p.bits <= 128) {
      V6 v{};
      v.mask[0] = half_mask(p.bits);
      v.mask[1] = half_mask(p.bits - 64);
      v.network[0] = load_be64(p.address) & v.mask[0];
      v.network[1] = load_be64(p.address + 8) & v.mask[1];
      v6_.push_back(v);
    } else {
      throw std::invalid_argument("allow: a prefix must be IPv4 /0-32 or IPv6 /0-128");
    }
  }
}

bool SourceAllowList::allows_v4(uint32_t address) const noexcept {
  for (const V4& p : v4_) {
    if ((address & p.mask) == p.network) return true;
  }
  return false;
}

bool SourceAllowList::allows(const sockaddr_storage& source) const noexcept {
  if (empty()) return true;
  if (source.ss_family == AF_INET) {
    const auto& v4 = reinterpret_cast<const sockaddr_in&>(source);
    return allows_v4(ntohl(v4.sin_addr.s_addr));
  }
  if (source.ss_family != AF_INET6) return false;
  const auto& v6 = reinterpret_cast<const sockaddr_in6&>(source);
  const uint8_t* bytes = v6.sin6_addr.s6_addr;
  if (IN6_IS_ADDR_V4MAPPED(&v6.sin6_addr)) return allows_v4(load_be32(bytes + 12));
  const uint64_t high = load_be64(bytes), low = load_be64(bytes + 8);
  for (const V6& p : v6_) {
    if ((high & p.mask[0]) == p.network[0] && (low & p.mask[1]) == p.network[1]) return true;
  }
  return false;
}

}  // namespace heartwatch
