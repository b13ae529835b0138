// libFuzzer target for the TCP frame state machine: the stream after the first byte, fed in
// chunks whose sizes the first byte picks, must give exactly the frames (and the violation, if
// any) that a one-pass reference reading of docs/protocol.md ("Over TCP") finds in the whole
// stream at once. Whatever the chunking, the reader must agree.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "core/protocol/frame_reader.h"

namespace {

#define FUZZ_CHECK(condition)                                                             \
  do {                                                                                    \
    if (!(condition)) {                                                                   \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #condition); \
      std::abort();                                                                       \
    }                                                                                     \
  } while (0)

using heartwatch::FrameReader;
using heartwatch::ParsedHeartbeat;
using heartwatch::ParseStatus;

uint64_t read_be(const uint8_t* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | p[i];
  return v;
}

struct Reading {
  std::vector<uint64_t> hosts;  // each complete frame's host_id, in order
  bool violation = false;
};

// The whole stream at once, rule by rule.
Reading reference(const uint8_t* data, size_t size) {
  Reading out;
  size_t at = 0;
  while (size - at >= 28) {
    const uint8_t* h = data + at;
    const bool valid = h[0] == 0x48 && h[1] == 0x57 && h[2] == 1 && (h[3] & ~0x03) == 0 &&
                       read_be(h + 4, 8) != 0 && read_be(h + 26, 2) == 0;
    if (!valid) {
      out.violation = true;
      return out;
    }
    const size_t length = 28 + read_be(h + 24, 2) + ((h[3] & 0x02) ? 16 : 0);
    if (size - at < length) return out;
    out.hosts.push_back(read_be(h + 4, 8));
    at += length;
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const size_t chunk = 1 + data[0] % 64;
  const uint8_t* stream = data + 1;
  const size_t length = size - 1;

  Reading got;
  FrameReader reader;
  const uint8_t* frame_start = stream;  // where the frame in progress began
  for (size_t start = 0; start < length && !got.violation; start += chunk) {
    const uint8_t* at = stream + start;
    const uint8_t* end = stream + std::min(length, start + chunk);
    while (true) {
      // The position a caller hashing a frame as it arrives relies on (the TCP reactor's tags).
      FUZZ_CHECK(reader.frame_offset() == static_cast<size_t>(at - frame_start));
      ParsedHeartbeat parsed{};
      ParseStatus status{};
      const auto result = reader.next(at, end, parsed, status);
      if (result == FrameReader::Result::kViolation) {
        got.violation = true;
        break;
      }
      if (result == FrameReader::Result::kNeedMore) {
        FUZZ_CHECK(at == end);
        break;
      }
      FUZZ_CHECK(status == ParseStatus::kOk);  // an AUTH frame is kOk with parsed.auth set
      FUZZ_CHECK(reader.signed_frame() == parsed.auth);
      FUZZ_CHECK(reader.signed_bytes() == 28u + parsed.payload_len);
      FUZZ_CHECK(static_cast<size_t>(at - frame_start) == reader.signed_bytes() + (parsed.auth ? 16u : 0u));
      frame_start = at;
      got.hosts.push_back(parsed.host_id);
    }
  }
  const Reading expected = reference(stream, length);
  FUZZ_CHECK(got.violation == expected.violation);
  FUZZ_CHECK(got.hosts == expected.hosts);
  return 0;
}
