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

AuthVerdict AuthGate::verify(const ParsedHeartbeat& parsed, const uint8_t* data) const noexcept {
  const size_t signed_length = kHeartbeatHeaderBytes + size_t{parsed.payload_len};
  return current_->verify(data, signed_length, data + signed_length) ? AuthVerdict::kAuthenticated
                                                                     : AuthVerdict::kAuthFailed;
}

}  // namespace heartwatch
