// SHA256_Init/Update/Final are the only OpenSSL calls that take a precomputed state without an
// allocation or a provider lookup per call; OpenSSL 3 marks them deprecated but keeps them, and
// so does every Node release's bundled copy. This asks for the 1.1.1 API, where they are current.
#define OPENSSL_API_COMPAT 0x10101000L

#include "core/auth/key_ring.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <cstring>
#include <stdexcept>
#include <string>

#include "core/protocol/heartbeat_parser.h"

namespace heartwatch {
namespace {

constexpr size_t kBlockBytes = SHA256_CBLOCK;  // 64
constexpr uint8_t kInnerPad = 0x36, kOuterPad = 0x5c;

}  // namespace

struct KeyRing::Pads {
  SHA256_CTX inner;  // state after the block key ^ ipad
  SHA256_CTX outer;  // state after the block key ^ opad
};

namespace {

const std::vector<AuthKey>& validated(const std::vector<AuthKey>& keys) {
  if (keys.size() > kMaxAuthKeys) {
    throw std::invalid_argument("KeyRing: at most " + std::to_string(kMaxAuthKeys) + " keys");
  }
  for (const AuthKey& key : keys) {
    if (key.size() < kMinAuthKeyBytes || key.size() > kMaxAuthKeyBytes) {
      throw std::invalid_argument("KeyRing: a key must be " + std::to_string(kMinAuthKeyBytes) + " to " +
                                  std::to_string(kMaxAuthKeyBytes) + " bytes");
    }
  }
  return keys;
}

}  // namespace

KeyRing::KeyRing(const std::vector<AuthKey>& keys)
    : pads_(new Pads[validated(keys).size()]), count_(keys.size()) {
  for (size_t k = 0; k < keys.size(); ++k) {
    const AuthKey& key = keys[k];
    // RFC 2104: a key longer than the block is replaced by its hash, then zero-padded.
    uint8_t block[kBlockBytes] = {};
    if (key.size() > kBlockBytes) {
      SHA256(key.data(), key.size(), block);
    } else {
      std::memcpy(block, key.data(), key.size());
    }
    uint8_t padded[kBlockBytes];
    for (size_t i = 0; i < kBlockBytes; ++i) padded[i] = block[i] ^ kInnerPad;
    SHA256_Init(&pads_[k].inner);
    SHA256_Update(&pads_[k].inner, padded, kBlockBytes);
    for (size_t i = 0; i < kBlockBytes; ++i) padded[i] = block[i] ^ kOuterPad;
    SHA256_Init(&pads_[k].outer);
    SHA256_Update(&pads_[k].outer, padded, kBlockBytes);
    OPENSSL_cleanse(block, sizeof block);
    OPENSSL_cleanse(padded, sizeof padded);
  }
}

KeyRing::~KeyRing() { OPENSSL_cleanse(pads_.get(), sizeof(Pads) * count_); }

void KeyRing::tag_with(const Pads& pads, const uint8_t* data, size_t length, uint8_t* mac) const noexcept {
  SHA256_CTX ctx = pads.inner;
  SHA256_Update(&ctx, data, length);
  SHA256_Final(mac, &ctx);
  ctx = pads.outer;
  SHA256_Update(&ctx, mac, SHA256_DIGEST_LENGTH);
  SHA256_Final(mac, &ctx);
}

bool KeyRing::verify(const uint8_t* data, size_t length, const uint8_t* tag) const noexcept {
  int matched = 0;
  for (size_t k = 0; k < count_; ++k) {
    uint8_t mac[SHA256_DIGEST_LENGTH];
    tag_with(pads_[k], data, length, mac);
    matched |= CRYPTO_memcmp(mac, tag, kAuthTagBytes) == 0;
  }
  return matched != 0;
}

void KeyRing::sign(const uint8_t* data, size_t length, uint8_t* tag) const noexcept {
  uint8_t mac[SHA256_DIGEST_LENGTH];
  tag_with(pads_[0], data, length, mac);
  std::memcpy(tag, mac, kAuthTagBytes);
}

}  // namespace heartwatch
