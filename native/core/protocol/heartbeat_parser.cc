#include "core/protocol/heartbeat_parser.h"

#include <netinet/in.h>

#include <cstring>

namespace heartwatch {
namespace {

using protocol_detail::load_be;
using protocol_detail::mix64;

constexpr uint64_t kIpv6KeyBit = uint64_t{1} << 63;

constexpr uint64_t ipv4_key(uint32_t address_host_order, uint16_t port, bool with_port) noexcept {
  return with_port ? (uint64_t{address_host_order} << 16) | port : uint64_t{address_host_order};
}

// Each step feeds the running state through a bijection before folding in the next word, so
// for any fixed prefix, distinct suffixes give distinct states: no input zeroes the hash the
// way a plain multiply of two input words can.
uint64_t ipv6_key(const sockaddr_in6& source, bool with_port) noexcept {
  const uint8_t* address = source.sin6_addr.s6_addr;
  const uint64_t port = with_port ? ntohs(source.sin6_port) : 0;
  uint64_t h = mix64(load_be<uint64_t>(address) ^ 0x9e3779b97f4a7c15ULL);
  h = mix64(h ^ load_be<uint64_t>(address + 8));
  h = mix64(h ^ (port << 32));
  return h | kIpv6KeyBit;
}

bool is_v4_mapped(const sockaddr_in6& source) noexcept {
  static constexpr uint8_t kPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return std::memcmp(source.sin6_addr.s6_addr, kPrefix, sizeof kPrefix) == 0;
}

}  // namespace

uint64_t identity_key(IdentityMode mode, uint64_t host_id, const sockaddr* source) noexcept {
  if (mode == IdentityMode::kId) return host_id;
  if (source == nullptr) return 0;
  const bool with_port = mode == IdentityMode::kAddress;
  if (source->sa_family == AF_INET) {
    sockaddr_in v4;
    std::memcpy(&v4, source, sizeof v4);
    return ipv4_key(ntohl(v4.sin_addr.s_addr), ntohs(v4.sin_port), with_port);
  }
  if (source->sa_family == AF_INET6) {
    sockaddr_in6 v6;
    std::memcpy(&v6, source, sizeof v6);
    if (is_v4_mapped(v6)) {
      return ipv4_key(load_be<uint32_t>(v6.sin6_addr.s6_addr + 12), ntohs(v6.sin6_port), with_port);
    }
    return ipv6_key(v6, with_port);
  }
  return 0;
}

}  // namespace heartwatch
