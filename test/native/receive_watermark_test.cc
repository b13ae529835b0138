// The receive watermark and lossy windows: expiry never passes what the receivers have read, a
// deadline where datagrams were lost gets one more timeout, and a receiver that breaks says so.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "core/detector/detector.h"
#include "core/engine/shard_worker.h"
#include "core/engine/udp_receiver.h"
#include "receive_backend_env.h"

namespace heartwatch {
namespace {

constexpr uint32_t kTimeoutMs = 100;

Heartbeat beat_of(uint64_t key) {
  Heartbeat hb{};
  hb.key = key;
  hb.address.family = 4;
  return hb;
}

DetectorConfig detector_config(ExpiryIndexKind index) {
  DetectorConfig c;
  c.timeout_ms = kTimeoutMs;
  c.missed_beats = 0;
  c.index = index;
  return c;
}

class DetectorHorizon : public ::testing::TestWithParam<ExpiryIndexKind> {};

TEST_P(DetectorHorizon, HoldsDeadlinesBeyondTheWatermark) {
  Detector detector(detector_config(GetParam()));
  std::vector<HostEvent> out;
  detector.heartbeat(beat_of(1), 1000, out);
  out.clear();
  // The clock is well past the deadline (1100), the watermark is not.
  detector.expire(5000, 100, out, ExpiryHorizon{1099, 0, 0});
  EXPECT_TRUE(out.empty());
  detector.expire(5000, 100, out, ExpiryHorizon{1100, 0, 0});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].type, HostEventType::kDown);
  EXPECT_FALSE(out[0].uncertain);
}

TEST_P(DetectorHorizon, DefersADeadlineInALossyWindowOnceThenFlagsTheDown) {
  Detector detector(detector_config(GetParam()));
  std::vector<HostEvent> out;
  detector.heartbeat(beat_of(1), 1000, out);
  detector.heartbeat(beat_of(2), 1000, out);
  out.clear();
  // Datagrams were lost in (1050, 1500]: both deadlines (1100) fall in it.
  detector.expire(1500, 100, out, ExpiryHorizon{1500, 1050, 1500});
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(detector.stats().deferred, 2u);
  // One more timeout counted from the window's end: not before 1600.
  detector.expire(1599, 100, out, ExpiryHorizon{1599, 1050, 1500});
  EXPECT_TRUE(out.empty());
  // Host 2 is heard again: it stays up, and its deferral is over.
  detector.heartbeat(beat_of(2), 1599, out);
  detector.expire(1600, 100, out, ExpiryHorizon{1600, 1050, 1500});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].key, 1u);
  EXPECT_TRUE(out[0].uncertain);
  EXPECT_EQ(detector.stats().uncertain, 1u);
  out.clear();
  detector.expire(1698, 100, out, ExpiryHorizon{1698, 1050, 1500});
  EXPECT_TRUE(out.empty());
  detector.expire(1699, 100, out, ExpiryHorizon{1699, 1050, 1500});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].key, 2u);
  EXPECT_FALSE(out[0].uncertain);
}

INSTANTIATE_TEST_SUITE_P(BothIndices, DetectorHorizon,
                         ::testing::Values(ExpiryIndexKind::kFifo, ExpiryIndexKind::kWheel));

std::vector<uint8_t> heartbeat_datagram(uint64_t host_id) {
  std::vector<uint8_t> d(28, 0);
  d[0] = 0x48;
  d[1] = 0x57;
  d[2] = 1;
  for (int i = 0; i < 8; ++i) d[4 + i] = static_cast<uint8_t>(host_id >> (56 - 8 * i));
  d[15] = 1;  // incarnation 1
  return d;
}

void send_to(uint16_t port, const std::vector<uint8_t>& datagram) {
  const int fd = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
  ASSERT_EQ(sendto(fd, datagram.data(), datagram.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)),
            static_cast<ssize_t>(datagram.size()));
  close(fd);
}

EngineConfig engine_config() {
  EngineConfig c;
  c.receive_backend = test_receive_backend();
  c.host = "127.0.0.1";
  c.port = 0;
  c.detector = detector_config(ExpiryIndexKind::kFifo);
  c.ring_capacity = 1024;
  c.event_ring_capacity = 1024;
  return c;
}

// One receiver and one worker on a loopback socket, driven inline by the test as their threads
// would be (the socket is moved into the receiver; `port` and `fd` are what it was bound to).
struct InlinePipeline {
  explicit InlinePipeline(uint32_t recv_buffer_bytes = engine_config().recv_buffer_bytes)
      : bound({config.host, config.port, recv_buffer_bytes}),
        port(bound.bound_port()),
        fd(bound.fd()),
        receiver(0, config, std::move(bound), {&worker.input(0)}, {&worker.wake()}, stats.receiver(0), -1) {}

  EngineConfig config = engine_config();
  EngineStats stats{1, 1};
  ShardWorker worker{0, config, stats.worker(0), -1, 0.0, [] {}};
  UdpSocket bound;
  uint16_t port;
  int fd;
  UdpReceiver receiver;
};

size_t downs(ShardWorker& worker) {
  std::vector<EventRecord> events(64);
  size_t count = 0;
  for (size_t n; (n = worker.drain_events(events.data(), events.size())) > 0;) {
    for (size_t i = 0; i < n; ++i) count += events[i].type == static_cast<uint8_t>(HostEventType::kDown);
  }
  return count;
}

