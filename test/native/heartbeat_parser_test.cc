#include "core/protocol/heartbeat_parser.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <unordered_set>
#include <vector>

namespace heartwatch {
namespace {

// Builds datagrams byte by byte from the spec table, independently of the parser.
struct Datagram {
  uint8_t flags = 0;
  uint64_t host_id = 0x0102030405060708ULL;
  uint32_t incarnation = 0x11223344;
  uint32_t seq = 0xA1B2C3D4;
  uint32_t interval_ms = 0x00001388;
  uint16_t reserved = 0;
  std::vector<uint8_t> payload;

  std::vector<uint8_t> bytes(bool with_tag = false) const {
    std::vector<uint8_t> out = {0x48, 0x57, 0x01, flags};
    for (int i = 7; i >= 0; --i) out.push_back(static_cast<uint8_t>(host_id >> (8 * i)));
    for (uint32_t v : {incarnation, seq, interval_ms}) {
      for (int i = 3; i >= 0; --i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
    }
    out.push_back(static_cast<uint8_t>(payload.size() >> 8));
    out.push_back(static_cast<uint8_t>(payload.size()));
    out.push_back(static_cast<uint8_t>(reserved >> 8));
    out.push_back(static_cast<uint8_t>(reserved));
    out.insert(out.end(), payload.begin(), payload.end());
    if (with_tag) out.insert(out.end(), kAuthTagBytes, 0xEE);
    return out;
  }
};

ParseStatus parse(const std::vector<uint8_t>& bytes, ParsedHeartbeat& out) {
  return parse_heartbeat_v1(bytes.data(), bytes.size(), out);
}

ParseStatus parse(const std::vector<uint8_t>& bytes) {
  ParsedHeartbeat out{};
  return parse(bytes, out);
}

TEST(HeartbeatParser, DecodesEveryFieldBigEndian) {
  Datagram d;
  d.payload = {1, 2, 3, 4, 5};
  ParsedHeartbeat out{};
  ASSERT_EQ(parse(d.bytes(), out), ParseStatus::kOk);
  EXPECT_EQ(out.host_id, 0x0102030405060708ULL);
  EXPECT_EQ(out.incarnation, 0x11223344u);
  EXPECT_EQ(out.seq, 0xA1B2C3D4u);
  EXPECT_EQ(out.interval_ms, 5000u);
  EXPECT_EQ(out.payload_len, 5u);
  EXPECT_FALSE(out.leave);
}

TEST(HeartbeatParser, AcceptsHeaderOnlyAndLargestPayload) {
  Datagram d;
  EXPECT_EQ(d.bytes().size(), kHeartbeatHeaderBytes);
  EXPECT_EQ(parse(d.bytes()), ParseStatus::kOk);
  d.payload.assign(65535, 0xAB);
  ParsedHeartbeat out{};
  EXPECT_EQ(parse(d.bytes(), out), ParseStatus::kOk);
  EXPECT_EQ(out.payload_len, 65535u);
}

TEST(HeartbeatParser, IntervalZeroAndExtremeValuesAreValid) {
  Datagram d;
  d.interval_ms = 0;
  d.incarnation = 0;
  d.seq = 0xFFFFFFFF;
  d.host_id = UINT64_MAX;
  ParsedHeartbeat out{};
  ASSERT_EQ(parse(d.bytes(), out), ParseStatus::kOk);
  EXPECT_EQ(out.interval_ms, 0u);
  EXPECT_EQ(out.incarnation, 0u);
  EXPECT_EQ(out.seq, 0xFFFFFFFFu);
  EXPECT_EQ(out.host_id, UINT64_MAX);
}

TEST(HeartbeatParser, RejectsEveryLengthShorterThanTheHeader) {
  const std::vector<uint8_t> full = Datagram{}.bytes();
  for (size_t length = 0; length < kHeartbeatHeaderBytes; ++length) {
    ParsedHeartbeat out{};
    EXPECT_EQ(parse_heartbeat_v1(full.data(), length, out), ParseStatus::kMalformed) << length;
  }
}

TEST(HeartbeatParser, LengthMustMatchPayloadLenExactly) {
  for (size_t n : {size_t{0}, size_t{1}, size_t{16}, size_t{300}}) {
    Datagram d;
    d.payload.assign(n, 0x5A);
    std::vector<uint8_t> bytes = d.bytes();
    bytes.resize(bytes.size() + kAuthTagBytes + 1, 0);
    for (size_t length = kHeartbeatHeaderBytes; length < bytes.size(); ++length) {
      ParsedHeartbeat out{};
      const ParseStatus expected =
          length == kHeartbeatHeaderBytes + n ? ParseStatus::kOk : ParseStatus::kMalformed;
      EXPECT_EQ(parse_heartbeat_v1(bytes.data(), length, out), expected) << n << " " << length;
    }
  }
}

TEST(HeartbeatParser, PayloadLenLargerThanTheDatagramIsMalformed) {
  std::vector<uint8_t> bytes = Datagram{}.bytes();
  bytes[24] = 0xFF;
  bytes[25] = 0xFF;
  EXPECT_EQ(parse(bytes), ParseStatus::kMalformed);
}

TEST(HeartbeatParser, MagicAndVersionMustMatch) {
  const std::vector<uint8_t> good = Datagram{}.bytes();
  for (size_t byte = 0; byte < 3; ++byte) {
    for (int value = 0; value < 256; ++value) {
      std::vector<uint8_t> bytes = good;
      bytes[byte] = static_cast<uint8_t>(value);
      const ParseStatus expected =
          value == good[byte] ? ParseStatus::kOk : ParseStatus::kMalformed;
      EXPECT_EQ(parse(bytes), expected) << "byte " << byte << " value " << value;
    }
  }
}

TEST(HeartbeatParser, EveryReservedFlagBitIsMalformed) {
  for (int bit = 2; bit < 8; ++bit) {
    for (uint8_t known : {0, 1, 2, 3}) {
      Datagram d;
      d.flags = static_cast<uint8_t>(known | (1 << bit));
      EXPECT_EQ(parse(d.bytes(false)), ParseStatus::kMalformed) << bit;
      EXPECT_EQ(parse(d.bytes(true)), ParseStatus::kMalformed) << bit;
    }
  }
}

TEST(HeartbeatParser, EveryReservedFieldBitIsMalformed) {
  for (int bit = 0; bit < 16; ++bit) {
    Datagram d;
    d.reserved = static_cast<uint16_t>(1u << bit);
    EXPECT_EQ(parse(d.bytes()), ParseStatus::kMalformed) << bit;
  }
}

TEST(HeartbeatParser, HostIdZeroIsMalformed) {
  Datagram d;
  d.host_id = 0;
  EXPECT_EQ(parse(d.bytes()), ParseStatus::kMalformed);
  d.flags = kHeartbeatFlagAuth;
  EXPECT_EQ(parse(d.bytes(true)), ParseStatus::kMalformed);
  d.host_id = 1;
  EXPECT_EQ(parse(d.bytes(true)), ParseStatus::kOk);
}

TEST(HeartbeatParser, LeaveFlagIsReported) {
  Datagram d;
  d.flags = kHeartbeatFlagLeave;
  d.payload = {9, 9};
  ParsedHeartbeat out{};
  ASSERT_EQ(parse(d.bytes(), out), ParseStatus::kOk);
  EXPECT_TRUE(out.leave);
  EXPECT_EQ(out.payload_len, 2u);
}

TEST(HeartbeatParser, WellFormedAuthIsDecodedWithItsTagLeftToTheReceiver) {
  for (uint8_t flags : {kHeartbeatFlagAuth, uint8_t{kHeartbeatFlagAuth | kHeartbeatFlagLeave}}) {
    Datagram d;
    d.flags = flags;
    d.payload = {7, 7, 7};
    ParsedHeartbeat out{};
    ASSERT_EQ(parse(d.bytes(true), out), ParseStatus::kOk);
    EXPECT_TRUE(out.auth);
    EXPECT_EQ(out.host_id, d.host_id);
    EXPECT_EQ(out.seq, d.seq);
    EXPECT_EQ(out.payload_len, 3u);
    EXPECT_EQ(out.leave, (flags & kHeartbeatFlagLeave) != 0);
  }
}

// Shorter than the tag but not shorter than the payload: a truncated tag (a failed tag when the
// server has keys); anything else off by a byte is malformed.
TEST(HeartbeatParser, AuthNeedsExactlyTheTagLength) {
  Datagram d;
  d.flags = kHeartbeatFlagAuth;
  d.payload = {1};
  std::vector<uint8_t> bytes = d.bytes(true);
  bytes.push_back(0);
  for (size_t length = kHeartbeatHeaderBytes; length < bytes.size(); ++length) {
    ParsedHeartbeat out{};
    const size_t unsigned_length = kHeartbeatHeaderBytes + 1;
    const ParseStatus expected = length == unsigned_length + kAuthTagBytes ? ParseStatus::kOk
                                 : length >= unsigned_length && length < unsigned_length + kAuthTagBytes
                                     ? ParseStatus::kTagTruncated
                                     : ParseStatus::kMalformed;
    EXPECT_EQ(parse_heartbeat_v1(bytes.data(), length, out), expected) << length;
  }
}

sockaddr_in v4(const char* text, uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  EXPECT_EQ(inet_pton(AF_INET, text, &a.sin_addr), 1);
  return a;
}

sockaddr_in6 v6(const char* text, uint16_t port, uint32_t scope = 0) {
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_port = htons(port);
  a.sin6_scope_id = scope;
  EXPECT_EQ(inet_pton(AF_INET6, text, &a.sin6_addr), 1);
  return a;
}

uint64_t key(IdentityMode mode, const sockaddr_in& a) {
  return identity_key(mode, 0, reinterpret_cast<const sockaddr*>(&a));
}

uint64_t key(IdentityMode mode, const sockaddr_in6& a) {
  return identity_key(mode, 0, reinterpret_cast<const sockaddr*>(&a));
}

constexpr uint64_t kTopBit = uint64_t{1} << 63;

TEST(IdentityKey, IdModeIsTheHostIdWhateverTheSource) {
  const sockaddr_in a = v4("10.0.0.1", 9);
  EXPECT_EQ(identity_key(IdentityMode::kId, 42, reinterpret_cast<const sockaddr*>(&a)), 42u);
  EXPECT_EQ(identity_key(IdentityMode::kId, UINT64_MAX, nullptr), UINT64_MAX);
}

TEST(IdentityKey, Ipv4PacksAddressAndPortExactly) {
  EXPECT_EQ(key(IdentityMode::kAddress, v4("10.1.2.3", 4567)), (uint64_t{0x0A010203} << 16) | 4567);
  EXPECT_EQ(key(IdentityMode::kIp, v4("10.1.2.3", 4567)), uint64_t{0x0A010203});
  EXPECT_EQ(key(IdentityMode::kAddress, v4("255.255.255.255", 65535)),
            (uint64_t{0xFFFFFFFF} << 16) | 0xFFFF);
}

TEST(IdentityKey, IpModeIgnoresThePort) {
  EXPECT_EQ(key(IdentityMode::kIp, v4("192.0.2.7", 1)), key(IdentityMode::kIp, v4("192.0.2.7", 2)));
  EXPECT_NE(key(IdentityMode::kAddress, v4("192.0.2.7", 1)),
            key(IdentityMode::kAddress, v4("192.0.2.7", 2)));
  EXPECT_EQ(key(IdentityMode::kIp, v6("2001:db8::1", 1)),
            key(IdentityMode::kIp, v6("2001:db8::1", 2)));
  EXPECT_NE(key(IdentityMode::kAddress, v6("2001:db8::1", 1)),
            key(IdentityMode::kAddress, v6("2001:db8::1", 2)));
}

TEST(IdentityKey, V4MappedIpv6GetsTheIpv4Key) {
  for (IdentityMode mode : {IdentityMode::kAddress, IdentityMode::kIp}) {
    EXPECT_EQ(key(mode, v6("::ffff:198.51.100.9", 8000)), key(mode, v4("198.51.100.9", 8000)));
  }
}

TEST(IdentityKey, Ipv6KeysHaveTheTopBitSet) {
  for (IdentityMode mode : {IdentityMode::kAddress, IdentityMode::kIp}) {
    for (const char* text :
         {"::", "::1", "fe80::1", "2001:db8::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"}) {
      for (uint16_t port : {0, 1, 65535}) {
        const uint64_t k = key(mode, v6(text, port));
        EXPECT_EQ(k & kTopBit, kTopBit) << text;
      }
    }
  }
}

TEST(IdentityKey, Ipv6KeysIgnoreTheScopeAndMatchTheTsEngine) {
  for (IdentityMode mode : {IdentityMode::kAddress, IdentityMode::kIp}) {
    EXPECT_EQ(key(mode, v6("fe80::1", 5, 1)), key(mode, v6("fe80::1", 5, 2)));
  }
  // The same reference values are pinned in test/ts/wire-v1.test.ts for hostIdFromSource().
  EXPECT_EQ(key(IdentityMode::kIp, v6("::1", 8080)), 0xc5cec29cd9a24e4bULL);
  EXPECT_EQ(key(IdentityMode::kAddress, v6("::1", 8080)), 0x9b0e1ac65ce3eb11ULL);
}

TEST(IdentityKey, Ipv6KeysDoNotCollideOnStructuredOrRandomAddresses) {
  std::unordered_set<uint64_t> seen;
  sockaddr_in6 a = v6("2001:db8::", 0);
  // Sequential hosts on one prefix, each on a few ports: the shape of a real fleet.
  for (uint32_t host = 0; host < 200000; ++host) {
    a.sin6_addr.s6_addr[12] = static_cast<uint8_t>(host >> 24);
    a.sin6_addr.s6_addr[13] = static_cast<uint8_t>(host >> 16);
    a.sin6_addr.s6_addr[14] = static_cast<uint8_t>(host >> 8);
    a.sin6_addr.s6_addr[15] = static_cast<uint8_t>(host);
    for (uint16_t port : {uint16_t{9000}, uint16_t{9001}}) {
      a.sin6_port = htons(port);
      const uint64_t k = key(IdentityMode::kAddress, a);
      ASSERT_NE(k, 0u);
      ASSERT_TRUE(seen.insert(k).second) << "collision at host " << host;
    }
  }
  uint64_t state = 12345;
  for (int i = 0; i < 400000; ++i) {
    for (int word = 0; word < 16; word += 8) {
      state = state * 6364136223846793005ULL + 1442695040888963407ULL;
      std::memcpy(a.sin6_addr.s6_addr + word, &state, 8);
    }
    if (a.sin6_addr.s6_addr[0] == 0) continue;  // Keep clear of the v4-mapped range.
    const uint64_t k = key(IdentityMode::kIp, a);
    ASSERT_NE(k, 0u);
    ASSERT_TRUE(seen.insert(k).second) << "collision at random address " << i;
  }
}

TEST(IdentityKey, NoSourceOrAnotherFamilyHasNoKey) {
  EXPECT_EQ(identity_key(IdentityMode::kAddress, 7, nullptr), 0u);
  EXPECT_EQ(identity_key(IdentityMode::kIp, 7, nullptr), 0u);
  sockaddr_un unix_source{};
  unix_source.sun_family = AF_UNIX;
  const auto* source = reinterpret_cast<const sockaddr*>(&unix_source);
  EXPECT_EQ(identity_key(IdentityMode::kAddress, 7, source), 0u);
  EXPECT_EQ(identity_key(IdentityMode::kIp, 7, source), 0u);
}

TEST(ShardHash, FlippingAnyInputBitFlipsEachOutputBitAboutHalfTheTime) {
  constexpr int kSamples = 4000;
  std::vector<int> flips(64 * 64, 0);
  for (int s = 0; s < kSamples; ++s) {
    const uint64_t input = uint64_t(s) * 0x9E3779B97F4A7C15ULL + 1;
    const uint64_t base = shard_hash(input);
    for (int in = 0; in < 64; ++in) {
      const uint64_t diff = base ^ shard_hash(input ^ (uint64_t{1} << in));
      for (int out = 0; out < 64; ++out) flips[in * 64 + out] += (diff >> out) & 1;
    }
  }
  for (int i = 0; i < 64 * 64; ++i) {
    const double p = static_cast<double>(flips[i]) / kSamples;
    EXPECT_NEAR(p, 0.5, 0.05) << "input bit " << i / 64 << " output bit " << i % 64;
  }
}

TEST(ShardHash, ConsecutiveIdsAndIpv4KeysSpreadEvenlyOverShards) {
  for (uint64_t shards : {2u, 3u, 7u, 16u}) {
    std::vector<uint64_t> counts(shards, 0);
    constexpr uint64_t kKeys = 700000;
    for (uint64_t i = 0; i < kKeys; ++i) {
      ++counts[shard_hash(i + 1) % shards];
      ++counts[shard_hash(kTopBit | ((0x0A000000 + i) << 16) | 9000) % shards];
    }
    const double expected = 2.0 * kKeys / static_cast<double>(shards);
    for (uint64_t c : counts) {
      EXPECT_NEAR(static_cast<double>(c), expected, expected * 0.02) << shards;
    }
  }
}

}  // namespace
}  // namespace heartwatch
