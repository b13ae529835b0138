// One received heartbeat (a UDP datagram or a TCP frame) turned into the message a worker
// applies: parse, key it under the identity mode, and stamp where it came from. Shared by every
// transport so the detector sees the same thing whichever one carried the beat. Defined here,
// inline: a receiver runs these once per datagram, and builds the message in place.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "core/engine/shard_message.h"
#include "core/protocol/heartbeat_parser.h"

namespace heartwatch {

// Fills `address` from a socket address, folding IPv4-mapped IPv6 (from a dual-stack socket)
// back to IPv4 so one host has one address whichever socket family received it.
// Runs on: receiver or reactor thread.
inline void to_peer_address(const sockaddr_storage& source, PeerAddress& address) noexcept {
  std::memset(&address, 0, sizeof(address));
  if (source.ss_family == AF_INET) {
    const auto& v4 = reinterpret_cast<const sockaddr_in&>(source);
    address.family = kFamilyIpv4;
    address.port = ntohs(v4.sin_port);
    std::memcpy(address.ip, &v4.sin_addr, 4);
  } else if (source.ss_family == AF_INET6) {
    const auto& v6 = reinterpret_cast<const sockaddr_in6&>(source);
    address.port = ntohs(v6.sin6_port);
    if (IN6_IS_ADDR_V4MAPPED(&v6.sin6_addr)) {
      address.family = kFamilyIpv4;
      std::memcpy(address.ip, &v6.sin6_addr.s6_addr[12], 4);
    } else {
      address.family = kFamilyIpv6;
      std::memcpy(address.ip, &v6.sin6_addr, 16);
    }
  }
}

// The host key of an accepted message (see to_shard_message), which picks its worker.
// Runs on: receiver or reactor thread.
inline uint64_t heartbeat_key(IdentityMode identity, const ParsedHeartbeat& parsed,
                              const sockaddr_storage& source) noexcept {
  if (identity == IdentityMode::kId) return parsed.host_id;
  return identity_key(identity, 0, reinterpret_cast<const sockaddr*>(&source));
}

// Builds `out` for a message the caller accepted (a valid v1 heartbeat, or in identity
// "address"/"ip" any datagram of `source`; `status` and `parsed` are what the parser said), with
// `key` = heartbeat_key() of it. `authenticated`: its tag matched a key, so the worker applies
// replay protection. Every field is written: `out` may be a reused slot.
// Runs on: receiver or reactor thread.
inline void fill_shard_message(uint64_t key, IdentityMode identity, ParseStatus status,
                               const ParsedHeartbeat& parsed, const sockaddr_storage& source,
                               bool authenticated, ShardMessage& out) noexcept {
  // Any datagram is a heartbeat of its source; only a valid v1 one also lends its fields.
  const bool fields = identity == IdentityMode::kId || status == ParseStatus::kOk;
  out.heartbeat.key = key;
  to_peer_address(source, out.heartbeat.address);
  out.heartbeat.seq = fields ? parsed.seq : 0;
  out.heartbeat.incarnation = fields ? parsed.incarnation : 0;
  out.heartbeat.interval_ms = fields ? parsed.interval_ms : 0;
  out.heartbeat.authenticated = authenticated;
  out.kind = fields && parsed.leave ? MessageKind::kLeave : MessageKind::kBeat;
  out.status_flags = 0;
  out.status_size = 0;
  out.status_end = 0;
}

// heartbeat_key() and fill_shard_message() in one.
// Runs on: receiver or reactor thread.
inline void to_shard_message(IdentityMode identity, ParseStatus status, const ParsedHeartbeat& parsed,
                             const sockaddr_storage& source, bool authenticated, ShardMessage& out) noexcept {
  fill_shard_message(heartbeat_key(identity, parsed, source), identity, status, parsed, source, authenticated,
                     out);
}

}  // namespace heartwatch
