// What a receiver does with a parsed datagram under the `auth` option: verify its tag against
// the current KeyRing, and decide whether to pass it on, counted as what (docs/protocol.md,
// "Authentication").
//
// Thread contract: the receiver thread owns the current ring and is the only one to call
// check(), refresh() and keyed(). The JS thread hands in a new ring with offer(); the receiver
// takes it at its next refresh(), which it calls after every recvmmsg and before dispatching
// what that call returned, so every datagram sent after offer() returns is checked with the
// new keys (the send, the kernel's receive and the recvmmsg return order them). The hand-over is
// one atomic pointer; the receiver frees the ring it replaces, and the gate frees what is left.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "core/auth/key_ring.h"
#include "core/protocol/heartbeat_parser.h"

namespace heartwatch {

enum class AuthVerdict : uint8_t {
  kPlain,                   // accepted: no keys, nothing to check
  kAuthenticated,           // accepted: the tag matched a key
  kUnauthenticated,         // accepted without a tag (required is false); counted
  kRejectedUnauthenticated, // dropped: no tag and required is true; counted as unauthenticated
  kAuthFailed,              // dropped: wrong, truncated or altered tag
  kAuthUnsupported,         // dropped: a tag, and this server has no key
  kMalformed,               // dropped: not a valid v1 heartbeat (identity mode "id" only)
  kCount,
};

inline bool accepted(AuthVerdict v) noexcept {
  return v == AuthVerdict::kPlain || v == AuthVerdict::kAuthenticated || v == AuthVerdict::kUnauthenticated;
}

class AuthGate {
 public:
  // `plain_pings`: identity "address"/"ip", where a datagram that is not v1 is still a heartbeat
  // of its source (an unsigned one).
  // Runs on: JS thread.
  AuthGate(std::unique_ptr<KeyRing> ring, bool required, bool plain_pings);
  ~AuthGate();
  AuthGate(const AuthGate&) = delete;
  AuthGate& operator=(const AuthGate&) = delete;

  // Runs on: JS thread.
  void offer(std::unique_ptr<KeyRing> ring) noexcept;
  // Runs on: receiver thread.
  void refresh() noexcept;
  bool keyed() const noexcept { return !current_->empty(); }
  // The current ring, for a check that hashes a message as it arrives (KeyRing::PartialTag).
  // Runs on: receiver thread.
  const KeyRing& ring() const noexcept { return *current_; }
  // `data` is the whole datagram; `parsed` its header when status is not kMalformed.
  // Runs on: receiver thread.
  // Inline: the receiver runs it once per datagram, and most take one of its first branches.
  AuthVerdict check(ParseStatus status, const ParsedHeartbeat& parsed, const uint8_t* data) const noexcept {
    if (status == ParseStatus::kTagTruncated && keyed()) return AuthVerdict::kAuthFailed;
    if (status != ParseStatus::kOk) return plain_pings_ ? unsigned_verdict() : AuthVerdict::kMalformed;
    if (!parsed.auth) return unsigned_verdict();
    if (!keyed()) return AuthVerdict::kAuthUnsupported;
    return verify(parsed, data);
  }

 private:
  AuthVerdict unsigned_verdict() const noexcept {
    if (!keyed()) return AuthVerdict::kPlain;
    return required_ ? AuthVerdict::kRejectedUnauthenticated : AuthVerdict::kUnauthenticated;
  }
  // The tag check of a signed, well-formed datagram, with keys.
  AuthVerdict verify(const ParsedHeartbeat& parsed, const uint8_t* data) const noexcept;

  std::unique_ptr<KeyRing> current_;
  std::atomic<KeyRing*> pending_{nullptr};
  bool required_;
  bool plain_pings_;
};

}  // namespace heartwatch
