// Wire protocol v1 (docs/protocol.md): validation of one datagram, and the host key a datagram
// counts for under each identity mode.
//
// The receiver calls these once per datagram, so they allocate nothing, take no locks, make no
// system calls and throw nothing; the parser and shard_hash are defined here, inline, so that
// the receiver's per-datagram path compiles to one function.
#pragma once

#include <sys/socket.h>

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace heartwatch {

inline constexpr size_t kHeartbeatHeaderBytes = 28, kAuthTagBytes = 16;
// The largest payload that fits one IPv4 UDP datagram (65 507 bytes) with the header.
inline constexpr size_t kMaxUdpPayloadBytes = 65'507 - kHeartbeatHeaderBytes;

// Flag bits of byte 3; every other bit must be 0 in v1.
inline constexpr uint8_t kHeartbeatFlagLeave = 0x01;
inline constexpr uint8_t kHeartbeatFlagAuth = 0x02;

// kTagTruncated: AUTH is set and every rule holds except that fewer than 16 tag bytes follow the
// payload. A server with keys counts it as a failed tag; one without, as malformed.
enum class ParseStatus : uint8_t { kOk, kMalformed, kTagTruncated };

struct ParsedHeartbeat {
  uint64_t host_id;
  uint32_t incarnation, seq, interval_ms;
  uint16_t payload_len;
  bool leave;
  bool auth;  // a 16-byte tag follows the payload, at data + kHeartbeatHeaderBytes + payload_len
};

namespace protocol_detail {

template <typename T>
inline T load_be(const uint8_t* p) noexcept {
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

// The first four bytes read as one big-endian word: magic "HW", version 1, and flags with only
// LEAVE and AUTH allowed; masking off those two bits leaves exactly this value.
inline constexpr uint32_t kLeadWord = 0x48570100;
inline constexpr uint32_t kLeadWordMask = ~uint32_t{kHeartbeatFlagLeave | kHeartbeatFlagAuth};

}  // namespace protocol_detail

// Validates exactly per the spec: length == 28 + payload_len (+16 with AUTH), magic "HW",
// version 1, reserved flag bits 0, reserved field 0, host_id != 0. The parser does not check the
// tag of an AUTH datagram (out.auth): the receiver does, with its KeyRing (core/auth/key_ring.h).
// `out` holds the decoded header when the result is kOk or kTagTruncated; after kMalformed its
// contents mean nothing.
// Runs on: receiver thread.
inline ParseStatus parse_heartbeat_v1(const uint8_t* data, size_t length, ParsedHeartbeat& out) noexcept;

// Validates a v1 header alone (every rule above except the length one) and says how many bytes
// the whole message takes: 28 + payload_len, +16 with AUTH. A stream transport reads this many
// bytes per frame; `parse_heartbeat_v1` is this plus the check that the datagram has exactly
// that length. `header` must hold kHeartbeatHeaderBytes bytes.
// Runs on: receiver or reactor thread.
inline ParseStatus parse_heartbeat_header_v1(const uint8_t* header, ParsedHeartbeat& out,
                                             size_t& message_bytes) noexcept {
  using protocol_detail::load_be;
  const uint32_t lead = load_be<uint32_t>(header);
  const uint8_t flags = header[3];
  out.host_id = load_be<uint64_t>(header + 4);
  out.incarnation = load_be<uint32_t>(header + 12);
  out.seq = load_be<uint32_t>(header + 16);
  out.interval_ms = load_be<uint32_t>(header + 20);
  out.payload_len = load_be<uint16_t>(header + 24);
  out.leave = (flags & kHeartbeatFlagLeave) != 0;
  out.auth = (flags & kHeartbeatFlagAuth) != 0;
  message_bytes = kHeartbeatHeaderBytes + size_t{out.payload_len} + (out.auth ? kAuthTagBytes : 0);
  // One combined test instead of a branch per rule: the rules fail together on garbage.
  const bool valid = ((lead & protocol_detail::kLeadWordMask) == protocol_detail::kLeadWord) &
                     (load_be<uint16_t>(header + 26) == 0) & (out.host_id != 0);
  return valid ? ParseStatus::kOk : ParseStatus::kMalformed;
}

inline ParseStatus parse_heartbeat_v1(const uint8_t* data, size_t length, ParsedHeartbeat& out) noexcept {
  if (length < kHeartbeatHeaderBytes) return ParseStatus::kMalformed;
  size_t expected = 0;
  if (parse_heartbeat_header_v1(data, out, expected) != ParseStatus::kOk) return ParseStatus::kMalformed;
  if (length == expected) return ParseStatus::kOk;
  const bool tag_short = out.auth && length >= expected - kAuthTagBytes && length < expected;
  return tag_short ? ParseStatus::kTagTruncated : ParseStatus::kMalformed;
}

// How a datagram is tied to a host: the host_id field (kId), the source ip:port (kAddress), or
// the source IP alone (kIp).
enum class IdentityMode : uint8_t { kId, kAddress, kIp };

// The detector's host key for a datagram, which is also the `id` events report. The pure-TS
// engine derives the same ids (lib/protocol/host-id.ts), so ids do not depend on the engine.
// 0 means "no identity": kId with host_id 0 (the parser never yields one), kAddress/kIp with a
// null `source` or a family other than AF_INET/AF_INET6 (a UDP socket never reports one), or
// the unspecified IPv4 address in kIp (never a datagram's source).
//
//   kId       host_id, unchanged: distinct hosts never collide.
//   kAddress  IPv4 a.b.c.d:p   -> addr << 16 | port: exact, below 2^48, readable back.
//             IPv6 [addr]:p    -> 1<<63 | a 63-bit hash of (addr, port), so IPv6 keys never
//                                 equal IPv4 keys; two IPv6 sources collide with probability
//                                 about 2^-63 per pair (~5e-8 across a million). The scope id
//                                 is left out: the TS engine cannot see it.
//   kIp       IPv4 -> addr (the address as a u32); IPv6 -> as kAddress with the port left out.
// IPv4-mapped IPv6 sources (::ffff:a.b.c.d, seen on dual-stack sockets) get their IPv4 key, so a
// host keeps one key whichever socket family heard it. The IPv6 hash is unkeyed: it spreads
// honest traffic, it does not resist an attacker who picks source addresses to collide.
// Runs on: receiver thread.
uint64_t identity_key(IdentityMode mode, uint64_t host_id, const sockaddr* source) noexcept;

// Picks the worker shard for a host key. Every output bit depends on every input bit, so the
// structured keys above (consecutive host ids, IPv4 packing) spread evenly over any shard
// count whichever bits the caller takes.
// Runs on: receiver thread.
inline uint64_t shard_hash(uint64_t key) noexcept { return protocol_detail::mix64(key); }

}  // namespace heartwatch
