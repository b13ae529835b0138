// The keys a server verifies heartbeat tags with (docs/protocol.md, "Authentication"): the first
// 16 bytes of HMAC-SHA256(key, header || payload), compared in constant time.
//
// SHA-256 is OpenSSL's: in the addon, the copy the node binary carries and exports to addons (no
// library to install, the prebuilt binary loads anywhere Node does); in the standalone CMake
// build, the system libcrypto. Each key's HMAC inner and outer states (the SHA-256 state after
// the padded key block, RFC 2104) are computed once here, so a tag costs the compression calls of
// the datagram itself plus one for the outer hash, with no allocation.
//
// Immutable after construction. Runs on: built on the JS thread, then owned and used by one
// receiver thread (UdpReceiver swaps rings in, see set_keys there).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace heartwatch {

inline constexpr size_t kMaxAuthKeys = 8;       // every key is tried on a failing tag: keep it small
inline constexpr size_t kMinAuthKeyBytes = 16;  // 128 bits; 32 recommended
inline constexpr size_t kMaxAuthKeyBytes = 1024;

using AuthKey = std::vector<uint8_t>;

class KeyRing {
 public:
  // An empty ring checks nothing (the server has no key). Throws std::invalid_argument for more
  // than kMaxAuthKeys keys or a key outside kMinAuthKeyBytes..kMaxAuthKeyBytes.
  explicit KeyRing(const std::vector<AuthKey>& keys);
  ~KeyRing();
  KeyRing(const KeyRing&) = delete;
  KeyRing& operator=(const KeyRing&) = delete;

  bool empty() const noexcept { return count_ == 0; }
  size_t size() const noexcept { return count_; }

  // True if `tag` (16 bytes) is the tag of data[0, length) under any key. Every key is checked
  // and every compare is constant-time, so the time taken does not say which key or byte failed.
  bool verify(const uint8_t* data, size_t length, const uint8_t* tag) const noexcept;

  // Writes the 16-byte tag of data[0, length) under the first key (the signing key). Needs a
  // non-empty ring.
  void sign(const uint8_t* data, size_t length, uint8_t* tag) const noexcept;

 private:
  struct Pads;
  void tag_with(const Pads& pads, const uint8_t* data, size_t length, uint8_t* mac) const noexcept;

  std::unique_ptr<Pads[]> pads_;
  size_t count_;
};

}  // namespace heartwatch
