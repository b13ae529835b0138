// The io_uring receive backend: the reader on its own (a burst longer than the provided buffers
// re-arms the multishot, buffers come back in ring order, a collect that waits never blocks),
// and the receiver's choice of backend where a seccomp policy refuses io_uring ('auto' falls
// back to recvmmsg and says why; 'io_uring' fails, naming the option).
// The engine's receiving tests run on both backends (receive_backend_env.h).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstddef>
#include <set>
#include <string>
#include <vector>

#include "core/common/monotonic_clock.h"
#include "core/common/system_error.h"
#include "core/engine/engine.h"
#include "core/net/uring_reader.h"
#include "core/protocol/heartbeat_parser.h"

namespace heartwatch {
namespace {

std::vector<uint8_t> heartbeat(uint64_t host_id) {
  std::vector<uint8_t> d(28, 0);
  d[0] = 0x48;
  d[1] = 0x57;
  d[2] = 1;
  for (int i = 0; i < 8; ++i) d[4 + i] = static_cast<uint8_t>(host_id >> (56 - 8 * i));
  return d;
}

void send_to(uint16_t port, const std::vector<uint8_t>& d) {
  const int fd = socket(AF_INET, SOCK_DGRAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(sendto(fd, d.data(), d.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)),
            static_cast<ssize_t>(d.size()));
  close(fd);
}

TEST(UringReader, BurstLongerThanTheBuffersRearmsTheMultishot) {
  // 16 buffers: the kernel fills every one before the reader returns any, the multishot ends
  // with ENOBUFS, and collect() must arm it again for the rest.
  UdpSocket socket(UdpSocketOptions{"127.0.0.1", 0, 16u << 20, 50});
  int error = 0;
  const char* call = "";
  std::unique_ptr<UringReader> reader = UringReader::open(socket.fd(), 16, error, call);
  ASSERT_TRUE(reader) << call << " refused: " << error;
  ASSERT_EQ(reader->attach(), 0);
  constexpr uint64_t kTotal = 200;
  for (uint64_t id = 1; id <= kTotal; ++id) send_to(socket.bound_port(), heartbeat(id));
  std::vector<ReceivedDatagram> out(64);
  std::set<uint64_t> keys;
  uint32_t drops = 0;
  for (int rounds = 0; keys.size() < kTotal && rounds < 1000; ++rounds) {
    ASSERT_EQ(reader->collect(), 0);
    for (uint32_t n; (n = reader->take(out.data(), 64, drops)) > 0;) {
      ASSERT_LE(n, 16u);
      for (uint32_t i = 0; i < n; ++i) {
        ParsedHeartbeat parsed{};
        ASSERT_EQ(parse_heartbeat_v1(out[i].data, out[i].length, parsed), ParseStatus::kOk);
        EXPECT_EQ(out[i].source->ss_family, AF_INET);
        keys.insert(parsed.host_id);
      }
    }
    reader->release();
    EXPECT_EQ(reader->error(), 0);
  }
  EXPECT_EQ(keys.size(), kTotal);
  EXPECT_EQ(drops, 0u);
  reader->cancel();
}

TEST(UringReader, TheKernelTakesTheBuffersInRingOrderLapAfterLap) {
  // release() hands buffers back with the tail store alone, on the ground that slot i keeps
  // buffer i and the kernel takes slots in order: then the k-th datagram lands in buffer k mod 8,
  // lap after lap, whether each collect() waits for completions or not.
  constexpr uint32_t kBuffers = 8;
  UdpSocket socket(UdpSocketOptions{"127.0.0.1", 0, 16u << 20, 50});
  int error = 0;
  const char* call = "";
  std::unique_ptr<UringReader> reader = UringReader::open(socket.fd(), kBuffers, error, call);
  ASSERT_TRUE(reader) << call << " refused: " << error;
  ASSERT_EQ(reader->attach(), 0);
  constexpr uint64_t kTotal = 100;
  for (uint64_t id = 1; id <= kTotal; ++id) send_to(socket.bound_port(), heartbeat(id));
  std::vector<ReceivedDatagram> out(kBuffers);
  std::vector<const uint8_t*> first_lap;
  uint64_t next = 1;
  uint32_t drops = 0;
  for (int rounds = 0; next <= kTotal && rounds < 1000; ++rounds) {
    ASSERT_EQ(reader->collect(rounds % 2 == 0 ? 0 : kBuffers), 0);
    for (uint32_t n; (n = reader->take(out.data(), kBuffers, drops)) > 0;) {
      for (uint32_t i = 0; i < n; ++i, ++next) {
        ParsedHeartbeat parsed{};
        ASSERT_EQ(parse_heartbeat_v1(out[i].data, out[i].length, parsed), ParseStatus::kOk);
        EXPECT_EQ(parsed.host_id, next);  // one socket, one sender: in order
        if (first_lap.size() < kBuffers) first_lap.push_back(out[i].data);
        EXPECT_EQ(out[i].data, first_lap[(next - 1) % kBuffers]) << "datagram " << next;
      }
    }
    reader->release();
    EXPECT_EQ(reader->error(), 0);
  }
  EXPECT_EQ(next, kTotal + 1);
  EXPECT_EQ(std::set<const uint8_t*>(first_lap.begin(), first_lap.end()).size(), kBuffers);
  reader->cancel();
}

TEST(UringReader, ACollectThatWaitsReturnsAtOnceFromAnEmptySocket) {
  // collect(n) asks for n completions with a timeout already passed: where the socket holds
  // fewer, it returns 0 (not ETIME) without waiting, and takes what there is.
  UdpSocket socket(UdpSocketOptions{"127.0.0.1", 0, 1u << 20, 50});
  int error = 0;
  const char* call = "";
  std::unique_ptr<UringReader> reader = UringReader::open(socket.fd(), 64, error, call);
  ASSERT_TRUE(reader) << call << " refused: " << error;
  ASSERT_EQ(reader->attach(), 0);
  std::vector<ReceivedDatagram> out(64);
  uint32_t drops = 0;
  const uint64_t started = monotonic_ns();
  for (int i = 0; i < 100; ++i) ASSERT_EQ(reader->collect(32), 0);
  EXPECT_LT(monotonic_ns() - started, 1'000'000'000u);  // 100 calls, each some microseconds
  EXPECT_EQ(reader->take(out.data(), 64, drops), 0u);
  for (uint64_t id = 1; id <= 5; ++id) send_to(socket.bound_port(), heartbeat(id));
  uint32_t taken = 0;
  for (int rounds = 0; taken < 5 && rounds < 100; ++rounds) {
    ASSERT_EQ(reader->collect(32), 0);
    for (uint32_t n; (n = reader->take(out.data(), 64, drops)) > 0;) taken += n;
    reader->release();
  }
  EXPECT_EQ(taken, 5u);
  reader->cancel();
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

TEST(UringReceiver, EachBackendIsTheOneAskedFor) {
  Engine recvmmsg(engine_config(ReceiveBackend::kRecvmmsg), [] {});
  EXPECT_EQ(recvmmsg.receive_backend(0), ReceiveBackend::kRecvmmsg);
  Engine io_uring(engine_config(ReceiveBackend::kIoUring), [] {});
  EXPECT_EQ(io_uring.receive_backend(0), ReceiveBackend::kIoUring);
  Engine automatic(engine_config(ReceiveBackend::kAuto), [] {});
  EXPECT_EQ(automatic.receive_backend(0),
            kAutoPrefersIoUring ? ReceiveBackend::kIoUring : ReceiveBackend::kRecvmmsg);
  EXPECT_EQ(automatic.receive_backend_fallback(0), "");
}

// Makes io_uring_setup fail with EPERM in this process, as a container runtime's seccomp policy
// does (Docker's default profile since 25.0), and leaves every other call alone.
bool refuse_io_uring_setup() {
  sock_filter program[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog filter{static_cast<unsigned short>(sizeof(program) / sizeof(program[0])), program};
  return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
         prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &filter) == 0;
}

// What an engine asked for `backend` does under that policy, as one line the parent checks.
std::string outcome_under_policy(ReceiveBackend backend) {
  try {
    Engine engine(engine_config(backend), [] {});
    return std::string(engine.receive_backend(0) == ReceiveBackend::kIoUring ? "io_uring" : "recvmmsg") +
           " fallback=" + engine.receive_backend_fallback(0);
  } catch (const SystemError& error) {
    return std::string("error ") + error.code() + " " + error.what();
  }
}

// Runs outcome_under_policy in a forked child with the filter installed: the filter cannot be
// removed, so the test process itself stays unfiltered.
std::string run_under_policy(ReceiveBackend backend) {
  int pipe_fds[2];
  if (pipe(pipe_fds) != 0) return "pipe failed";
  const pid_t child = fork();
  if (child == 0) {
    close(pipe_fds[0]);
    const std::string line = refuse_io_uring_setup() ? outcome_under_policy(backend) : "seccomp refused";
    [[maybe_unused]] const ssize_t written = write(pipe_fds[1], line.data(), line.size());
    _exit(0);
  }
  close(pipe_fds[1]);
  std::string line;
  char chunk[512];
  for (ssize_t n; (n = read(pipe_fds[0], chunk, sizeof(chunk))) > 0;) line.append(chunk, static_cast<size_t>(n));
  close(pipe_fds[0]);
  int status = 0;
  waitpid(child, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
  return line;
}

TEST(UringReceiver, ASeccompPolicyThatRefusesIoUringLeavesRecvmmsgOrAClearError) {
  const std::string automatic = run_under_policy(ReceiveBackend::kAuto);
  if (kAutoPrefersIoUring) {
    EXPECT_EQ(automatic, "recvmmsg fallback=io_uring_setup: EPERM");
  } else {
    EXPECT_EQ(automatic, "recvmmsg fallback=");  // 'auto' never asks for io_uring here
  }
  EXPECT_EQ(run_under_policy(ReceiveBackend::kRecvmmsg), "recvmmsg fallback=");
  const std::string explicit_uring = run_under_policy(ReceiveBackend::kIoUring);
  EXPECT_EQ(explicit_uring.rfind("error EPERM io_uring_setup (receiveBackend 'io_uring':", 0), 0u)
      << explicit_uring;
  EXPECT_NE(explicit_uring.find("seccomp"), std::string::npos) << explicit_uring;
}

}  // namespace
}  // namespace heartwatch
