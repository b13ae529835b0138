#include "core/engine/heartbeat_intake.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <cstdint>
#include <cstring>

namespace heartwatch {
namespace {

sockaddr_storage ipv4_source(const char* ip, uint16_t port) {
  sockaddr_storage storage{};
  auto& v4 = reinterpret_cast<sockaddr_in&>(storage);
  v4.sin_family = AF_INET;
  v4.sin_port = htons(port);
  inet_pton(AF_INET, ip, &v4.sin_addr);
  return storage;
}

ParsedHeartbeat beat() {
  ParsedHeartbeat parsed{};
  parsed.host_id = 42;
  parsed.incarnation = 7;
  parsed.seq = 9;
  parsed.interval_ms = 1000;
  parsed.leave = true;
  return parsed;
}

// A receiver builds each message in a staging slot that held an earlier one: every field must
// be written, none inherited.
ShardMessage dirty_slot() {
  ShardMessage slot;
  std::memset(&slot, 0xAB, sizeof slot);
  return slot;
}

TEST(HeartbeatIntake, AValidBeatInAReusedSlotCarriesItsOwnFieldsAndNoStatus) {
  const sockaddr_storage source = ipv4_source("10.1.2.3", 4000);
  ShardMessage slot = dirty_slot();
  to_shard_message(IdentityMode::kId, ParseStatus::kOk, beat(), source, true, slot);
  EXPECT_EQ(slot.heartbeat.key, 42u);
  EXPECT_EQ(slot.heartbeat.seq, 9u);
  EXPECT_EQ(slot.heartbeat.incarnation, 7u);
  EXPECT_EQ(slot.heartbeat.interval_ms, 1000u);
  EXPECT_TRUE(slot.heartbeat.authenticated);
  EXPECT_EQ(slot.kind, MessageKind::kLeave);
  EXPECT_EQ(slot.status_flags, 0u);
  EXPECT_EQ(slot.status_size, 0u);
  EXPECT_EQ(slot.status_end, 0u);
  PeerAddress expected{};
  expected.family = kFamilyIpv4;
  expected.port = 4000;
  const uint8_t ip[4] = {10, 1, 2, 3};
  std::memcpy(expected.ip, ip, sizeof ip);
  EXPECT_TRUE(slot.heartbeat.address == expected);
}

TEST(HeartbeatIntake, APingInAReusedSlotIsAHeartbeatOfItsSourceWithNoFields) {
  // Identity "address": a datagram that is not v1 still counts for its source, and lends nothing
  // (whatever the parser left in `parsed`).
  const sockaddr_storage source = ipv4_source("10.1.2.3", 4000);
  ShardMessage slot = dirty_slot();
  to_shard_message(IdentityMode::kAddress, ParseStatus::kMalformed, beat(), source, false, slot);
  EXPECT_EQ(slot.heartbeat.key, identity_key(IdentityMode::kAddress, 0, reinterpret_cast<const sockaddr*>(&source)));
  EXPECT_EQ(slot.heartbeat.key, (uint64_t{0x0A010203} << 16) | 4000);
  EXPECT_EQ(slot.heartbeat.seq, 0u);
  EXPECT_EQ(slot.heartbeat.incarnation, 0u);
  EXPECT_EQ(slot.heartbeat.interval_ms, 0u);
  EXPECT_FALSE(slot.heartbeat.authenticated);
  EXPECT_EQ(slot.kind, MessageKind::kBeat);
  EXPECT_EQ(slot.status_flags, 0u);
  EXPECT_EQ(slot.status_size, 0u);
  EXPECT_EQ(slot.status_end, 0u);
  EXPECT_EQ(slot.heartbeat.address.family, kFamilyIpv4);
  for (size_t i = 4; i < sizeof slot.heartbeat.address.ip; ++i) EXPECT_EQ(slot.heartbeat.address.ip[i], 0u);
}

TEST(HeartbeatIntake, AValidBeatUnderIdentityIpTakesTheSourcesKeyAndItsOwnFields) {
  const sockaddr_storage source = ipv4_source("10.1.2.3", 4000);
  ShardMessage slot = dirty_slot();
  to_shard_message(IdentityMode::kIp, ParseStatus::kOk, beat(), source, false, slot);
  EXPECT_EQ(slot.heartbeat.key, uint64_t{0x0A010203});
  EXPECT_EQ(slot.heartbeat.seq, 9u);
  EXPECT_EQ(slot.heartbeat.incarnation, 7u);
  EXPECT_EQ(slot.kind, MessageKind::kLeave);
}

// A key's worker is the hash's high half scaled onto the workers, for any count (the engine's
// owner_of() and the receivers must agree); one worker owns every key.
TEST(ShardOf, MapsTheHashOntoTheWorkersAndOneWorkerOwnsEveryKey) {
  for (uint64_t key : {uint64_t{1}, uint64_t{42}, uint64_t{0x0A010203} << 16 | 4000, ~uint64_t{0}}) {
    EXPECT_EQ(shard_of(key, 1), 0u);
    for (uint32_t workers = 2; workers <= 64; ++workers) {
      const uint32_t expected = static_cast<uint32_t>(((shard_hash(key) >> 32) * workers) >> 32);
      EXPECT_EQ(shard_of(key, workers), expected) << key << " over " << workers;
    }
  }
}

}  // namespace
}  // namespace heartwatch
