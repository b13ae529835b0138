#include "core/auth/auth_gate.h"

namespace heartwatch {

AuthGate::AuthGate(std::unique_ptr<KeyRing> ring, bool required, bool plain_pings)
    : current_(std::move(ring)), required_(required), plain_pings_(plain_pings) {}

AuthGate::~AuthGate() { delete pending_.load(std::memory_order_acquire); }

void AuthGate::offer(std::unique_ptr<KeyRing> ring) noexcept {
  // A ring offered earlier that the receiver has not taken yet was never used: free it here.
  delete pending_.exchange(ring.release(), std::memory_order_acq_rel);
}

void AuthGate::refresh() noexcept {
  if (pending_.load(std::memory_order_relaxed) == nullptr) return;
  KeyRing* fresh = pending_.exchange(nullptr, std::memory_order_acq_rel);
  if (fresh != nullptr) current_.reset(fresh);
}

AuthVerdict AuthGate::unsigned_verdict() const noexcept {
  if (!keyed()) return AuthVerdict::kPlain;
  return required_ ? AuthVerdict::kRejectedUnauthenticated : AuthVerdict::kUnauthenticated;
}

AuthVerdict AuthGate::check(ParseStatus status, const ParsedHeartbeat& parsed, const uint8_t* data) const noexcept {
  if (status == ParseStatus::kTagTruncated && keyed()) return AuthVerdict::kAuthFailed;
  if (status != ParseStatus::kOk) return plain_pings_ ? unsigned_verdict() : AuthVerdict::kMalformed;
  if (!parsed.auth) return unsigned_verdict();
  if (!keyed()) return AuthVerdict::kAuthUnsupported;
  const size_t signed_length = kHeartbeatHeaderBytes + size_t{parsed.payload_len};
  return current_->verify(data, signed_length, data + signed_length) ? AuthVerdict::kAuthenticated
                                                                     : AuthVerdict::kAuthFailed;
}

}  // namespace heartwatch
