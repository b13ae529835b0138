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

// Builds `out` from `length` bytes at `data` received from `source`. `truncated` says the bytes
// are not the whole message (a datagram cut by the kernel). Returns kOk when `out` is to be
// handed to the owning worker; otherwise the reason it is dropped (the caller counts it).
// Runs on: receiver or reactor thread.
ParseStatus to_shard_message(IdentityMode identity, const uint8_t* data, size_t length,
                             bool truncated, const sockaddr_storage& source,
                             ShardMessage& out) noexcept;

// The same for a message already parsed (a stream transport parses the header as it arrives):
// `status` and `parsed` are what the parser said about it.
// Runs on: receiver or reactor thread.
ParseStatus to_shard_message(IdentityMode identity, ParseStatus status, ParsedHeartbeat parsed,
                             const sockaddr_storage& source, ShardMessage& out) noexcept;

}  // namespace heartwatch
