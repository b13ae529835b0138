// The TCP frame state machine: frames split at every byte boundary, many per read, the largest
// payload, AUTH tags, and streams that break the protocol.
#include "core/protocol/frame_reader.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace heartwatch {
namespace {

// A v1 frame, encoded from the spec here rather than with the server's code.
std::vector<uint8_t> frame(uint64_t host_id, uint32_t seq, uint16_t payload_len = 0,
                           uint8_t flags = 0) {
  std::vector<uint8_t> d(28 + payload_len + ((flags & 2) ? 16 : 0), 0xab);
  d[0] = 0x48;
  d[1] = 0x57;
  d[2] = 1;
  d[3] = flags;
  for (int i = 0; i < 8; ++i) d[4 + i] = static_cast<uint8_t>(host_id >> (56 - 8 * i));
  for (int i = 0; i < 4; ++i) d[12 + i] = static_cast<uint8_t>(7 >> (24 - 8 * i));
  for (int i = 0; i < 4; ++i) d[16 + i] = static_cast<uint8_t>(seq >> (24 - 8 * i));
  for (int i = 0; i < 4; ++i) d[20 + i] = 0;
  d[24] = static_cast<uint8_t>(payload_len >> 8);
  d[25] = static_cast<uint8_t>(payload_len);
  d[26] = d[27] = 0;
  return d;
}

struct Seen {
  std::vector<uint64_t> hosts;
  std::vector<uint32_t> seqs;
  std::vector<ParseStatus> statuses;
  std::vector<bool> auth;
  bool violation = false;
};

// Feeds `stream` in pieces whose ends are `cuts` (ascending, within the stream).
Seen feed(const std::vector<uint8_t>& stream, const std::vector<size_t>& cuts) {
  FrameReader reader;
  Seen seen;
  size_t start = 0;
  std::vector<size_t> ends = cuts;
  ends.push_back(stream.size());
  for (size_t end : ends) {
    const uint8_t* data = stream.data() + start;
    const uint8_t* stop = stream.data() + end;
    while (true) {
      ParsedHeartbeat parsed{};
      ParseStatus status{};
      const auto result = reader.next(data, stop, parsed, status);
      if (result == FrameReader::Result::kViolation) {
        seen.violation = true;
        return seen;
      }
      if (result == FrameReader::Result::kNeedMore) break;
      seen.hosts.push_back(parsed.host_id);
      seen.seqs.push_back(parsed.seq);
      seen.statuses.push_back(status);
      seen.auth.push_back(parsed.auth);
    }
    EXPECT_EQ(data, stop);
    start = end;
  }
  return seen;
}

std::vector<uint8_t> concat(const std::vector<std::vector<uint8_t>>& parts) {
  std::vector<uint8_t> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

// Statuses (issue 13): the reader keeps no payload; a caller places the bytes it fed by
// frame_offset() (taken before each call) and gathers a payload from them, as the TCP reactor
// does. At every cut, that yields each payload exactly, and never a tag byte.
TEST(FrameReader, FrameOffsetPlacesPayloadBytesAtEveryCut) {
  std::vector<uint8_t> a = frame(1, 0, 5);
  std::vector<uint8_t> b = frame(2, 1, 6, 2);  // with an AUTH tag
  std::vector<uint8_t> c = frame(3, 2, 0);
  for (int i = 0; i < 5; ++i) a[28 + i] = static_cast<uint8_t>('a' + i);
  for (int i = 0; i < 6; ++i) b[28 + i] = static_cast<uint8_t>('A' + i);
  const std::vector<uint8_t> stream = concat({a, b, c});
  for (size_t cut = 1; cut < stream.size(); ++cut) {
    FrameReader reader;
    std::string payload;
    std::vector<std::string> kept;
    for (size_t start : {size_t{0}, cut}) {
      const uint8_t* data = stream.data() + start;
      const uint8_t* stop = start == 0 ? stream.data() + cut : stream.data() + stream.size();
      while (data < stop) {
        const uint8_t* begin = data;
        const uint32_t offset = reader.frame_offset();
        ParsedHeartbeat parsed{};
        ParseStatus status{};
        const auto result = reader.next(data, stop, parsed, status);
        ASSERT_NE(result, FrameReader::Result::kViolation) << cut;
        if (!reader.header_complete() && result != FrameReader::Result::kFrame) continue;
        // Frame bytes [offset, offset + (data - begin)) were [begin, data).
        for (uint32_t at = offset; at < offset + (data - begin); ++at) {
          if (at >= 28 && at < reader.signed_bytes()) payload.push_back(static_cast<char>(begin[at - offset]));
        }
        if (result == FrameReader::Result::kFrame) {
          EXPECT_EQ(payload.size(), parsed.payload_len) << cut;
          kept.push_back(payload);
          payload.clear();
        }
      }
    }
    ASSERT_EQ(kept.size(), 3u) << cut;
    EXPECT_EQ(kept[0], "abcde") << cut;
    EXPECT_EQ(kept[1], "ABCDEF") << cut;
    EXPECT_EQ(kept[2], "") << cut;
  }
}

TEST(FrameReader, SplitAtEveryByteBoundaryOfTwoFrames) {
  const auto stream = concat({frame(1, 10, 5), frame(2, 20, 0, 2), frame(3, 30, 1)});
  for (size_t a = 0; a <= stream.size(); ++a) {
    for (size_t b = a; b <= stream.size(); b += 7) {
      const Seen seen = feed(stream, {a, b});
      ASSERT_FALSE(seen.violation) << a << "," << b;
      ASSERT_EQ(seen.hosts, (std::vector<uint64_t>{1, 2, 3})) << a << "," << b;
      ASSERT_EQ(seen.seqs, (std::vector<uint32_t>{10, 20, 30}));
      ASSERT_EQ(seen.statuses[1], ParseStatus::kOk);
      ASSERT_TRUE(seen.auth[1]);
      ASSERT_FALSE(seen.auth[2]);
    }
  }
}

TEST(FrameReader, OneByteAtATime) {
  const auto stream = concat({frame(9, 1, 3), frame(10, 2)});
  std::vector<size_t> cuts;
  for (size_t i = 1; i < stream.size(); ++i) cuts.push_back(i);
  const Seen seen = feed(stream, cuts);
  EXPECT_EQ(seen.hosts, (std::vector<uint64_t>{9, 10}));
}

TEST(FrameReader, ManyFramesInOneRead) {
  std::vector<std::vector<uint8_t>> frames;
  for (uint32_t i = 1; i <= 2000; ++i) frames.push_back(frame(i, i, static_cast<uint16_t>(i % 40)));
  const Seen seen = feed(concat(frames), {});
  ASSERT_EQ(seen.hosts.size(), 2000u);
  for (uint32_t i = 0; i < 2000; ++i) EXPECT_EQ(seen.hosts[i], i + 1);
}

TEST(FrameReader, LargestPayloadInRandomPieces) {
  const auto stream = concat({frame(5, 1, 65479), frame(6, 2, 65535, 2), frame(7, 3)});
  std::mt19937 random(42);
  for (int trial = 0; trial < 20; ++trial) {
    std::vector<size_t> cuts;
    for (size_t at = 0; at < stream.size();) {
      at += 1 + random() % 9000;
      if (at < stream.size()) cuts.push_back(at);
    }
    const Seen seen = feed(stream, cuts);
    ASSERT_EQ(seen.hosts, (std::vector<uint64_t>{5, 6, 7}));
  }
}

// What the TCP reactor needs to hash a signed frame as it arrives: how far into the frame each
// read begins, and the header's AUTH flag and signed length once it is complete.
TEST(FrameReader, FrameOffsetCountsTheFrameInProgressByteByByte) {
  const auto signed_frame = frame(1, 1, 5, 2);  // 28 + 5 + 16
  FrameReader reader;
  ParsedHeartbeat parsed{};
  ParseStatus status{};
  for (size_t i = 0; i + 1 < signed_frame.size(); ++i) {
    ASSERT_EQ(reader.frame_offset(), i);
    const uint8_t* data = signed_frame.data() + i;
    ASSERT_EQ(reader.next(data, data + 1, parsed, status), FrameReader::Result::kNeedMore);
    EXPECT_EQ(reader.header_complete(), i + 1 >= 28);
  }
  EXPECT_TRUE(reader.signed_frame());
  EXPECT_EQ(reader.signed_bytes(), 33u);
  const uint8_t* last = signed_frame.data() + signed_frame.size() - 1;
  ASSERT_EQ(reader.next(last, last + 1, parsed, status), FrameReader::Result::kFrame);
  EXPECT_EQ(reader.frame_offset(), 0u);
}

TEST(FrameReader, MidFrameOnlyBetweenAFramesFirstAndLastByte) {
  FrameReader reader;
  const auto f = frame(1, 1, 4);
  ParsedHeartbeat parsed{};
  ParseStatus status{};
  EXPECT_FALSE(reader.mid_frame());
  const uint8_t* data = f.data();
  EXPECT_EQ(reader.next(data, f.data() + 10, parsed, status), FrameReader::Result::kNeedMore);
  EXPECT_TRUE(reader.mid_frame());
  EXPECT_EQ(reader.next(data, f.data() + 30, parsed, status), FrameReader::Result::kNeedMore);
  EXPECT_TRUE(reader.mid_frame());
  EXPECT_EQ(reader.next(data, f.data() + f.size(), parsed, status), FrameReader::Result::kFrame);
  EXPECT_FALSE(reader.mid_frame());
}

TEST(FrameReader, EveryBrokenHeaderRuleIsAViolationAfterTheGoodFrames) {
  struct Case {
    size_t byte;
    uint8_t value;
  };
  // magic, magic, version, reserved flag bit, reserved field, host_id 0
  for (const Case c : {Case{0, 0x00}, Case{1, 0x58}, Case{2, 2}, Case{3, 0x04}, Case{27, 1}}) {
    auto bad = frame(3, 3);
    bad[c.byte] = c.value;
    const Seen seen = feed(concat({frame(1, 1), frame(2, 2), bad, frame(4, 4)}), {});
    EXPECT_TRUE(seen.violation) << c.byte;
    EXPECT_EQ(seen.hosts, (std::vector<uint64_t>{1, 2})) << c.byte;
  }
  const Seen zero = feed(concat({frame(1, 1), frame(0, 2)}), {});
  EXPECT_TRUE(zero.violation);
}

TEST(FrameReader, GarbageIsAViolationWithinOneHeader) {
  std::vector<uint8_t> garbage(28, 0);
  for (size_t i = 0; i < garbage.size(); ++i) garbage[i] = static_cast<uint8_t>(i * 37 + 11);
  const Seen seen = feed(garbage, {});
  EXPECT_TRUE(seen.violation);
  EXPECT_TRUE(seen.hosts.empty());
}

}  // namespace
}  // namespace heartwatch
