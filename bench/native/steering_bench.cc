// Steering: 2 receivers x 2 workers, the engine's real UdpReceiver and ShardWorker threads, in
// two layouts on the same traffic, measured in CPU time of the whole process:
//
//   rings  today's engine: the reuseport group is steered by source address and port
//          (UdpSocket::steer_group_to_first); each receiver parses, keys and hands every
//          heartbeat to its owner worker over a receiver->worker ring, so each receiver feeds
//          both workers (4 rings, cross-thread wake-ups to both).
//   steer  a cBPF program (SO_ATTACH_REUSEPORT_CBPF) reads the host id from the datagram and
//          picks the socket, so receiver k gets only the hosts of worker k and feeds it alone
//          (one ring per receiver, no fan-out).
//
// Both sockets' backlogs are filled first (untimed): every host once, then `--packets`
// heartbeats from `--hosts` hosts in a shuffled order, from 32 source ports so that the rings
// layout spreads over both sockets too. Then the threads start, and the clock (CPU time of the
// process: receivers, workers and the main thread that takes events) runs until every datagram
// has been applied (or dropped and counted), so both layouts drain the same backlog at full
// batches, as in ingest_bench's capacity scenario.
//
//   steering_bench [--packets N] [--hosts N] [--runs N]
//
// Prints a table and one JSON line per layout:
//   {"bench":"steering","layout":"steer","packets":...,"packetsPerCpuSecond":...,"ratioToRings":...}
#include <arpa/inet.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "core/common/monotonic_clock.h"
#include "core/engine/engine_stats.h"
#include "core/engine/shard_worker.h"
#include "core/engine/udp_receiver.h"
#include "core/net/udp_socket.h"

namespace {

using namespace heartwatch;

constexpr uint32_t kSides = 2;  // receivers, and workers
constexpr int kSourcePorts = 32;

struct Options {
  uint64_t packets = 1'000'000;
  uint64_t hosts = 100'000;
  int runs = 3;
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const long long value = std::atoll(argv[i + 1]);
    if (flag == "--packets" && value > 0) {
      o.packets = static_cast<uint64_t>(value);
    } else if (flag == "--hosts" && value > 0) {
      o.hosts = static_cast<uint64_t>(value);
    } else if (flag == "--runs" && value > 0) {
      o.runs = static_cast<int>(value);
    } else {
      std::fprintf(stderr, "bad flag %s %s (known: --packets N --hosts N --runs N, N > 0)\n", flag.c_str(),
                   argv[i + 1]);
      std::exit(2);
    }
  }
  return o;
}

// A v1 heartbeat from the spec (big-endian host id at bytes 4..11), as ingest_bench encodes it.
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

// Picks the group member by host id: the reuseport program sees the UDP payload at offset 0.
// A datagram too short to hold an id fails the load, and the kernel then picks by its own hash.
void steer_by_host_id(int fd) {
  sock_filter code[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 4),          // A = host id, high word
      BPF_STMT(BPF_MISC | BPF_TAX, 0),                // X = A
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 8),          // A = host id, low word
      BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),         // A ^= X
      BPF_STMT(BPF_ALU | BPF_MUL | BPF_K, 0x9e3779b1),  // spread (Fibonacci hashing)
      BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, 16),
      BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, kSides),
      BPF_STMT(BPF_RET | BPF_A, 0),
  };
  sock_fprog program{static_cast<unsigned short>(sizeof(code) / sizeof(code[0])), code};
  if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &program, sizeof(program)) != 0) {
    std::perror("setsockopt(SO_ATTACH_REUSEPORT_CBPF)");
    std::exit(1);
  }
}

