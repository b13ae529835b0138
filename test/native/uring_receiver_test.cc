// The io_uring reader on its own: a burst longer than the provided buffers re-arms the
// multishot. The receiver does not read with it yet (it would skip the receive watermark and the
// allow-list and auth checks): 'auto' reads with recvmmsg and 'io_uring' is refused by name.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/engine/engine.h"
#include "core/engine/udp_receiver.h"
#include "core/net/uring_reader.h"
#include "core/protocol/heartbeat_parser.h"

namespace heartwatch {
namespace {

// A v1 heartbeat, encoded from the spec here rather than with the server's code.
std::vector<uint8_t> heartbeat(uint64_t host_id, uint16_t payload = 0, uint8_t flags = 0) {
  std::vector<uint8_t> d(28 + payload, 0x5a);
  std::fill(d.begin(), d.begin() + 28, 0);
  d[0] = 0x48;
  d[1] = 0x57;
  d[2] = 1;
  d[3] = flags;
  for (int i = 0; i < 8; ++i) d[4 + i] = static_cast<uint8_t>(host_id >> (56 - 8 * i));
  d[24] = static_cast<uint8_t>(payload >> 8);
  d[25] = static_cast<uint8_t>(payload);
  return d;
}

void send_to(int family, uint16_t port, const std::vector<uint8_t>& d) {
  const int fd = socket(family, SOCK_DGRAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_storage to{};
  socklen_t length;
  if (family == AF_INET) {
    auto* v4 = reinterpret_cast<sockaddr_in*>(&to);
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    v4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    length = sizeof(sockaddr_in);
  } else {
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&to);
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    v6->sin6_addr = in6addr_loopback;
    length = sizeof(sockaddr_in6);
  }
  ASSERT_EQ(sendto(fd, d.data(), d.size(), 0, reinterpret_cast<sockaddr*>(&to), length),
            static_cast<ssize_t>(d.size()));
  close(fd);
}

TEST(UringReader, BurstLongerThanTheBuffersRearmsTheMultishot) {
  // 16 buffers and waits of up to 64: the kernel fills every buffer before the reader returns
  // any, the multishot ends with ENOBUFS, and the reader must arm it again for the rest.
  UdpSocket socket(UdpSocketOptions{"127.0.0.1", 0, 16u << 20, 50});
  int error = 0;
  const char* call = "";
  std::unique_ptr<UringReader> reader = UringReader::open(socket.fd(), 64, 16, error, call);
  if (!reader) GTEST_SKIP() << call << " refused: " << error;
  ASSERT_EQ(reader->attach(), 0);
  constexpr uint64_t kTotal = 200;
  for (uint64_t id = 1; id <= kTotal; ++id) send_to(AF_INET, socket.bound_port(), heartbeat(id));
  std::vector<ReceivedDatagram> out(64);
  std::set<uint64_t> keys;
  uint32_t drops = 0;
  int waits = 0;
  while (keys.size() < kTotal && waits++ < 1000) {
    const int n = reader->wait(out.data(), 200, drops);
    ASSERT_GE(n, 0);
    if (n == 0) break;
    ASSERT_LE(n, 16);
    for (int i = 0; i < n; ++i) {
      ParsedHeartbeat parsed{};
      ASSERT_EQ(parse_heartbeat_v1(out[i].data, out[i].length, parsed), ParseStatus::kOk);
      EXPECT_EQ(out[i].source->ss_family, AF_INET);
      keys.insert(parsed.host_id);
    }
    reader->release();
  }
  EXPECT_EQ(keys.size(), kTotal);
  EXPECT_EQ(drops, 0u);
}

EngineConfig engine_config(ReceiveBackend backend) {
  EngineConfig c;
  c.host = "127.0.0.1";
  c.port = 0;
  c.detector.timeout_ms = 60'000;
  c.detector.missed_beats = 0;
  c.detector.index = ExpiryIndexKind::kFifo;
  c.detector.max_hosts = 1000;
  c.ring_capacity = 1024;
  c.event_ring_capacity = 1024;
  c.receive_backend = backend;
  return c;
}

TEST(UringReceiver, AutoReadsWithRecvmmsg) {
  Engine engine(engine_config(ReceiveBackend::kAuto), [] {});
  EXPECT_EQ(engine.receive_backend(0), ReceiveBackend::kRecvmmsg);
}

TEST(UringReceiver, IoUringIsRefusedUntilItHonoursTheWatermark) {
  try {
    Engine engine(engine_config(ReceiveBackend::kIoUring), [] {});
    FAIL() << "receiveBackend io_uring accepted";
  } catch (const std::invalid_argument& error) {
    const std::string what = error.what();
    EXPECT_NE(what.find("receiveBackend"), std::string::npos) << what;
    EXPECT_NE(what.find("watermark"), std::string::npos) << what;
  }
}

}  // namespace
}  // namespace heartwatch
