// libFuzzer target for the authentication path: the receiver's AuthGate (tag check under every
// mode) against OpenSSL's one-shot HMAC as the reference, the detector's replay window against a
// set-based model of the rules in docs/protocol.md, and the source allow-list against a bitwise
// reading of the prefixes.
//
// Input: byte 0 picks the part; the rest is its data.
#define OPENSSL_API_COMPAT 0x10101000L

#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <utility>
#include <vector>

#include "core/auth/auth_gate.h"
#include "core/auth/key_ring.h"
#include "core/auth/source_allow_list.h"
#include "core/detector/detector.h"
#include "core/protocol/heartbeat_parser.h"

namespace {

#define FUZZ_CHECK(condition)                                                             \
  do {                                                                                    \
    if (!(condition)) {                                                                   \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #condition); \
      std::abort();                                                                       \
    }                                                                                     \
  } while (0)

using namespace heartwatch;

const AuthKey kKeyA(32, 0x5a), kKeyB(70, 0xa5);  // B is longer than a block: hashed first

bool reference_tag_matches(const AuthKey& key, const uint8_t* data, size_t length, const uint8_t* tag) {
  uint8_t mac[EVP_MAX_MD_SIZE];
  unsigned int mac_length = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), data, length, mac, &mac_length);
  return std::memcmp(mac, tag, kAuthTagBytes) == 0;
}

// Arbitrary bytes, and the same bytes made a well-formed v1 datagram and signed with key A (the
// input decides payload and flags), then with one byte changed.
void check_gate(const uint8_t* data, size_t size) {
  const AuthGate required(std::make_unique<KeyRing>(std::vector<AuthKey>{kKeyA, kKeyB}), true, false);
  const AuthGate keyless(std::make_unique<KeyRing>(std::vector<AuthKey>{}), false, false);
  ParsedHeartbeat parsed{};
  const ParseStatus status = parse_heartbeat_v1(data, size, parsed);
  const AuthVerdict verdict = required.check(status, parsed, data);
  const bool tagged_ok = status == ParseStatus::kOk && parsed.auth;
  if (tagged_ok) {
    const size_t signed_length = size - kAuthTagBytes;
    const bool matches = reference_tag_matches(kKeyA, data, signed_length, data + signed_length) ||
                         reference_tag_matches(kKeyB, data, signed_length, data + signed_length);
    FUZZ_CHECK((verdict == AuthVerdict::kAuthenticated) == matches);
    FUZZ_CHECK(keyless.check(status, parsed, data) == AuthVerdict::kAuthUnsupported);
  } else {
    FUZZ_CHECK(verdict != AuthVerdict::kAuthenticated);
    FUZZ_CHECK(!accepted(verdict));
  }

  if (size < 4) return;
  const size_t payload = std::min<size_t>(size - 4, 200);
  std::vector<uint8_t> d(kHeartbeatHeaderBytes + payload + kAuthTagBytes, 0);
  d[0] = 0x48, d[1] = 0x57, d[2] = 1, d[3] = static_cast<uint8_t>(kHeartbeatFlagAuth | (data[0] & 1));
  std::memcpy(d.data() + 4, data + 1, 3);  // part of host_id
  d[11] |= 1;                               // never 0
  d[24] = static_cast<uint8_t>(payload >> 8), d[25] = static_cast<uint8_t>(payload);
  std::memcpy(d.data() + kHeartbeatHeaderBytes, data + 4, payload);
  const size_t signed_length = d.size() - kAuthTagBytes;
  KeyRing({data[1] & 1 ? kKeyA : kKeyB}).sign(d.data(), signed_length, d.data() + signed_length);
  FUZZ_CHECK(reference_tag_matches(data[1] & 1 ? kKeyA : kKeyB, d.data(), signed_length, d.data() + signed_length));
  FUZZ_CHECK(parse_heartbeat_v1(d.data(), d.size(), parsed) == ParseStatus::kOk);
  FUZZ_CHECK(required.check(ParseStatus::kOk, parsed, d.data()) == AuthVerdict::kAuthenticated);
  const size_t at = (size_t{data[2]} << 8 | data[3]) % d.size();
  d[at] ^= static_cast<uint8_t>(data[0] | 1);
  const ParseStatus altered = parse_heartbeat_v1(d.data(), d.size(), parsed);
  FUZZ_CHECK(required.check(altered, parsed, d.data()) != AuthVerdict::kAuthenticated);
}