// Runs in the child: `count` heartbeats from hosts 1..hosts, round-robin over the source ports.
void send_heartbeats(uint16_t port, uint64_t hosts, uint64_t count, bool each_once) {
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
  int fds[kSourcePorts];
  for (int& fd : fds) fd = socket(AF_INET, SOCK_DGRAM, 0);
  constexpr size_t kBatch = 64;
  uint8_t buffers[kBatch][28];
  iovec iov[kBatch];
  mmsghdr messages[kBatch];
  uint64_t state = 0x9E3779B97F4A7C15ull;
  for (uint64_t sent = 0, round = 0; sent < count; ++round) {
    const size_t n = std::min<uint64_t>(kBatch, count - sent);
    for (size_t i = 0; i < n; ++i) {
      state ^= state << 13;
      state ^= state >> 7;
      state ^= state << 17;
      encode(buffers[i], each_once ? 1 + sent + i : 1 + state % hosts, static_cast<uint32_t>(sent + i));
      iov[i] = {buffers[i], 28};
      messages[i] = {};
      messages[i].msg_hdr.msg_name = &to;
      messages[i].msg_hdr.msg_namelen = sizeof(to);
      messages[i].msg_hdr.msg_iov = &iov[i];
      messages[i].msg_hdr.msg_iovlen = 1;
    }
    const int done = sendmmsg(fds[round % kSourcePorts], messages, static_cast<unsigned>(n), 0);
    if (done < 0) {
      std::perror("sendmmsg");
      std::exit(1);
    }
    sent += static_cast<uint64_t>(done);
  }
  for (int fd : fds) close(fd);
}

double cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) * 1e-6;
}

struct Engine2x2 {
  EngineConfig config;
  EngineStats stats{kSides, kSides};
  std::vector<std::unique_ptr<ShardWorker>> workers;
  std::vector<std::unique_ptr<UdpReceiver>> receivers;
  uint16_t port = 0;

  Engine2x2(bool steer, const Options& o) {
    config.host = "127.0.0.1";
    config.receivers = kSides;
    config.workers = kSides;
    config.ring_capacity = 1u << 18;
    config.detector.timeout_ms = 600'000;
    config.detector.missed_beats = 0;
    config.detector.max_hosts = static_cast<uint32_t>(o.hosts);
    config.detector.initial_capacity = static_cast<uint32_t>(o.hosts / kSides);
    for (uint32_t w = 0; w < kSides; ++w) {
      workers.push_back(std::make_unique<ShardWorker>(w, config, stats.worker(w), -1, 0.0, [] {}));
    }
    UdpSocketOptions options{config.host, 0, 1u << 30, 100};
    for (uint32_t r = 0; r < kSides; ++r) {
      UdpSocket socket(options);
      if (r == 0) socket.share_port();
      if (r == kSides - 1) {
        if (steer) {
          steer_by_host_id(socket.fd());
        } else {
          socket.steer_group_to_first(kSides);
        }
      }
      options.port = port = socket.bound_port();
      options.reuse_port = true;
      std::vector<SpscRing<ShardMessage>*> rings;
      std::vector<WakeSignal*> wake;
      for (uint32_t w = 0; w < kSides; ++w) {
        if (steer && w != r) continue;
        rings.push_back(&workers[w]->input(r));
        wake.push_back(&workers[w]->wake());
      }
      receivers.push_back(std::make_unique<UdpReceiver>(r, config, std::move(socket), rings, wake,
                                                        stats.receiver(r), -1));
    }
    for (auto& w : workers) w->watch({&receivers[0]->watermark(), &receivers[1]->watermark()});
  }
  void start() {
    for (auto& w : workers) w->start();
    for (auto& r : receivers) r->start();
  }
  ~Engine2x2() {
    for (auto& r : receivers) r->request_stop();
    for (auto& r : receivers) r->join();
    for (auto& w : workers) w->request_stop();
    for (auto& w : workers) w->join();
  }
  uint64_t sum(bool receiver, uint32_t field) {
    uint64_t total = 0;
    for (uint32_t k = 0; k < kSides; ++k) {
      total += EngineStats::get(receiver ? stats.receiver(k) : stats.worker(k), field);
    }
    return total;
  }
  // Datagrams accounted for: applied, or dropped and counted on the way.
  uint64_t settled() {
    return sum(false, static_cast<uint32_t>(WorkerCounter::kProcessed)) +
           sum(true, static_cast<uint32_t>(ReceiverCounter::kMalformed)) +
           sum(true, static_cast<uint32_t>(ReceiverCounter::kRingDrops)) +
           sum(true, static_cast<uint32_t>(ReceiverCounter::kKernelDrops));
  }
  // Waits, taking the workers' events as the JS thread would, until `target` datagrams are
  // settled or nothing moved for 2 s. Returns the settled count.
  uint64_t wait_for(uint64_t target) {
    std::vector<EventRecord> events(4096);
    uint64_t seen = 0;
    uint64_t moved_at = monotonic_ns();
    for (;;) {
      for (auto& w : workers) {
        while (w->drain_events(events.data(), events.size()) == events.size()) {
        }
      }
      const uint64_t now = settled();
      if (now >= target) return now;
      if (now != seen) {
        seen = now;
        moved_at = monotonic_ns();
      } else if (monotonic_ns() - moved_at > 2'000'000'000ull) {
        return now;
      }
      const timespec nap{0, 2'000'000};
      nanosleep(&nap, nullptr);
    }
  }
};

