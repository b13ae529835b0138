// The simulator's own heartbeat tag (docs/protocol.md, "Authentication"): the first 16 bytes of
// HMAC-SHA256(key, datagram without the tag), written from RFC 2104 and the spec, sharing no code
// with the server's KeyRing, so an end-to-end test that feeds one into the other checks both
// against the spec. SHA-256 itself is OpenSSL's (node's copy in the addon).
//
// Runs on: the simulator's thread (built with it; immutable afterwards).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace heartwatch::sim {

class TagSigner {
 public:
  static constexpr size_t kTagBytes = 16;

  // Throws std::invalid_argument for an empty key.
  explicit TagSigner(const std::vector<uint8_t>& key);
  ~TagSigner();
  TagSigner(const TagSigner&) = delete;
  TagSigner& operator=(const TagSigner&) = delete;

  // Writes the tag of data[0, length) to `tag`.
  void sign(const uint8_t* data, size_t length, uint8_t* tag) const noexcept;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace heartwatch::sim