// A model of the replay rules: the highest incarnation; in it, the set of accepted seqs and the
// highest (by serial arithmetic). Accept a new incarnation; in the current one, a seq newer than
// the highest, or one of the 63 before it not accepted yet.
struct ReplayModel {
  bool armed = false;
  uint32_t incarnation = 0, top = 0;
  std::set<uint32_t> seen;

  bool accept(uint32_t inc, uint32_t seq) {
    if (!armed || inc > incarnation) {
      armed = true, incarnation = inc, top = seq, seen = {seq};
      return true;
    }
    if (inc < incarnation) return false;
    if (static_cast<int32_t>(seq - top) > 0) {
      top = seq;
      seen.insert(seq);
      return true;
    }
    if (top - seq >= 64 || seen.count(seq) != 0) return false;
    seen.insert(seq);
    return true;
  }
};

void check_replay(const uint8_t* data, size_t size) {
  DetectorConfig config;
  config.timeout_ms = 1'000'000;
  config.missed_beats = 0;
  Detector detector(config);
  ReplayModel model;
  std::vector<HostEvent> out;
  uint32_t inc = 1000, seq = 0;
  for (size_t i = 0; i + 2 <= size; i += 2) {
    // Small steps around the current position, so the window is exercised, not skipped over.
    if ((data[i + 1] & 0xF0) == 0xF0) inc += (data[i + 1] & 1) ? 1 : -1;
    seq += static_cast<uint32_t>(static_cast<int32_t>(static_cast<int8_t>(data[i])));
    Heartbeat hb{};
    hb.key = 1;
    hb.incarnation = inc;
    hb.seq = seq;
    hb.authenticated = true;
    const bool leave = (data[i + 1] & 0x0F) == 0x0F;
    const uint64_t before = detector.stats().replayed;
    // A leave from an unknown host changes nothing, its replay state included.
    const bool want = leave && !detector.host(1).has_value() ? true : model.accept(inc, seq);
    if (leave) {
      detector.leave(hb, 1000 + i, out);
    } else {
      detector.heartbeat(hb, 1000 + i, out);
    }
    FUZZ_CHECK((detector.stats().replayed == before) == want);
    out.clear();
  }
}

bool reference_allows(const AddressPrefix& p, const uint8_t* address, uint8_t family) {
  if (p.family != family) return false;
  for (int bit = 0; bit < p.bits; ++bit) {
    const int byte = bit / 8, shift = 7 - bit % 8;
    if (((address[byte] >> shift) & 1) != ((p.address[byte] >> shift) & 1)) return false;
  }
  return true;
}

void check_allow_list(const uint8_t* data, size_t size) {
  if (size < 36) return;
  std::vector<AddressPrefix> prefixes;
  for (size_t i = 18; i + 18 <= size && prefixes.size() < 8; i += 18) {
    AddressPrefix p{};
    p.family = (data[i] & 1) ? 6 : 4;
    p.bits = static_cast<uint8_t>(data[i + 1] % (p.family == 4 ? 33 : 129));
    std::memcpy(p.address, data + i + 2, 16);
    prefixes.push_back(p);
  }
  const SourceAllowList list(prefixes);
  sockaddr_storage source{};
  bool want = false;
  if (data[0] & 1) {
    auto& v6 = reinterpret_cast<sockaddr_in6&>(source);
    v6.sin6_family = AF_INET6;
    std::memcpy(&v6.sin6_addr, data + 2, 16);
    if (data[1] & 1) std::memset(&v6.sin6_addr, 0, 10), std::memset(v6.sin6_addr.s6_addr + 10, 0xff, 2);
    const bool mapped = IN6_IS_ADDR_V4MAPPED(&v6.sin6_addr);
    for (const auto& p : prefixes) {
      want |= mapped ? reference_allows(p, v6.sin6_addr.s6_addr + 12, 4) : reference_allows(p, v6.sin6_addr.s6_addr, 6);
    }
  } else {
    auto& v4 = reinterpret_cast<sockaddr_in&>(source);
    v4.sin_family = AF_INET;
    std::memcpy(&v4.sin_addr, data + 2, 4);
    for (const auto& p : prefixes) want |= reference_allows(p, data + 2, 4);
  }
  FUZZ_CHECK(list.allows(source) == (want || prefixes.empty()));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  switch (data[0] % 3) {
    case 0:
      check_gate(data + 1, size - 1);
      break;
    case 1:
      check_replay(data + 1, size - 1);
      break;
    default:
      check_allow_list(data + 1, size - 1);
      break;
  }
  return 0;
}