struct RunResult {
  double cpu_seconds;
  double wall_seconds;
  uint64_t packets;
  uint64_t drops;
};

// Fills both sockets' backlogs first (untimed), then starts the threads and times the drain.
RunResult run(bool steer, const Options& o) {
  Engine2x2 engine(steer, o);
  send_heartbeats(engine.port, o.hosts, o.hosts, true);
  send_heartbeats(engine.port, o.hosts, o.packets, false);
  const uint64_t total = o.hosts + o.packets;
  const double cpu0 = cpu_seconds();
  const uint64_t wall0 = monotonic_ns();
  engine.start();
  const uint64_t settled = engine.wait_for(total);
  const double cpu = cpu_seconds() - cpu0;
  const double wall = static_cast<double>(monotonic_ns() - wall0) / 1e9;
  const uint64_t drops = engine.sum(true, static_cast<uint32_t>(ReceiverCounter::kRingDrops)) +
                         engine.sum(true, static_cast<uint32_t>(ReceiverCounter::kKernelDrops));
  const uint64_t applied = engine.sum(false, static_cast<uint32_t>(WorkerCounter::kProcessed));
  if (settled != total) {
    std::fprintf(stderr, "%s: %llu of %llu datagrams settled\n", steer ? "steer" : "rings",
                 static_cast<unsigned long long>(settled), static_cast<unsigned long long>(total));
  }
  const uint64_t r0 = EngineStats::get(engine.stats.receiver(0), static_cast<uint32_t>(ReceiverCounter::kReceived));
  std::fprintf(stderr, "%s: receiver 0 took %.1f%% of the datagrams\n", steer ? "steer" : "rings",
               100.0 * static_cast<double>(r0) / static_cast<double>(std::max<uint64_t>(settled, 1)));
  return {cpu, wall, applied, drops};
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  std::vector<double> per_cpu[2];
  std::vector<double> per_wall[2];
  uint64_t drops[2] = {};
  for (int r = 0; r < o.runs; ++r) {
    for (int steer = 0; steer < 2; ++steer) {  // alternately, so drift hits both alike
      const RunResult res = run(steer == 1, o);
      per_cpu[steer].push_back(static_cast<double>(res.packets) / res.cpu_seconds);
      per_wall[steer].push_back(static_cast<double>(res.packets) / res.wall_seconds);
      drops[steer] += res.drops;
      std::fprintf(stderr, "run %d %s: %llu applied, %.3f CPU s, %.3f s, %llu dropped\n", r,
                   steer ? "steer" : "rings", static_cast<unsigned long long>(res.packets), res.cpu_seconds,
                   res.wall_seconds, static_cast<unsigned long long>(res.drops));
    }
  }
  const double rings = median(per_cpu[0]);
  std::printf("| layout (2 receivers x 2 workers) | packets per CPU second | packets/s | ratio to rings | dropped |\n");
  std::printf("|---|---|---|---|---|\n");
  const char* names[2] = {"rings", "steer"};
  for (int k = 0; k < 2; ++k) {
    std::printf("| %s | %.3g | %.3g | %.2f | %llu |\n", names[k], median(per_cpu[k]), median(per_wall[k]),
                median(per_cpu[k]) / rings, static_cast<unsigned long long>(drops[k]));
  }
  for (int k = 0; k < 2; ++k) {
    std::printf("{\"bench\":\"steering\",\"layout\":\"%s\",\"packets\":%llu,\"hosts\":%llu,"
                "\"packetsPerCpuSecond\":%.4g,\"packetsPerSecond\":%.4g,\"ratioToRings\":%.3f}\n",
                names[k], static_cast<unsigned long long>(o.packets), static_cast<unsigned long long>(o.hosts),
                median(per_cpu[k]), median(per_wall[k]), median(per_cpu[k]) / rings);
  }
  return 0;
}
