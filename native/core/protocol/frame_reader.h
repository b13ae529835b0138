// Splits a TCP byte stream into v1 heartbeat frames (docs/protocol.md, "Over TCP").
//
// A stream carries v1 heartbeats back to back; each one delimits itself by its header:
// 28 + payload_len bytes, +16 with AUTH. The reader is a two-state machine (header, body) fed
// whatever each read() returned, so a frame may be split at any byte and many frames may arrive
// in one read. It holds only the 28-byte header of the frame in progress; the payload and the
// tag are skipped, not kept, so a connection's memory does not depend on its frames' sizes. A
// caller that wants a payload (a host's status) takes it from the bytes it fed, which
// frame_offset() places in the frame.
//
// A header that breaks a v1 rule (magic, version, flag bits, reserved field, host_id 0) is a
// violation: the stream cannot be re-synchronised, so the caller closes the connection.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/protocol/heartbeat_parser.h"

namespace heartwatch {

class FrameReader {
 public:
  enum class Result : uint8_t { kNeedMore, kFrame, kViolation };

  // Consumes bytes from [data, end), advancing `data`, until one frame completes (kFrame: `frame`
  // and `status`, kOk, describe it; frame.auth says a tag followed), the bytes run out (kNeedMore),
  // or the stream breaks the protocol (kViolation; the reader must not be fed again).
  // Runs on: the owning reactor thread.
  Result next(const uint8_t*& data, const uint8_t* end, ParsedHeartbeat& frame, ParseStatus& status) noexcept;

  // Whether part of a frame has been received and the rest has not.
  bool mid_frame() const noexcept { return filled_ != 0; }

  // For a caller that hashes a frame as it arrives (a signed frame split across reads):
  // the bytes of the frame in progress taken so far, header included (0 between frames); and,
  // once its header is complete (and after kFrame, until the next call), the header, whether
  // AUTH is set, and how many bytes the tag covers (header and payload).
  uint32_t frame_offset() const noexcept;
  bool header_complete() const noexcept { return filled_ == kHeartbeatHeaderBytes; }
  const uint8_t* header() const noexcept { return header_; }
  bool signed_frame() const noexcept { return (header_[3] & kHeartbeatFlagAuth) != 0; }
  uint32_t signed_bytes() const noexcept {
    return static_cast<uint32_t>(kHeartbeatHeaderBytes) + (uint32_t{header_[24]} << 8 | header_[25]);
  }

 private:
  uint8_t header_[kHeartbeatHeaderBytes] = {};
  // Header bytes held; kHeartbeatHeaderBytes while the body is being skipped.
  uint8_t filled_ = 0;
  uint32_t body_left_ = 0;  // payload and tag bytes still to skip
};

}  // namespace heartwatch
