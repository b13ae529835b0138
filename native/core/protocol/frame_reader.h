// Splits a TCP byte stream into v1 heartbeat frames (docs/protocol.md, "Over TCP").
//
// A stream carries v1 heartbeats back to back; each one delimits itself by its header:
// 28 + payload_len bytes, +16 with AUTH. The reader is a two-state machine (header, body) fed
// whatever each read() returned, so a frame may be split at any byte and many frames may arrive
// in one read. It holds only the 28-byte header of the frame in progress; the payload and the
// tag are skipped, not kept, so a connection's memory does not depend on its frames' sizes;
// except that a payload up to a fixed size (a host's status) is copied into a buffer the caller
// gives with each call (the reader keeps no pointer to it: it works out where the bytes go from
// the header and the bytes still to skip).
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
  // or the stream breaks the protocol (kViolation; the reader must not be fed again). With
  // `keep`, a payload of at most `keep_capacity` bytes is copied there as it arrives: after
  // kFrame, `keep` holds all frame.payload_len bytes when that is at most `keep_capacity`. Pass
  // the same buffer for every call on one stream.
  // Runs on: the owning reactor thread.
  Result next(const uint8_t*& data, const uint8_t* end, ParsedHeartbeat& frame, ParseStatus& status,
              uint8_t* keep = nullptr, uint32_t keep_capacity = 0) noexcept;

  // Whether part of a frame has been received and the rest has not.
  bool mid_frame() const noexcept { return filled_ != 0; }

 private:
  uint8_t header_[kHeartbeatHeaderBytes];
  // Header bytes held; kHeartbeatHeaderBytes while the body is being skipped.
  uint8_t filled_ = 0;
  uint32_t body_left_ = 0;  // payload and tag bytes still to skip
};

}  // namespace heartwatch
