// Receiver capacity: how fast heartwatch drains a full socket backlog and applies every heartbeat
// to its detector, on one pinned core, against a bare recvmmsg loop that only counts packets.
// Heartwatch runs with each receive backend (recvmmsg, and io_uring where the kernel allows it);
// every contender runs on the same prefilled backlog size, in turn, in one process.
//
//   ingest_bench [--packets N] [--hosts N] [--runs N] [--cpu N] [--batch N]
//
// Prints a table and one JSON line per contender:
//   {"bench":"ingest","scenario":"capacity","contender":"heartwatch","packetsPerSecond":...,"ratioToBare":...}
// (contenders: bare-recvmmsg, heartwatch (the recvmmsg backend), heartwatch-io_uring).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/common/monotonic_clock.h"
#include "core/engine/engine_stats.h"
#include "core/engine/shard_worker.h"
#include "core/engine/udp_receiver.h"
#include "core/net/udp_socket.h"

namespace {

using namespace heartwatch;

struct Options {
  uint64_t packets = 300'000;
  uint64_t hosts = 100'000;
  int runs = 5;
  int cpu = 1;
  uint32_t batch = 64;
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const long long value = std::atoll(argv[i + 1]);
    if (flag == "--packets") o.packets = static_cast<uint64_t>(value);
    else if (flag == "--hosts") o.hosts = static_cast<uint64_t>(value);
    else if (flag == "--runs") o.runs = static_cast<int>(value);
    else if (flag == "--cpu") o.cpu = static_cast<int>(value);
    else if (flag == "--batch") o.batch = static_cast<uint32_t>(value);
    else {
      std::fprintf(stderr, "unknown flag %s (known: --packets --hosts --runs --cpu --batch)\n", flag.c_str());
      std::exit(2);
    }
  }
  return o;
}

void pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set) != 0) {
    std::fprintf(stderr, "cannot pin to cpu %d\n", cpu);
    std::exit(1);
  }
}

// A v1 heartbeat, encoded here from the spec (big-endian), independent of the server's parser.
void encode(uint8_t* out, uint64_t host_id, uint32_t seq) {
  std::memset(out, 0, 28);
  out[0] = 0x48;
  out[1] = 0x57;
  out[2] = 1;
  for (int i = 0; i < 8; ++i) out[4 + i] = static_cast<uint8_t>(host_id >> (56 - 8 * i));
  const uint32_t fields[3] = {0x1234u, seq, 0};
  for (int f = 0; f < 3; ++f) {
    for (int i = 0; i < 4; ++i) out[12 + 4 * f + i] = static_cast<uint8_t>(fields[f] >> (24 - 8 * i));
  }
}

// Fills the socket's backlog with `packets` heartbeats from `hosts` hosts in a shuffled order.
void prefill(uint16_t port, const Options& o, uint64_t packets) {
  const int fd = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
  constexpr size_t kBatch = 64;
  uint8_t buffers[kBatch][28];
  iovec iov[kBatch];
  mmsghdr messages[kBatch];
  uint64_t state = 0x9E3779B97F4A7C15ull;
  for (uint64_t sent = 0; sent < packets;) {
    const size_t n = std::min<uint64_t>(kBatch, packets - sent);
    for (size_t i = 0; i < n; ++i) {
      state ^= state << 13;
      state ^= state >> 7;
      state ^= state << 17;
      encode(buffers[i], 1 + state % o.hosts, static_cast<uint32_t>(sent + i));
      iov[i] = {buffers[i], 28};
      messages[i] = {};
      messages[i].msg_hdr.msg_name = &to;
      messages[i].msg_hdr.msg_namelen = sizeof(to);
      messages[i].msg_hdr.msg_iov = &iov[i];
      messages[i].msg_hdr.msg_iovlen = 1;
    }
    const int done = sendmmsg(fd, messages, static_cast<unsigned>(n), 0);
    if (done < 0) {
      std::perror("sendmmsg");
      std::exit(1);
    }
    sent += static_cast<uint64_t>(done);
  }
  close(fd);
}

UdpSocket backlog_socket() {
  // A backlog big enough for every packet (needs CAP_NET_ADMIN for SO_RCVBUFFORCE past rmem_max);
  // a short receive timeout tells the drain loops the backlog is empty.
  return UdpSocket(UdpSocketOptions{"127.0.0.1", 0, 1u << 30, 5});
}

