// Heartbeat authentication: the key ring against RFC 4231's HMAC-SHA256 vectors, the gate's
// verdicts, the source allow-list, and the detector's replay window.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/auth/auth_gate.h"
#include "core/auth/key_ring.h"
#include "core/auth/source_allow_list.h"
#include "core/detector/detector.h"
#include "core/protocol/heartbeat_parser.h"
#include "sim/tag_signer.h"

namespace heartwatch {
namespace {

std::vector<uint8_t> hex(const std::string& text) {
  std::vector<uint8_t> out;
  for (size_t i = 0; i + 1 < text.size(); i += 2) out.push_back(static_cast<uint8_t>(std::stoi(text.substr(i, 2), nullptr, 16)));
  return out;
}

std::vector<uint8_t> bytes_of(const std::string& text) { return {text.begin(), text.end()}; }

// RFC 4231 cases 1 (20-byte key), 3 and 6 (a key longer than the block is hashed first); the
// tag is the first 16 bytes of each HMAC.
TEST(KeyRing, MatchesRfc4231Vectors) {
  struct Case {
    AuthKey key;
    std::vector<uint8_t> data;
    std::string mac;
  };
  const Case cases[] = {
      {AuthKey(20, 0x0b), bytes_of("Hi There"), "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
      {AuthKey(20, 0xaa), std::vector<uint8_t>(50, 0xdd), "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
      {AuthKey(131, 0xaa), bytes_of("Test Using Larger Than Block-Size Key - Hash Key First"),
       "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
  };
  for (const Case& c : cases) {
    const KeyRing ring({c.key});
    uint8_t tag[kAuthTagBytes];
    ring.sign(c.data.data(), c.data.size(), tag);
    const std::vector<uint8_t> want = hex(c.mac);
    EXPECT_EQ(std::memcmp(tag, want.data(), kAuthTagBytes), 0) << c.mac;
    EXPECT_TRUE(ring.verify(c.data.data(), c.data.size(), want.data()));
  }
}

// The signed example of docs/protocol.md, from the server's KeyRing and from the simulator's own
// TagSigner (independent code, same spec).
TEST(KeyRing, SignsTheSpecExampleLikeTheSimulator) {
  const std::vector<uint8_t> datagram =
      hex("485701020000000000001234db018fed00000029000000320007000068656172747761");
  AuthKey key(32);
  for (size_t i = 0; i < key.size(); ++i) key[i] = static_cast<uint8_t>(i);
  const std::vector<uint8_t> want = hex("6aec7edeeff664c3d3afe9ec54ac4125");
  uint8_t server_tag[kAuthTagBytes], sim_tag[kAuthTagBytes];
  KeyRing({key}).sign(datagram.data(), datagram.size(), server_tag);
  sim::TagSigner(key).sign(datagram.data(), datagram.size(), sim_tag);
  EXPECT_EQ(std::memcmp(server_tag, want.data(), kAuthTagBytes), 0);
  EXPECT_EQ(std::memcmp(sim_tag, want.data(), kAuthTagBytes), 0);
  const AuthKey long_key(200, 0x33);
  KeyRing({long_key}).sign(datagram.data(), datagram.size(), server_tag);
  sim::TagSigner(long_key).sign(datagram.data(), datagram.size(), sim_tag);
  EXPECT_EQ(std::memcmp(server_tag, sim_tag, kAuthTagBytes), 0);
}

TEST(KeyRing, AnyKeyVerifiesAndTheFirstSigns) {
  const AuthKey old_key(32, 1), new_key(32, 2);
  const std::vector<uint8_t> data = bytes_of("heartbeat");
  uint8_t tag_old[kAuthTagBytes], tag_new[kAuthTagBytes];
  KeyRing({old_key}).sign(data.data(), data.size(), tag_old);
  KeyRing({new_key}).sign(data.data(), data.size(), tag_new);
  const KeyRing both({new_key, old_key});
  EXPECT_TRUE(both.verify(data.data(), data.size(), tag_old));
  EXPECT_TRUE(both.verify(data.data(), data.size(), tag_new));
  uint8_t signed_by_both[kAuthTagBytes];
  both.sign(data.data(), data.size(), signed_by_both);
  EXPECT_EQ(std::memcmp(signed_by_both, tag_new, kAuthTagBytes), 0);
  EXPECT_FALSE(KeyRing({new_key}).verify(data.data(), data.size(), tag_old));
}

TEST(KeyRing, RefusesShortKeysAndTooManyKeys) {
  EXPECT_THROW(KeyRing({AuthKey(kMinAuthKeyBytes - 1, 1)}), std::invalid_argument);
  EXPECT_THROW(KeyRing({AuthKey(kMaxAuthKeyBytes + 1, 1)}), std::invalid_argument);
  EXPECT_THROW(KeyRing(std::vector<AuthKey>(kMaxAuthKeys + 1, AuthKey(32, 1))), std::invalid_argument);
  EXPECT_TRUE(KeyRing({}).empty());
}

// A v1 datagram with AUTH and its tag under `key`.
std::vector<uint8_t> signed_datagram(const AuthKey& key, uint8_t payload_len = 3) {
  std::vector<uint8_t> d(kHeartbeatHeaderBytes + payload_len, 0);
  d[0] = 0x48;
  d[1] = 0x57;
  d[2] = 1;
  d[3] = kHeartbeatFlagAuth;
  d[11] = 7;  // host_id 7
  d[25] = payload_len;
  d.resize(d.size() + kAuthTagBytes);
  KeyRing({key}).sign(d.data(), d.size() - kAuthTagBytes, d.data() + d.size() - kAuthTagBytes);
  return d;
}

AuthVerdict judge(const AuthGate& gate, const std::vector<uint8_t>& d) {
  ParsedHeartbeat parsed{};
  const ParseStatus status = parse_heartbeat_v1(d.data(), d.size(), parsed);
  return gate.check(status, parsed, d.data());
}

TEST(AuthGate, DropsWrongKeyTruncatedTagAndFlippedBits) {
  const AuthKey key(32, 9);
  const AuthGate gate(std::make_unique<KeyRing>(std::vector<AuthKey>{key}), true, false);
  const std::vector<uint8_t> good = signed_datagram(key);
  EXPECT_EQ(judge(gate, good), AuthVerdict::kAuthenticated);
  EXPECT_EQ(judge(gate, signed_datagram(AuthKey(32, 8))), AuthVerdict::kAuthFailed);
  for (size_t cut = 1; cut <= kAuthTagBytes; ++cut) {
    EXPECT_EQ(judge(gate, std::vector<uint8_t>(good.begin(), good.end() - cut)), AuthVerdict::kAuthFailed) << cut;
  }
  // Every bit of the signed part and of the tag, except those that make the header invalid.
  for (size_t bit = 0; bit < good.size() * 8; ++bit) {
    std::vector<uint8_t> flipped = good;
    flipped[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
    const AuthVerdict v = judge(gate, flipped);
    EXPECT_TRUE(v == AuthVerdict::kAuthFailed || v == AuthVerdict::kMalformed ||
                v == AuthVerdict::kRejectedUnauthenticated)
        << bit;
  }
}

TEST(AuthGate, RequiredDecidesWhatHappensToUnsignedDatagrams) {
  const AuthKey key(32, 9);
  std::vector<uint8_t> plain = signed_datagram(key);
  plain[3] = 0;
  plain.resize(plain.size() - kAuthTagBytes);
  const AuthGate required(std::make_unique<KeyRing>(std::vector<AuthKey>{key}), true, false);
  const AuthGate migrating(std::make_unique<KeyRing>(std::vector<AuthKey>{key}), false, false);
  const AuthGate keyless(std::make_unique<KeyRing>(std::vector<AuthKey>{}), false, false);
  EXPECT_EQ(judge(required, plain), AuthVerdict::kRejectedUnauthenticated);
  EXPECT_EQ(judge(migrating, plain), AuthVerdict::kUnauthenticated);
  EXPECT_EQ(judge(migrating, signed_datagram(key)), AuthVerdict::kAuthenticated);
  EXPECT_EQ(judge(keyless, plain), AuthVerdict::kPlain);
  EXPECT_EQ(judge(keyless, signed_datagram(key)), AuthVerdict::kAuthUnsupported);
  // In address identity a non-v1 datagram is an unsigned ping of its source.
  const AuthGate pings(std::make_unique<KeyRing>(std::vector<AuthKey>{key}), true, true);
  EXPECT_EQ(judge(pings, bytes_of("ping")), AuthVerdict::kRejectedUnauthenticated);
}

TEST(AuthGate, AnOfferedRingIsUsedFromTheNextRefresh) {
  const AuthKey old_key(32, 1), new_key(32, 2);
  AuthGate gate(std::make_unique<KeyRing>(std::vector<AuthKey>{old_key}), true, false);
  gate.offer(std::make_unique<KeyRing>(std::vector<AuthKey>{new_key, old_key}));
  EXPECT_EQ(judge(gate, signed_datagram(new_key)), AuthVerdict::kAuthFailed);
  gate.refresh();
  EXPECT_EQ(judge(gate, signed_datagram(new_key)), AuthVerdict::kAuthenticated);
  EXPECT_EQ(judge(gate, signed_datagram(old_key)), AuthVerdict::kAuthenticated);
  gate.offer(std::make_unique<KeyRing>(std::vector<AuthKey>{old_key}));  // replaced before use
  gate.offer(std::make_unique<KeyRing>(std::vector<AuthKey>{new_key}));
  gate.refresh();
  EXPECT_EQ(judge(gate, signed_datagram(old_key)), AuthVerdict::kAuthFailed);
  EXPECT_EQ(judge(gate, signed_datagram(new_key)), AuthVerdict::kAuthenticated);
}

AddressPrefix prefix(const char* text, uint8_t bits) {
  AddressPrefix p{};
  p.bits = bits;
  if (inet_pton(AF_INET, text, p.address) == 1) {
    p.family = 4;
  } else {
    p.family = 6;
    inet_pton(AF_INET6, text, p.address);
  }
  return p;
}

sockaddr_storage source(const char* text) {
  sockaddr_storage s{};
  auto& v4 = reinterpret_cast<sockaddr_in&>(s);
  if (inet_pton(AF_INET, text, &v4.sin_addr) == 1) {
    v4.sin_family = AF_INET;
    return s;
  }
  auto& v6 = reinterpret_cast<sockaddr_in6&>(s);
  v6.sin6_family = AF_INET6;
  inet_pton(AF_INET6, text, &v6.sin6_addr);
  return s;
}

TEST(SourceAllowList, MatchesIpv4Ipv6AndMappedSources) {
  const SourceAllowList list({prefix("10.0.0.0", 8), prefix("192.168.1.7", 32), prefix("fd00::", 8),
                              prefix("2001:db8:0:1::", 64)});
  EXPECT_TRUE(list.allows(source("10.200.3.4")));
  EXPECT_TRUE(list.allows(source("::ffff:10.1.2.3")));
  EXPECT_FALSE(list.allows(source("::ffff:11.1.2.3")));
  EXPECT_TRUE(list.allows(source("192.168.1.7")));
  EXPECT_FALSE(list.allows(source("192.168.1.8")));
  EXPECT_TRUE(list.allows(source("fd12:3456::1")));
  EXPECT_FALSE(list.allows(source("fe80::1")));
  EXPECT_TRUE(list.allows(source("2001:db8:0:1:ffff::9")));
  EXPECT_FALSE(list.allows(source("2001:db8:0:2::9")));
  EXPECT_FALSE(list.allows(source("127.0.0.1")));
  EXPECT_TRUE(SourceAllowList({}).allows(source("127.0.0.1")));
  EXPECT_TRUE(SourceAllowList({prefix("0.0.0.0", 0)}).allows(source("::ffff:1.2.3.4")));
  EXPECT_FALSE(SourceAllowList({prefix("0.0.0.0", 0)}).allows(source("::1")));
  EXPECT_THROW(SourceAllowList({prefix("10.0.0.0", 33)}), std::invalid_argument);
}

Heartbeat signed_beat(uint64_t key, uint32_t incarnation, uint32_t seq) {
  Heartbeat hb{};
  hb.key = key;
  hb.address.family = 4;
  hb.incarnation = incarnation;
  hb.seq = seq;
  hb.authenticated = true;
  return hb;
}

DetectorConfig config() {
  DetectorConfig c;
  c.timeout_ms = 1000;
  c.missed_beats = 0;
  return c;
}

TEST(DetectorReplay, ASeqIsAcceptedOnceWithinTheWindow) {
  Detector d(config());
  std::vector<HostEvent> out;
  d.heartbeat(signed_beat(1, 100, 10), 1000, out);
  d.heartbeat(signed_beat(1, 100, 12), 1010, out);
  d.heartbeat(signed_beat(1, 100, 11), 1020, out);  // reordered: fresh once
  EXPECT_EQ(d.stats().replayed, 0u);
  d.heartbeat(signed_beat(1, 100, 11), 1030, out);
  d.heartbeat(signed_beat(1, 100, 12), 1040, out);
  d.heartbeat(signed_beat(1, 100, 10), 1050, out);
  EXPECT_EQ(d.stats().replayed, 3u);
  d.heartbeat(signed_beat(1, 100, 12 + 100), 1060, out);
  d.heartbeat(signed_beat(1, 100, 12 + 100 - 64), 1070, out);  // older than the window
  EXPECT_EQ(d.stats().replayed, 4u);
  // seq wraps: 2^32-1 then 0 is an advance, and 2^32-1 is then one behind.
  d.heartbeat(signed_beat(2, 100, 0xFFFFFFFFu), 1080, out);
  d.heartbeat(signed_beat(2, 100, 0), 1090, out);
  EXPECT_EQ(d.stats().replayed, 4u);
  d.heartbeat(signed_beat(2, 100, 0xFFFFFFFFu), 1100, out);
  EXPECT_EQ(d.stats().replayed, 5u);
}

TEST(DetectorReplay, AReplayNeitherKeepsADeadHostUpNorBringsItBack) {
  Detector d(config());
  std::vector<HostEvent> out;
  d.heartbeat(signed_beat(1, 100, 5), 1000, out);
  d.heartbeat(signed_beat(1, 100, 5), 1900, out);  // replayed while up: no re-arm
  out.clear();
  d.expire(2001, 1 << 20, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].type, HostEventType::kDown);
  out.clear();
  d.heartbeat(signed_beat(1, 100, 5), 3000, out);  // after it died
  EXPECT_TRUE(out.empty());
  EXPECT_FALSE(d.host(1)->up);
  EXPECT_EQ(d.stats().replayed, 2u);
}

TEST(DetectorReplay, OldLeavesAndOldIncarnationsHaveNoEffect) {
  Detector d(config());
  std::vector<HostEvent> out;
  d.heartbeat(signed_beat(1, 100, 5), 1000, out);
  Heartbeat leave = signed_beat(1, 100, 6);
  d.heartbeat(signed_beat(1, 100, 7), 1010, out);
  d.heartbeat(signed_beat(1, 100, 6), 1020, out);  // reordered, fresh: the leave's seq is now used
  out.clear();
  d.leave(leave, 1030, out);  // a captured leave replayed while the host lives
  EXPECT_TRUE(out.empty());
  EXPECT_TRUE(d.host(1)->up);
  // Restart: a higher incarnation; the old one's heartbeats and leave are replays now.
  d.heartbeat(signed_beat(1, 200, 0), 1040, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].type, HostEventType::kRestart);
  out.clear();
  d.heartbeat(signed_beat(1, 100, 8), 1050, out);
  d.leave(signed_beat(1, 100, 9), 1060, out);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(d.host(1)->incarnation, 200u);
  EXPECT_EQ(d.stats().replayed, 3u);
  // A fresh leave still works.
  d.leave(signed_beat(1, 200, 1), 1070, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].reason, DownReason::kLeft);
}

TEST(DetectorReplay, UnauthenticatedHostsPayNothing) {
  Detector d(config());
  std::vector<HostEvent> out;
  const uint64_t before = d.stats().bytes_allocated;
  for (uint64_t k = 1; k <= 100; ++k) {
    Heartbeat hb = signed_beat(k, 1, 1);
    hb.authenticated = false;
    d.heartbeat(hb, 1000, out);
    d.heartbeat(hb, 1001, out);  // same seq again: not checked without a tag
  }
  EXPECT_EQ(d.stats().bytes_allocated, before);
  EXPECT_EQ(d.stats().replayed, 0u);
  EXPECT_EQ(d.stats().up, 100u);
}

}  // namespace
}  // namespace heartwatch
