// One received heartbeat (a UDP datagram or a TCP frame) turned into the message a worker
// applies: parse, key it under the identity mode, and stamp where it came from. Shared by every
// transport so the detector sees the same thing whichever one carried the beat.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>

#include "core/engine/shard_message.h"
#include "core/protocol/heartbeat_parser.h"

namespace heartwatch {

// Fills `address` from a socket address, folding IPv4-mapped IPv6 (from a dual-stack socket)
// back to IPv4 so one host has one address whichever socket family received it.
// Runs on: receiver or reactor thread.
void to_peer_address(const sockaddr_storage& source, PeerAddress& address) noexcept;

// Builds `out` for a message the caller accepted (a valid v1 heartbeat, or in identity
// "address"/"ip" any datagram of `source`; `status` and `parsed` are what the parser said).
// `authenticated`: its tag matched a key, so the worker applies replay protection.
// Runs on: receiver or reactor thread.
void to_shard_message(IdentityMode identity, ParseStatus status, ParsedHeartbeat parsed,
                      const sockaddr_storage& source, bool authenticated, ShardMessage& out) noexcept;

}  // namespace heartwatch
