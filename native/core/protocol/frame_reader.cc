#include "core/protocol/frame_reader.h"

#include <algorithm>
#include <cstring>

namespace heartwatch {

FrameReader::Result FrameReader::next(const uint8_t*& data, const uint8_t* end, ParsedHeartbeat& frame,
                                      ParseStatus& status) noexcept {
  while (data < end) {
    if (filled_ < kHeartbeatHeaderBytes) {
      const size_t take = std::min<size_t>(kHeartbeatHeaderBytes - filled_, end - data);
      std::memcpy(header_ + filled_, data, take);
      filled_ = static_cast<uint8_t>(filled_ + take);
      data += take;
      if (filled_ < kHeartbeatHeaderBytes) return Result::kNeedMore;
      size_t message_bytes = 0;
      if (parse_heartbeat_header_v1(header_, frame, message_bytes) == ParseStatus::kMalformed) {
        return Result::kViolation;
      }
      body_left_ = static_cast<uint32_t>(message_bytes - kHeartbeatHeaderBytes);
    } else {
      const size_t skip = std::min<size_t>(body_left_, end - data);
      body_left_ -= static_cast<uint32_t>(skip);
      data += skip;
    }
    if (body_left_ == 0) {
      size_t message_bytes = 0;
      status = parse_heartbeat_header_v1(header_, frame, message_bytes);
      filled_ = 0;
      return Result::kFrame;
    }
  }
  return Result::kNeedMore;
}

uint32_t FrameReader::frame_offset() const noexcept {
  if (filled_ < kHeartbeatHeaderBytes) return filled_;
  const uint32_t frame = signed_bytes() + (signed_frame() ? kAuthTagBytes : 0);
  return frame - body_left_;
}

}  // namespace heartwatch
