#include "core/protocol/frame_reader.h"

#include <algorithm>
#include <cstring>

namespace heartwatch {

FrameReader::Result FrameReader::next(const uint8_t*& data, const uint8_t* end, ParsedHeartbeat& frame,
                                      ParseStatus& status, uint8_t* keep, uint32_t keep_capacity) noexcept {
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
      if (keep != nullptr) {
        // Where these bytes fall in the body, from the header: the payload, then any tag.
        const uint32_t payload = static_cast<uint32_t>(header_[24]) << 8 | header_[25];
        const uint32_t body = payload + ((header_[3] & kHeartbeatFlagAuth) != 0 ? kAuthTagBytes : 0);
        const uint32_t done = body - body_left_;
        if (payload <= keep_capacity && done < payload) {
          std::memcpy(keep + done, data, std::min<size_t>(skip, payload - done));
        }
      }
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

}  // namespace heartwatch
