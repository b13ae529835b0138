// libFuzzer target for the receiver's per-datagram code: parse_heartbeat_v1 against a slow
// reference reading of the spec, and identity_key's guarantees for arbitrary source addresses.
#include <netinet/in.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "core/protocol/heartbeat_parser.h"

namespace {

// Not assert(): it vanishes under NDEBUG, and the fuzz build is RelWithDebInfo.
#define FUZZ_CHECK(condition)                                                   \
  do {                                                                          \
    if (!(condition)) {                                                         \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #condition); \
      std::abort();                                                             \
    }                                                                           \
  } while (0)

using heartwatch::IdentityMode;
using heartwatch::ParsedHeartbeat;
using heartwatch::ParseStatus;

uint64_t read_be(const uint8_t* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | p[i];
  return v;
}

// The spec's rules one at a time, as a reader of docs/protocol.md would apply them.
ParseStatus reference_status(const uint8_t* data, size_t size) {
  if (size < 28) return ParseStatus::kMalformed;
  if (data[0] != 0x48 || data[1] != 0x57 || data[2] != 1) return ParseStatus::kMalformed;
  const uint8_t flags = data[3];
  if ((flags & ~uint8_t{0x03}) != 0) return ParseStatus::kMalformed;
  if (read_be(data + 4, 8) == 0) return ParseStatus::kMalformed;
  if (read_be(data + 26, 2) != 0) return ParseStatus::kMalformed;
  const bool auth = (flags & 0x02) != 0;
  const size_t unsigned_size = 28 + read_be(data + 24, 2);
  if (size == unsigned_size + (auth ? 16 : 0)) return ParseStatus::kOk;
  if (auth && size >= unsigned_size && size < unsigned_size + 16) return ParseStatus::kTagTruncated;
  return ParseStatus::kMalformed;
}

void check_parser(const uint8_t* data, size_t size) {
  ParsedHeartbeat out{};
  const ParseStatus status = heartwatch::parse_heartbeat_v1(data, size, out);
  FUZZ_CHECK(status == reference_status(data, size));
  if (status == ParseStatus::kMalformed) return;
  FUZZ_CHECK(out.host_id != 0);
  FUZZ_CHECK(out.host_id == read_be(data + 4, 8));
  FUZZ_CHECK(out.incarnation == read_be(data + 12, 4));
  FUZZ_CHECK(out.seq == read_be(data + 16, 4));
  FUZZ_CHECK(out.interval_ms == read_be(data + 20, 4));
  FUZZ_CHECK(out.payload_len == read_be(data + 24, 2));
  FUZZ_CHECK(out.leave == ((data[3] & 0x01) != 0));
  FUZZ_CHECK(out.auth == ((data[3] & 0x02) != 0));
  const size_t unsigned_size = heartwatch::kHeartbeatHeaderBytes + out.payload_len;
  if (status == ParseStatus::kTagTruncated) {
    FUZZ_CHECK(out.auth && size >= unsigned_size && size < unsigned_size + heartwatch::kAuthTagBytes);
    return;
  }
  FUZZ_CHECK(size == unsigned_size + (out.auth ? heartwatch::kAuthTagBytes : 0));
  FUZZ_CHECK(identity_key(IdentityMode::kId, out.host_id, nullptr) == out.host_id);
}

void check_identity(const uint8_t* data, size_t size) {
  uint8_t bytes[sizeof(sockaddr_in6)] = {};
  std::memcpy(bytes, data, size < sizeof bytes ? size : sizeof bytes);

  sockaddr_in v4{};
  v4.sin_family = AF_INET;
  std::memcpy(&v4.sin_port, bytes, 2);
  std::memcpy(&v4.sin_addr, bytes + 2, 4);
  const auto* v4_source = reinterpret_cast<const sockaddr*>(&v4);
  const uint64_t ip = read_be(bytes + 2, 4), port = read_be(bytes, 2);
  FUZZ_CHECK(identity_key(IdentityMode::kAddress, 0, v4_source) == (ip << 16 | port));
  FUZZ_CHECK(identity_key(IdentityMode::kIp, 0, v4_source) == ip);

  sockaddr_in6 v6{};
  v6.sin6_family = AF_INET6;
  std::memcpy(&v6.sin6_port, bytes, 2);
  std::memcpy(&v6.sin6_addr, bytes + 2, 16);
  std::memcpy(&v6.sin6_scope_id, bytes + 18, 4);
  const auto* v6_source = reinterpret_cast<const sockaddr*>(&v6);
  const uint64_t address_key = identity_key(IdentityMode::kAddress, 0, v6_source);
  const uint64_t ip_key = identity_key(IdentityMode::kIp, 0, v6_source);
  static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(&v6.sin6_addr, kMapped, sizeof kMapped) == 0) {
    const uint64_t mapped_ip = read_be(bytes + 14, 4);
    FUZZ_CHECK(address_key == (mapped_ip << 16 | port));
    FUZZ_CHECK(ip_key == mapped_ip);
  } else {
    FUZZ_CHECK((address_key >> 63) == 1 && (ip_key >> 63) == 1);
    sockaddr_in6 other_port = v6;
    other_port.sin6_port = static_cast<uint16_t>(v6.sin6_port ^ 0x0101);
    const auto* other_source = reinterpret_cast<const sockaddr*>(&other_port);
    FUZZ_CHECK(identity_key(IdentityMode::kIp, 0, other_source) == ip_key);
  }

  const uint64_t key = read_be(bytes, 8);
  FUZZ_CHECK(heartwatch::shard_hash(key) == heartwatch::shard_hash(key));
  FUZZ_CHECK(heartwatch::shard_hash(key) != heartwatch::shard_hash(key ^ 1));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  check_parser(data, size);
  check_identity(data, size);
  return 0;
}
