// The SHA-256 calls that take a saved state (see native/core/auth/key_ring.cc for why these).
#define OPENSSL_API_COMPAT 0x10101000L

#include "sim/tag_signer.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <stdexcept>

namespace heartwatch::sim {

// HMAC(K, m) = H((K0 ^ opad) || H((K0 ^ ipad) || m)), K0 the key zero-padded to the 64-byte
// block (hashed first when longer). The two keyed blocks are hashed once, here.
struct TagSigner::State {
  SHA256_CTX after_ipad;
  SHA256_CTX after_opad;
};

TagSigner::TagSigner(const std::vector<uint8_t>& key) : state_(std::make_unique<State>()) {
  if (key.empty()) throw std::invalid_argument("TagSigner: empty key");
  uint8_t k0[64] = {};
  if (key.size() > sizeof k0) {
    SHA256(key.data(), key.size(), k0);
  } else {
    for (size_t i = 0; i < key.size(); ++i) k0[i] = key[i];
  }
  uint8_t ipad[64], opad[64];
  for (size_t i = 0; i < sizeof k0; ++i) {
    ipad[i] = static_cast<uint8_t>(k0[i] ^ 0x36);
    opad[i] = static_cast<uint8_t>(k0[i] ^ 0x5c);
  }
  SHA256_Init(&state_->after_ipad);
  SHA256_Update(&state_->after_ipad, ipad, sizeof ipad);
  SHA256_Init(&state_->after_opad);
  SHA256_Update(&state_->after_opad, opad, sizeof opad);
  OPENSSL_cleanse(k0, sizeof k0);
  OPENSSL_cleanse(ipad, sizeof ipad);
  OPENSSL_cleanse(opad, sizeof opad);
}

TagSigner::~TagSigner() { OPENSSL_cleanse(state_.get(), sizeof(State)); }

void TagSigner::sign(const uint8_t* data, size_t length, uint8_t* tag) const noexcept {
  uint8_t inner[SHA256_DIGEST_LENGTH];
  SHA256_CTX ctx = state_->after_ipad;
  SHA256_Update(&ctx, data, length);
  SHA256_Final(inner, &ctx);
  uint8_t outer[SHA256_DIGEST_LENGTH];
  ctx = state_->after_opad;
  SHA256_Update(&ctx, inner, sizeof inner);
  SHA256_Final(outer, &ctx);
  for (size_t i = 0; i < kTagBytes; ++i) tag[i] = outer[i];
}

}  // namespace heartwatch::sim
