#include "core/protocol/heartbeat_parser.h"

#include <netinet/in.h>

#include <bit>
#include <cstring>

namespace heartwatch {
namespace {

// The first four bytes read as one big-endian word: magic "HW", version 1, and flags with only
// LEAVE and AUTH allowed; masking off those two bits leaves exactly this value.
constexpr uint32_t kLeadWord = 0x48570100;
constexpr uint32_t kLeadWordMask = ~uint32_t{kHeartbeatFlagLeave | kHeartbeatFlagAuth};

template <typename T>
T load_be(const uint8_t* p) noexcept {
  T value;
  std::memcpy(&value, p, sizeof(T));
  if constexpr (std::endian::native == std::endian::little) {
    if constexpr (sizeof(T) == 8) return static_cast<T>(__builtin_bswap64(value));
    if constexpr (sizeof(T) == 4) return static_cast<T>(__builtin_bswap32(value));
    if constexpr (sizeof(T) == 2) return static_cast<T>(__builtin_bswap16(value));
  }
  return value;
}

// The splitmix64 / Stafford "mix13" finalizer: a bijection on 64 bits with full avalanche.
constexpr uint64_t mix64(uint64_t x) noexcept {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

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

ParseStatus parse_heartbeat_header_v1(const uint8_t* data, ParsedHeartbeat& out,
                                      size_t& message_bytes) noexcept {
  const uint32_t lead = load_be<uint32_t>(data);
  const uint8_t flags = data[3];
  out.host_id = load_be<uint64_t>(data + 4);
  out.incarnation = load_be<uint32_t>(data + 12);
  out.seq = load_be<uint32_t>(data + 16);
  out.interval_ms = load_be<uint32_t>(data + 20);
  out.payload_len = load_be<uint16_t>(data + 24);
  out.leave = (flags & kHeartbeatFlagLeave) != 0;
  out.auth = (flags & kHeartbeatFlagAuth) != 0;
  message_bytes = kHeartbeatHeaderBytes + size_t{out.payload_len} + (out.auth ? kAuthTagBytes : 0);
  // One combined test instead of a branch per rule: the rules fail together on garbage.
  const bool valid = ((lead & kLeadWordMask) == kLeadWord) & (load_be<uint16_t>(data + 26) == 0) &
                     (out.host_id != 0);
  return valid ? ParseStatus::kOk : ParseStatus::kMalformed;
}

ParseStatus parse_heartbeat_v1(const uint8_t* data, size_t length, ParsedHeartbeat& out) noexcept {
  if (length < kHeartbeatHeaderBytes) return ParseStatus::kMalformed;
  size_t expected = 0;
  if (parse_heartbeat_header_v1(data, out, expected) != ParseStatus::kOk) return ParseStatus::kMalformed;
  if (length == expected) return ParseStatus::kOk;
  const bool tag_short = out.auth && length >= expected - kAuthTagBytes && length < expected;
  return tag_short ? ParseStatus::kTagTruncated : ParseStatus::kMalformed;
}

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

uint64_t shard_hash(uint64_t key) noexcept { return mix64(key); }

}  // namespace heartwatch
