#include "core/engine/heartbeat_intake.h"

#include <netinet/in.h>

#include <cstring>

namespace heartwatch {

void to_peer_address(const sockaddr_storage& source, PeerAddress& address) noexcept {
  std::memset(&address, 0, sizeof(address));
  if (source.ss_family == AF_INET) {
    const auto& v4 = reinterpret_cast<const sockaddr_in&>(source);
    address.family = 4;
    address.port = ntohs(v4.sin_port);
    std::memcpy(address.ip, &v4.sin_addr, 4);
  } else if (source.ss_family == AF_INET6) {
    const auto& v6 = reinterpret_cast<const sockaddr_in6&>(source);
    address.port = ntohs(v6.sin6_port);
    if (IN6_IS_ADDR_V4MAPPED(&v6.sin6_addr)) {
      address.family = 4;
      std::memcpy(address.ip, &v6.sin6_addr.s6_addr[12], 4);
    } else {
      address.family = 6;
      std::memcpy(address.ip, &v6.sin6_addr, 16);
    }
  }
}

void to_shard_message(IdentityMode identity, ParseStatus status, ParsedHeartbeat parsed,
                      const sockaddr_storage& source, bool authenticated, ShardMessage& out) noexcept {
  out = ShardMessage{};
  to_peer_address(source, out.heartbeat.address);
  if (identity == IdentityMode::kId) {
    out.heartbeat.key = parsed.host_id;
  } else {
    // Any datagram is a heartbeat of its source; a valid v1 one also lends its fields.
    if (status != ParseStatus::kOk) parsed = ParsedHeartbeat{};
    out.heartbeat.key = identity_key(identity, parsed.host_id, reinterpret_cast<const sockaddr*>(&source));
  }
  out.heartbeat.authenticated = authenticated;
  out.heartbeat.seq = parsed.seq;
  out.heartbeat.incarnation = parsed.incarnation;
  out.heartbeat.interval_ms = parsed.interval_ms;
  out.leave = parsed.leave;
}

}  // namespace heartwatch