struct RunResult {
  uint64_t packets;
  double seconds;
  double cpu_seconds;  // this thread's CPU time (user + system) over the same span
};

// On a shared machine the wall clock counts time the core spent on others; the thread's own CPU
// time does not, so packets per CPU second is the steadier capacity figure there.
uint64_t thread_cpu_ns() {
  timespec now{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return static_cast<uint64_t>(now.tv_sec) * 1'000'000'000ULL + static_cast<uint64_t>(now.tv_nsec);
}

RunResult run_bare(const Options& o) {
  UdpSocket socket = backlog_socket();
  prefill(socket.bound_port(), o, o.packets);
  std::vector<uint8_t> buffers(static_cast<size_t>(o.batch) * kReceiveSlotBytes);
  std::vector<iovec> iov(o.batch);
  std::vector<mmsghdr> messages(o.batch);
  std::vector<sockaddr_storage> sources(o.batch);
  uint64_t received = 0;
  const uint64_t start = monotonic_ns();
  const uint64_t cpu_start = thread_cpu_ns();
  uint64_t last = start;
  uint64_t cpu_last = cpu_start;
  while (true) {
    for (uint32_t i = 0; i < o.batch; ++i) {
      iov[i] = {buffers.data() + i * kReceiveSlotBytes, kReceiveSlotBytes};
      messages[i] = {};
      messages[i].msg_hdr.msg_name = &sources[i];
      messages[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage);
      messages[i].msg_hdr.msg_iov = &iov[i];
      messages[i].msg_hdr.msg_iovlen = 1;
    }
    const int n = recvmmsg(socket.fd(), messages.data(), o.batch, MSG_WAITFORONE, nullptr);
    if (n <= 0) break;
    received += static_cast<uint64_t>(n);
    last = monotonic_ns();
    cpu_last = thread_cpu_ns();
  }
  return {received, static_cast<double>(last - start) / 1e9, static_cast<double>(cpu_last - cpu_start) / 1e9};
}

RunResult run_heartwatch(const Options& o, ReceiveBackend backend) {
  EngineConfig config;
  config.host = "127.0.0.1";
  config.batch_size = o.batch;
  config.receive_backend = backend;
  config.detector.timeout_ms = 60'000;
  config.detector.missed_beats = 0;
  config.detector.index = ExpiryIndexKind::kFifo;
  config.detector.max_hosts = static_cast<uint32_t>(o.hosts * 2);
  config.detector.initial_capacity = static_cast<uint32_t>(o.hosts);
  EngineStats stats(1, 1);
  ShardWorker worker(0, config, stats.worker(0), -1, 0.0, [] {});
  UdpSocket socket = backlog_socket();
  const uint16_t port = socket.bound_port();
  UdpReceiver receiver(0, config, std::move(socket), {&worker.input(0)}, {&worker.wake()},
                       stats.receiver(0), -1);
  std::vector<EventRecord> events(4096);
  // Drains the backlog through receiver and worker, as their threads would, on this one core.
  // Like the bare loop, the clock stops after the last batch is fully processed, not after the
  // receive timeout that tells the loop the backlog is empty.
  uint64_t last = 0;
  uint64_t cpu_last = 0;
  auto drain = [&]() {
    uint64_t received = 0;
    while (true) {
      const uint32_t n = receiver.receive_batch();
      if (n == 0) break;
      received += n;
      while (worker.step()) {
      }
      // Stand in for the JS thread: take the events (each host's first heartbeat is an 'up').
      while (worker.drain_events(events.data(), events.size()) == events.size()) {
      }
      last = monotonic_ns();
      cpu_last = thread_cpu_ns();
    }
    return received;
  };
  // Untimed warm-up: every host once, so the timed run measures the steady state of a fleet
  // that is already known (table sized, records allocated), as under sustained load.
  prefill(port, o, o.hosts);
  const uint64_t warm = drain();
  prefill(port, o, o.packets);
  const uint64_t start = monotonic_ns();
  const uint64_t cpu_start = thread_cpu_ns();
  const uint64_t received = drain();
  const uint64_t processed =
      EngineStats::get(stats.worker(0), static_cast<uint32_t>(WorkerCounter::kProcessed)) - warm;
  if (processed != received) {
    std::fprintf(stderr, "heartwatch processed %llu of %llu received\n",
                 static_cast<unsigned long long>(processed), static_cast<unsigned long long>(received));
  }
  return {processed, static_cast<double>(last - start) / 1e9, static_cast<double>(cpu_last - cpu_start) / 1e9};
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

// Whether this kernel (and policy) lets a receiver use io_uring.
bool io_uring_available() {
  EngineConfig config;
  config.host = "127.0.0.1";
  EngineStats stats(1, 1);
  SpscRing<ShardMessage> ring(1024);
  WakeSignal wake;
  UdpReceiver probe(0, config, UdpSocket(UdpSocketOptions{"127.0.0.1", 0, 0, 5}), {&ring}, {&wake},
                    stats.receiver(0), -1);
  return probe.backend() == ReceiveBackend::kIoUring;
}

// Medians of one contender's runs: packets per wall second and per CPU second.
struct Rates {
  std::vector<double> wall;
  std::vector<double> cpu;
  void add(const RunResult& r) {
    wall.push_back(static_cast<double>(r.packets) / r.seconds);
    cpu.push_back(static_cast<double>(r.packets) / r.cpu_seconds);
  }
};

void print_row(const char* name, const Rates& rates, const Rates& bare) {
  const double wall = median(rates.wall);
  const double cpu = median(rates.cpu);
  std::printf("| %s | %.3g | %.2f | %.3g | %.2f |\n", name, wall, wall / median(bare.wall), cpu,
              cpu / median(bare.cpu));
}

void print_json(const char* contender, const Options& o, const Rates& rates, const Rates& bare) {
  const double wall = median(rates.wall);
  const double cpu = median(rates.cpu);
  std::printf(
      "{\"bench\":\"ingest\",\"scenario\":\"capacity\",\"contender\":\"%s\",\"packets\":%llu,"
      "\"hosts\":%llu,\"packetsPerSecond\":%.4g,\"ratioToBare\":%.3f,\"packetsPerCpuSecond\":%.4g,"
      "\"cpuRatioToBare\":%.3f}\n",
      contender, static_cast<unsigned long long>(o.packets), static_cast<unsigned long long>(o.hosts), wall,
      wall / median(bare.wall), cpu, cpu / median(bare.cpu));
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  pin(o.cpu);
  const bool uring = io_uring_available();
  if (!uring) std::fprintf(stderr, "io_uring refused here: heartwatch-io_uring is left out\n");
  Rates bare;
  Rates heartwatch;
  Rates heartwatch_uring;
  uint64_t short_runs = 0;
  for (int run = 0; run < o.runs; ++run) {
    const RunResult b = run_bare(o);
    const RunResult h = run_heartwatch(o, ReceiveBackend::kRecvmmsg);
    short_runs += (b.packets != o.packets) + (h.packets != o.packets);
    bare.add(b);
    heartwatch.add(h);
    std::fprintf(stderr, "run %d: bare %.3g pkt/s (%.3g per CPU s), heartwatch %.3g (%.3g)", run, bare.wall.back(),
                 bare.cpu.back(), heartwatch.wall.back(), heartwatch.cpu.back());
    if (uring) {
      const RunResult u = run_heartwatch(o, ReceiveBackend::kIoUring);
      short_runs += u.packets != o.packets;
      heartwatch_uring.add(u);
      std::fprintf(stderr, ", heartwatch-io_uring %.3g (%.3g)", heartwatch_uring.wall.back(),
                   heartwatch_uring.cpu.back());
    }
    std::fprintf(stderr, "\n");
  }
  std::printf(
      "| contender | packets/s (median of %d) | ratio to bare | packets per CPU second | ratio to bare |\n"
      "|---|---|---|---|---|\n",
      o.runs);
  print_row("bare recvmmsg", bare, bare);
  print_row("heartwatch (recvmmsg)", heartwatch, bare);
  if (uring) print_row("heartwatch (io_uring)", heartwatch_uring, bare);
  if (short_runs > 0) {
    std::printf("note: %llu runs drained fewer packets than were sent (kernel drops: raise SO_RCVBUF)\n",
                static_cast<unsigned long long>(short_runs));
  }
  print_json("bare-recvmmsg", o, bare, bare);
  print_json("heartwatch", o, heartwatch, bare);
  if (uring) print_json("heartwatch-io_uring", o, heartwatch_uring, bare);
  return 0;
}
