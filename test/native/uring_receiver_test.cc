// The io_uring receive backend against recvmmsg: the same datagrams give the same messages and
// counters through either; a burst longer than the provided buffers re-arms the multishot; and
// where a seccomp policy refuses io_uring, 'auto' falls back to recvmmsg while 'io_uring' fails
// with the errno the kernel gave.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "core/common/system_error.h"
#include "core/engine/engine.h"
#include "core/engine/udp_receiver.h"

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

uint64_t counter(EngineStats& stats, ReceiverCounter field) {
  return EngineStats::get(stats.receiver(0), static_cast<uint32_t>(field));
}

// One receiver driven inline, as ingest_bench drives it, on a dual-stack loopback-reachable socket.
struct Bench {
  explicit Bench(ReceiveBackend backend, uint32_t recv_buffer = 16u << 20) : ring_(4096), stats_(1, 1) {
    EngineConfig config;
    config.receive_backend = backend;
    UdpSocket socket(UdpSocketOptions{"::", 0, recv_buffer, 50});
    port = socket.bound_port();
    receiver = std::make_unique<UdpReceiver>(0, config, std::move(socket), std::vector{&ring_},
                                             std::vector{&wake_}, stats_.receiver(0), -1);
  }
  // Receives until `expected` datagrams are counted or a wait comes back empty.
  void receive(uint64_t expected, std::vector<ShardMessage>& out) {
    while (counter(stats_, ReceiverCounter::kReceived) < expected) {
      if (receiver->receive_batch() == 0) break;
      take(out);
    }
    take(out);
  }
  void take(std::vector<ShardMessage>& out) {
    ShardMessage batch[256];
    size_t n;
    while ((n = ring_.pop_batch(batch, 256)) > 0) out.insert(out.end(), batch, batch + n);
  }
  SpscRing<ShardMessage> ring_;
  WakeSignal wake_;
  EngineStats stats_;
  uint16_t port = 0;
  std::unique_ptr<UdpReceiver> receiver;
};

class BothBackends : public testing::TestWithParam<ReceiveBackend> {};

TEST_P(BothBackends, GiveTheSameMessagesAndCounters) {
  Bench bench(GetParam());
  ASSERT_EQ(bench.receiver->backend(), GetParam());
  for (uint64_t id = 1; id <= 10; ++id) send_to(AF_INET, bench.port, heartbeat(id));
  for (uint64_t id = 11; id <= 15; ++id) send_to(AF_INET6, bench.port, heartbeat(id));
  send_to(AF_INET, bench.port, {1, 2, 3});
  send_to(AF_INET6, bench.port, std::vector<uint8_t>(40, 0));
  send_to(AF_INET, bench.port, heartbeat(0));  // host_id 0 is not valid
  send_to(AF_INET, bench.port, heartbeat(16, 3000));  // longer than a slot or a buffer: whole
  std::vector<uint8_t> signed_beat = heartbeat(17, 0, 0x02);  // AUTH, and this server has no key
  signed_beat.resize(28 + 16, 0x77);                          // the tag
  send_to(AF_INET, bench.port, signed_beat);

  std::vector<ShardMessage> messages;
  bench.receive(20, messages);
  EXPECT_EQ(counter(bench.stats_, ReceiverCounter::kReceived), 20u);
  EXPECT_EQ(counter(bench.stats_, ReceiverCounter::kMalformed), 3u);
  EXPECT_EQ(counter(bench.stats_, ReceiverCounter::kAuthUnsupported), 1u);
  EXPECT_EQ(counter(bench.stats_, ReceiverCounter::kRingDrops), 0u);
  ASSERT_EQ(messages.size(), 16u);
  std::set<uint64_t> keys;
  for (const ShardMessage& m : messages) {
    keys.insert(m.heartbeat.key);
    // IPv4-mapped sources fold back to IPv4 through either backend.
    EXPECT_EQ(m.heartbeat.address.family, m.heartbeat.key <= 10 || m.heartbeat.key == 16 ? 4 : 6)
        << m.heartbeat.key;
    EXPECT_NE(m.heartbeat.address.port, 0) << m.heartbeat.key;
  }
  EXPECT_EQ(keys.size(), 16u);
  EXPECT_EQ(*keys.begin(), 1u);
  EXPECT_EQ(*keys.rbegin(), 16u);
}

TEST_P(BothBackends, ReportTheKernelsDropCount) {
  // A small socket buffer overflows; the datagram queued after the overflow carries the count of
  // every drop before it, and none comes after it: so the count is exact.
  Bench bench(GetParam(), 4096);
  for (uint64_t id = 1; id <= 200; ++id) send_to(AF_INET, bench.port, heartbeat(id));
  std::vector<ShardMessage> messages;
  bench.receive(200, messages);
  const uint64_t first = counter(bench.stats_, ReceiverCounter::kReceived);
  ASSERT_LT(first, 200u);
  send_to(AF_INET, bench.port, heartbeat(201));
  bench.receive(first + 1, messages);
  EXPECT_EQ(counter(bench.stats_, ReceiverCounter::kReceived), first + 1);
  EXPECT_EQ(counter(bench.stats_, ReceiverCounter::kKernelDrops), 200 - first);
}

INSTANTIATE_TEST_SUITE_P(UringReceiver, BothBackends,
                         testing::Values(ReceiveBackend::kRecvmmsg, ReceiveBackend::kIoUring),
                         [](const testing::TestParamInfo<ReceiveBackend>& info) {
                           return info.param == ReceiveBackend::kIoUring ? "io_uring" : "recvmmsg";
                         });

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

// Makes io_uring_setup fail with EPERM for this process from now on, as a container runtime's
// seccomp profile does (Docker's default refuses io_uring).
bool refuse_io_uring() {
  sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog program{static_cast<unsigned short>(std::size(filter)), filter};
  return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
         syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &program) == 0;
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

// What the child found, as its exit status: 0 when every check held.
int fallback_checks() {
  if (!refuse_io_uring()) return 10;
  {
    Engine engine(engine_config(ReceiveBackend::kAuto), [] {});
    if (engine.receive_backend(0) != ReceiveBackend::kRecvmmsg) return 11;
    engine.start();
    send_to(AF_INET, engine.port(), heartbeat(42));
    std::vector<EventRecord> events(8);
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    size_t got = 0;
    while (got == 0 && std::chrono::steady_clock::now() < end) {
      engine.begin_drain();
      got = engine.drain_events(events.data(), events.size());
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    engine.stop();
    if (got != 1 || events[0].key != 42 || events[0].type != static_cast<uint8_t>(HostEventType::kUp)) return 12;
  }
  try {
    Engine engine(engine_config(ReceiveBackend::kIoUring), [] {});
    return 13;
  } catch (const SystemError& error) {
    if (error.error() != EPERM || std::string(error.what()).find("receiveBackend") == std::string::npos) return 14;
  }
  return 0;
}

TEST(UringReceiver, AutoFallsBackToRecvmmsgWhereSeccompRefusesIoUring) {
  {
    // Unfiltered, this kernel gives io_uring: so the fallback below is the filter's doing.
    Engine engine(engine_config(ReceiveBackend::kAuto), [] {});
    if (engine.receive_backend(0) != ReceiveBackend::kIoUring) GTEST_SKIP() << "no io_uring here";
  }
  // The filter stays with the process that installs it: a child installs it and reports.
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) _exit(fallback_checks());
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0) << "10: no filter, 11: auto kept io_uring, 12: no up event, "
                                       "13: io_uring accepted, 14: wrong error";
}

}  // namespace
}  // namespace heartwatch