// Receiver and worker driven inline, as their threads would be: a heartbeat waiting in the socket
// when the deadline passes (the receiver stalled) keeps its host up.
TEST(ReceiveWatermark, AHeartbeatStillInTheSocketHoldsItsHostUp) {
  InlinePipeline pipeline;
  auto& [config, stats, worker, bound, port, fd, receiver] = pipeline;
  worker.watch({&receiver.watermark()});

  send_to(port, heartbeat_datagram(7));
  ASSERT_EQ(receiver.receive_batch(), 1u);
  worker.step();
  // Its next heartbeat arrives before the deadline, but the receiver does not run (stalled).
  std::this_thread::sleep_for(std::chrono::milliseconds(kTimeoutMs / 2));
  send_to(port, heartbeat_datagram(7));
  std::this_thread::sleep_for(std::chrono::milliseconds(kTimeoutMs));
  worker.step();
  EXPECT_EQ(downs(worker), 0u) << "expired past a heartbeat the receiver had not read";
  EXPECT_GT(EngineStats::get(stats.worker(0), static_cast<uint32_t>(WorkerCounter::kExpiryWaits)), 0u);

  // The receiver catches up: the host stays up, then goes down one timeout after that beat.
  ASSERT_EQ(receiver.receive_batch(), 1u);
  worker.step();
  EXPECT_EQ(downs(worker), 0u);
  std::this_thread::sleep_for(std::chrono::milliseconds(kTimeoutMs + 5));
  receiver.receive_batch();  // an empty read publishes a fresh watermark
  worker.step();
  EXPECT_EQ(downs(worker), 1u);
}

// A heartbeat queued behind a burst longer than one read takes (a recvmmsg batch; with io_uring,
// more datagrams than the provided buffers, so the multishot ends on ENOBUFS with the rest still
// in the socket): the read that took the first part publishes nothing, so its host stays up.
TEST(ReceiveWatermark, AHeartbeatBehindALongBurstHoldsItsHostUp) {
  InlinePipeline pipeline;
  auto& [config, stats, worker, bound, port, fd, receiver] = pipeline;
  worker.watch({&receiver.watermark()});

  send_to(port, heartbeat_datagram(7));
  ASSERT_EQ(receiver.receive_batch(), 1u);
  worker.step();
  std::this_thread::sleep_for(std::chrono::milliseconds(kTimeoutMs / 2));
  constexpr uint64_t kBurst = 2 * kUringBufferCount;
  for (uint64_t id = 1000; id < 1000 + kBurst; ++id) send_to(port, heartbeat_datagram(id));
  send_to(port, heartbeat_datagram(7));
  std::this_thread::sleep_for(std::chrono::milliseconds(kTimeoutMs));
  const uint32_t first = receiver.receive_batch();
  ASSERT_GT(first, 0u);
  ASSERT_LT(first, kBurst + 1) << "one read took the whole burst: nothing left to test";
  worker.step();
  EXPECT_EQ(downs(worker), 0u) << "expired past a heartbeat still queued behind the burst";

  uint64_t taken = first;
  for (int reads = 0; taken < kBurst + 1 && reads < 1000; ++reads) taken += receiver.receive_batch();
  EXPECT_EQ(taken, kBurst + 1);
  worker.step();
  EXPECT_EQ(downs(worker), 0u);
  EXPECT_EQ(EngineStats::get(stats.receiver(0), static_cast<uint32_t>(ReceiverCounter::kKernelDrops)), 0u);
}

// Datagrams the kernel dropped on a full socket are counted (SO_RXQ_OVFL on the next datagram
// read) and published with the watermark as a loss (SO_MEMINFO), on either backend.
TEST(ReceiveWatermark, KernelDropsAreCountedAndPublished) {
  InlinePipeline pipeline(4096);  // the smallest buffer the kernel grants
  auto& [config, stats, worker, bound, port, fd, receiver] = pipeline;
  for (uint64_t id = 1; id <= 200; ++id) send_to(port, heartbeat_datagram(id));
  uint64_t taken = 0;
  for (uint32_t n = 1, reads = 0; n > 0 && reads < 50; ++reads) taken += n = receiver.receive_batch();
  ASSERT_LT(taken, 200u) << "nothing was dropped: the test needs a smaller buffer";
  send_to(port, heartbeat_datagram(7));  // queued after the drops: it carries their count
  ASSERT_EQ(receiver.receive_batch(), 1u);
  const uint64_t dropped = 200 - taken;
  EXPECT_EQ(EngineStats::get(stats.receiver(0), static_cast<uint32_t>(ReceiverCounter::kKernelDrops)), dropped);
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  receiver.receive_batch();  // an empty read publishes, with the loss count
  EXPECT_EQ(receiver.watermark().lost(), dropped);
}

TEST(ReceiveWatermark, AReceiverWhoseSocketBreaksReportsItAndHoldsExpiry) {
  InlinePipeline pipeline;
  auto& [config, stats, worker, bound, port, fd, receiver] = pipeline;
  worker.watch({&receiver.watermark()});
  std::atomic<int> failures{0};
  receiver.on_failure([&] { failures.fetch_add(1); });

  // Turn the socket into something recvmmsg cannot read.
  const int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(null_fd, 0);
  ASSERT_EQ(dup2(null_fd, fd), fd);
  close(null_fd);
  receiver.start();
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (failures.load() == 0 && std::chrono::steady_clock::now() < end) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  receiver.join();
  EXPECT_EQ(failures.load(), 1);
  EXPECT_EQ(EngineStats::get(stats.receiver(0), static_cast<uint32_t>(ReceiverCounter::kFailedErrno)),
            static_cast<uint64_t>(ENOTSOCK));
}

}  // namespace
}  // namespace heartwatch
