// Receiver capacity: how fast heartwatch drains a full socket backlog and applies every heartbeat
// to its detector, on one pinned core, against a bare recvmmsg loop that only counts packets,
// and against a bare io_uring loop (heartwatch's UringReader, counting only) where the kernel
// allows io_uring: what io_uring itself can do against recvmmsg on this kernel.
// heartwatch runs with each receive backend (recvmmsg, and io_uring where the kernel allows it),
// and with recvmmsg and authentication required (every datagram signed, its tag checked and its
// seq replay-checked). The contenders run on the same prefilled backlog size, alternately, in one
// process. Each prints packets per wall second and per CPU second (the draining thread's own
// CLOCK_THREAD_CPUTIME_ID, user + system): on a shared machine the wall clock also counts the
// time the core spent on other processes. The wall clock stops after the last batch that held
// datagrams, not after the wait that tells a loop the backlog is empty; the CPU clock is read
// once, after that wait (which sleeps, so costs a few microseconds of CPU a drain), because that
// clock is a system call: read per batch it would charge each batch ~0.3 us that only the
// benchmark spends, more to a backend whose batches are smaller.
// The CPU time per packet is also split into user space and the kernel (getrusage), to show which
// side a contender's extra time is on.
// The rows above drive the receiver and the worker in line, on the one thread. The threads rows
// run them as the engine does, each on its own thread with its own sleeps and wake-ups: both
// pinned to one core (heartwatch-threads-1core: its CPU rate counts both threads), or the
// receiver on the measured core and the worker on another (heartwatch-threads-2core: its CPU rate
// counts the receiver alone, the capacity of a receiver core as the engine pins one). Their wall
// rate runs from the threads' start to the worker's last heartbeat, read every 200 us; their CPU
// time is each thread's own clock (so receiverCpuNsPerPacket and workerCpuNsPerPacket); they have
// no user/kernel split (null), which the kernel keeps per scheduler tick, too coarse for threads
// that each run a fraction of a drain.
//
//   ingest_bench [--packets N] [--hosts N] [--runs N] [--cpu N] [--batch N] [--uring-buffers N]
//                [--receives N] [--touch-pages N] [--threads 0|1] [--only NAME]
//
// --only runs the bare recvmmsg loop and that one other contender (for a profile of one backend).
// --uring-buffers: the bare io_uring loop's provided buffers (a power of two, default as the
// receiver's).
// --receives: how many receive_batch() calls heartwatch's receiver makes before each worker pass
// (default 1: receiver and worker alternate batch by batch, the finest interleaving two threads
// sharing one core can have; the engine's worker, napping a millisecond between passes while
// heartbeats flow, lets a receiver that shares its core make many).
// --touch-pages: after each receive call that got datagrams, the bare loops write one byte in
// each of N random 4 KiB pages of a 64 MiB region, as a stand-in for the detector's scattered
// page footprint (bench/README.md, "session 6, receive path": what that does to the kernel's
// share); 0, the default, touches nothing.
// --threads 0 leaves out the threads rows (the bench suite's short drains do); they need two
// allowed CPUs.
//
// Prints a table and one JSON line per contender:
//   {"bench":"ingest","scenario":"capacity","contender":"heartwatch","packetsPerSecond":...,"ratioToBare":...,
//    "packetsPerCpuSecond":...,"cpuRatioToBare":...,"userNsPerPacket":...,"systemNsPerPacket":...}
// (contenders bare-recvmmsg, bare-io_uring, heartwatch, heartwatch-io_uring, heartwatch-auth,
// heartwatch-threads-1core, heartwatch-threads-1core-io_uring, heartwatch-threads-2core,
// heartwatch-threads-2core-io_uring; the threads rows add "receiverCpuNsPerPacket" and
// "workerCpuNsPerPacket", with "userNsPerPacket" and "systemNsPerPacket" null).
#define OPENSSL_API_COMPAT 0x10101000L

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/common/current_thread.h"
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
  uint32_t uring_buffers = kUringBufferCount;  // provided buffers of the bare io_uring loop
  uint32_t receives = 1;     // receiver batches per worker pass
  uint32_t touch_pages = 0;  // random pages the bare loops touch after each receive
  std::string only;  // one heartwatch contender, or every one
  bool threads = true;  // the rows of the engine's own threads
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const long long value = std::atoll(argv[i + 1]);
    if (flag == "--only") {
      o.only = argv[i + 1];
      continue;
    }
    if (flag == "--packets") o.packets = static_cast<uint64_t>(value);
    else if (flag == "--hosts") o.hosts = static_cast<uint64_t>(value);
    else if (flag == "--runs") o.runs = static_cast<int>(value);
    else if (flag == "--cpu") o.cpu = static_cast<int>(value);
    else if (flag == "--batch") o.batch = static_cast<uint32_t>(value);
    else if (flag == "--uring-buffers") o.uring_buffers = static_cast<uint32_t>(value);
    else if (flag == "--receives") o.receives = static_cast<uint32_t>(value);
    else if (flag == "--touch-pages") o.touch_pages = static_cast<uint32_t>(value);
    else if (flag == "--threads") o.threads = value != 0;
    else {
      std::fprintf(stderr,
                   "unknown flag %s (known: --packets --hosts --runs --cpu --batch --uring-buffers --receives "
                   "--touch-pages --threads --only)\n",
                   flag.c_str());
      std::exit(2);
    }
  }
  // The worker pass must find every datagram of the receives before it in its ring.
  if (o.receives == 0 || uint64_t{o.receives} * std::max(o.batch, kUringBufferCount) > EngineConfig{}.ring_capacity) {
    std::fprintf(stderr, "--receives must be 1 to %u\n",
                 EngineConfig{}.ring_capacity / std::max(o.batch, kUringBufferCount));
    std::exit(2);
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

// The key of the authenticated runs (32 bytes, as recommended).
const std::vector<uint8_t> kBenchKey(32, 0x42);
constexpr size_t kSignedBytes = 28 + 16;

// A v1 heartbeat, encoded here from the spec (big-endian), independent of the server's parser;
// with `sign`, AUTH is set and the tag appended (OpenSSL's one-shot HMAC, not the server's code).
void encode(uint8_t* out, uint64_t host_id, uint32_t seq, bool sign) {
  std::memset(out, 0, 28);
  out[0] = 0x48;
  out[1] = 0x57;
  out[2] = 1;
  out[3] = sign ? 0x02 : 0;
  for (int i = 0; i < 8; ++i) out[4 + i] = static_cast<uint8_t>(host_id >> (56 - 8 * i));
  const uint32_t fields[3] = {0x1234u, seq, 0};
  for (int f = 0; f < 3; ++f) {
    for (int i = 0; i < 4; ++i) out[12 + 4 * f + i] = static_cast<uint8_t>(fields[f] >> (24 - 8 * i));
  }
  if (!sign) return;
  uint8_t mac[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), kBenchKey.data(), static_cast<int>(kBenchKey.size()), out, 28, mac, &length);
  std::memcpy(out + 28, mac, 16);
}

// Fills the socket's backlog with `packets` heartbeats from `hosts` hosts in a shuffled order,
// seqs from `first_seq` up (so a later prefill never repeats a seq the replay check has seen).
void prefill(uint16_t port, const Options& o, uint64_t packets, bool sign = false, uint32_t first_seq = 0) {
  const int fd = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
  constexpr size_t kBatch = 64;
  uint8_t buffers[kBatch][kSignedBytes];
  iovec iov[kBatch];
  mmsghdr messages[kBatch];
  uint64_t state = 0x9E3779B97F4A7C15ull;
  for (uint64_t sent = 0; sent < packets;) {
    const size_t n = std::min<uint64_t>(kBatch, packets - sent);
    for (size_t i = 0; i < n; ++i) {
      state ^= state << 13;
      state ^= state >> 7;
      state ^= state << 17;
      encode(buffers[i], 1 + state % o.hosts, static_cast<uint32_t>(first_seq + sent + i), sign);
      iov[i] = {buffers[i], sign ? kSignedBytes : 28};
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

// The stand-in for the detector's page footprint (--touch-pages): after each receive, one byte
// written in each of `pages` random 4 KiB pages of a 64 MiB region, at a random line of the page.
// The region is written through once first, so no touch takes a page fault.
class PageToucher {
 public:
  explicit PageToucher(uint32_t pages) : pages_(pages), region_(pages > 0 ? kRegionBytes : 0, 1) {}
  void touch() noexcept {
    for (uint32_t i = 0; i < pages_; ++i) {
      state_ ^= state_ << 13;
      state_ ^= state_ >> 7;
      state_ ^= state_ << 17;
      ++region_[(state_ % kPages) * kPageBytes + ((state_ >> 52) & (kPageBytes - 64))];
    }
  }

 private:
  static constexpr size_t kPageBytes = 4096;
  static constexpr size_t kRegionBytes = size_t{64} << 20;
  static constexpr size_t kPages = kRegionBytes / kPageBytes;
  uint32_t pages_;
  std::vector<uint8_t> region_;
  uint64_t state_ = 0x2545F4914F6CDD1Dull;
};

UdpSocket backlog_socket() {
  // A backlog big enough for every packet (needs CAP_NET_ADMIN for SO_RCVBUFFORCE past rmem_max);
  // a short receive timeout tells the drain loops the backlog is empty.
  return UdpSocket(UdpSocketOptions{"127.0.0.1", 0, 1u << 30, 5});
}

struct RunResult {
  uint64_t packets;
  double seconds;
  double cpu_seconds;   // this thread's CPU time (user + system) over the same span
  double user_seconds;  // the user-space part of it
};

// This thread's CPU time so far, and its user-space part. The total is exact; getrusage's split is
// the total divided in the ratio of the scheduler ticks that found the thread in user space or in
// the kernel (unless the kernel accounts precisely, CONFIG_VIRT_CPU_ACCOUNTING_GEN): a tick is
// 4 ms at HZ=250, a few percent of a drain of 300,000 packets.
struct ThreadCpu {
  uint64_t total_ns;
  uint64_t user_ns;
};

ThreadCpu thread_cpu() {
  timespec now{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  rusage usage{};
  getrusage(RUSAGE_THREAD, &usage);
  return {static_cast<uint64_t>(now.tv_sec) * 1'000'000'000ULL + static_cast<uint64_t>(now.tv_nsec),
          static_cast<uint64_t>(usage.ru_utime.tv_sec) * 1'000'000'000ULL +
              static_cast<uint64_t>(usage.ru_utime.tv_usec) * 1000ULL};
}

RunResult result(uint64_t packets, uint64_t start, uint64_t last, const ThreadCpu& from, const ThreadCpu& to) {
  return {packets, static_cast<double>(last - start) / 1e9, static_cast<double>(to.total_ns - from.total_ns) / 1e9,
          static_cast<double>(to.user_ns - from.user_ns) / 1e9};
}

RunResult run_bare(const Options& o) {
  UdpSocket socket = backlog_socket();
  prefill(socket.bound_port(), o, o.packets);
  std::vector<uint8_t> buffers(static_cast<size_t>(o.batch) * kReceiveSlotBytes);
  std::vector<iovec> iov(o.batch);
  std::vector<mmsghdr> messages(o.batch);
  std::vector<sockaddr_storage> sources(o.batch);
  PageToucher pages(o.touch_pages);
  uint64_t received = 0;
  const uint64_t start = monotonic_ns();
  const ThreadCpu cpu_start = thread_cpu();
  uint64_t last = start;
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
    pages.touch();
    last = monotonic_ns();
  }
  return result(received, start, last, cpu_start, thread_cpu());
}

// The io_uring anchor: heartwatch's own UringReader (one multishot recvmsg, a provided-buffer
// ring, completions read in place, buffers handed back once per batch) in a loop that only
// counts: what the kernel's io_uring receive and the reader cost, without the per-datagram path
// and the detector. The drain ends once the socket stays empty for a poll's 5 ms; as in the other
// loops, the clocks stop after the last batch that held datagrams.
RunResult run_bare_uring(const Options& o) {
  UdpSocket socket = backlog_socket();
  prefill(socket.bound_port(), o, o.packets);
  int error = 0;
  const char* call = "";
  const std::unique_ptr<UringReader> reader = UringReader::open(socket.fd(), o.uring_buffers, error, call);
  if (!reader || reader->attach() != 0) {
    std::fprintf(stderr, "bare io_uring: %s failed (errno %d)\n", call, error);
    std::exit(1);
  }
  std::vector<ReceivedDatagram> datagrams(o.batch);
  PageToucher pages(o.touch_pages);
  uint32_t kernel_drops = 0;
  uint64_t received = 0;
  const uint64_t start = monotonic_ns();
  const ThreadCpu cpu_start = thread_cpu();
  uint64_t last = start;
  for (bool idle = false;;) {
    // For half the buffers, as the receiver asks while its queue check sees a backlog (here
    // there is one until the end: only the reads of the emptied socket pay the wait, ~5 us).
    if (reader->collect(o.uring_buffers / 2) != 0) break;
    uint64_t batch = 0;
    for (uint32_t n; (n = reader->take(datagrams.data(), o.batch, kernel_drops)) > 0;) batch += n;
    reader->release();
    if (batch > 0) {
      received += batch;
      pages.touch();
      idle = false;
      last = monotonic_ns();
      continue;
    }
    if (idle) break;
    // One more collect() after the wait: a multishot that ended on ENOBUFS is armed there.
    pollfd readable{socket.fd(), POLLIN, 0};
    idle = poll(&readable, 1, 5) <= 0;
  }
  const ThreadCpu cpu_end = thread_cpu();
  reader->cancel();
  return result(received, start, last, cpu_start, cpu_end);
}

// The engine's configuration for every heartwatch contender: one timeout for all hosts, room
// for the whole fleet from the start.
EngineConfig bench_config(const Options& o, ReceiveBackend backend, bool auth) {
  EngineConfig config;
  config.receive_backend = backend;
  if (auth) {
    config.auth_keys = {kBenchKey};
    config.auth_required = true;
  }
  config.host = "127.0.0.1";
  config.batch_size = o.batch;
  config.detector.timeout_ms = 60'000;
  config.detector.missed_beats = 0;
  config.detector.index = ExpiryIndexKind::kFifo;
  config.detector.max_hosts = static_cast<uint32_t>(o.hosts * 2);
  config.detector.initial_capacity = static_cast<uint32_t>(o.hosts);
  return config;
}

RunResult run_heartwatch(const Options& o, bool auth, ReceiveBackend backend) {
  const EngineConfig config = bench_config(o, backend, auth);
  EngineStats stats(1, 1);
  ShardWorker worker(0, config, stats.worker(0), -1, 0.0, [] {});
  UdpSocket socket = backlog_socket();
  const uint16_t port = socket.bound_port();
  UdpReceiver receiver(0, config, std::move(socket), {&worker.input(0)}, {&worker.wake()},
                       stats.receiver(0), -1);
  worker.watch({&receiver.watermark()});
  std::vector<EventRecord> events(4096);
  // Drains the backlog through receiver and worker, as their threads would, on this one core:
  // o.receives receiver batches, then a worker pass. Like the bare loop, the wall clock stops
  // after the last batch is fully processed, not after the receive timeout that tells the loop
  // the backlog is empty.
  uint64_t last = 0;
  auto drain = [&]() {
    uint64_t received = 0;
    while (true) {
      uint32_t n = 0;
      for (uint32_t r = 0; r < o.receives; ++r) {
        const uint32_t got = receiver.receive_batch();
        if (got == 0) break;
        n += got;
      }
      if (n == 0) break;
      received += n;
      while (worker.step()) {
      }
      // Stand in for the JS thread: take the events (each host's first heartbeat is an 'up').
      while (worker.drain_events(events.data(), events.size()) == events.size()) {
      }
      last = monotonic_ns();
    }
    return received;
  };
  // Untimed warm-up: every host once, so the timed run measures the steady state of a fleet
  // that is already known (table sized, records allocated), as under sustained load.
  prefill(port, o, o.hosts, auth);
  const uint64_t warm = drain();
  prefill(port, o, o.packets, auth, static_cast<uint32_t>(o.hosts));
  const uint64_t start = monotonic_ns();
  const ThreadCpu cpu_start = thread_cpu();
  const uint64_t received = drain();
  const ThreadCpu cpu_end = thread_cpu();
  const uint64_t processed =
      EngineStats::get(stats.worker(0), static_cast<uint32_t>(WorkerCounter::kProcessed)) - warm;
  if (processed != received) {
    std::fprintf(stderr, "heartwatch processed %llu of %llu received\n",
                 static_cast<unsigned long long>(processed), static_cast<unsigned long long>(received));
  }
  const uint64_t rejected =
      EngineStats::get(stats.receiver(0), static_cast<uint32_t>(ReceiverCounter::kAuthFailed)) +
      EngineStats::get(stats.receiver(0), static_cast<uint32_t>(ReceiverCounter::kUnauthenticated)) +
      EngineStats::get(stats.worker(0), static_cast<uint32_t>(WorkerCounter::kReplayed));
  if (rejected != 0) {
    std::fprintf(stderr, "heartwatch-auth rejected %llu datagrams (a bench bug)\n",
                 static_cast<unsigned long long>(rejected));
  }
  return result(processed, start, last, cpu_start, cpu_end);
}

// The CPU time a thread of this process has used, by its tid: Linux names a thread's CPU clock
// by its tid (the clockid pthread_getcpuclockid() builds), and the engine's threads are private
// to their classes, so the bench finds their tids by name.
uint64_t thread_cpu_ns(pid_t tid) {
  const clockid_t clock = static_cast<clockid_t>((~static_cast<unsigned>(tid) << 3) | 6);
  timespec used{};
  if (clock_gettime(clock, &used) != 0) return 0;
  return static_cast<uint64_t>(used.tv_sec) * 1'000'000'000ULL + static_cast<uint64_t>(used.tv_nsec);
}

// The tid of this process's thread named `name` (as the engine names its threads), or 0.
pid_t thread_named(const std::string& name) {
  DIR* tasks = opendir("/proc/self/task");
  if (tasks == nullptr) return 0;
  pid_t found = 0;
  while (const dirent* entry = readdir(tasks)) {
    if (entry->d_name[0] == '.') continue;
    std::ifstream comm(std::string("/proc/self/task/") + entry->d_name + "/comm");
    std::string line;
    if (std::getline(comm, line) && line == name) found = static_cast<pid_t>(std::atoi(entry->d_name));
  }
  closedir(tasks);
  return found;
}

// A threads run's figures: the drain's wall time and each engine thread's CPU time.
struct ThreadsResult {
  uint64_t packets;
  double seconds;
  double receiver_cpu_seconds;
  double worker_cpu_seconds;
};

// heartwatch as the engine runs it: one UdpReceiver and one ShardWorker on their own threads,
// pinned to `receiver_cpu` and `worker_cpu` (the same core, or two), with the worker's own
// sleeps and wake-ups. The detector is warmed in line first (every host once, through a
// receiver on a socket of its own, so the timed receiver's io_uring ring is set up on its
// thread); the timed receiver then starts on a full backlog. Both are sent from the receiver's
// core, as for the other contenders: a datagram freed on another CPU than the one that built it
// goes back through that CPU's deferred-free list and an inter-processor interrupt, which costs
// several hundred ns on a VM. This thread then moves to `other_cpu` and naps 200 us between reads
// of the worker's processed count: the drain ends when it reaches the backlog's size, or when it
// stops moving for 100 ms (kernel drops).
ThreadsResult run_threads(const Options& o, ReceiveBackend backend, int other_cpu, bool two_cores) {
  const EngineConfig config = bench_config(o, backend, false);
  EngineStats stats(2, 1);
  ShardWorker worker(0, config, stats.worker(0), two_cores ? other_cpu : o.cpu, 0.0, [] {});
  std::vector<EventRecord> events(4096);
  auto take_events = [&] {
    while (worker.drain_events(events.data(), events.size()) == events.size()) {
    }
  };
  {
    EngineConfig warm_config = config;
    warm_config.receive_backend = ReceiveBackend::kRecvmmsg;
    UdpSocket warm_socket = backlog_socket();
    const uint16_t warm_port = warm_socket.bound_port();
    UdpReceiver warm(1, warm_config, std::move(warm_socket), {&worker.input(0)}, {&worker.wake()}, stats.receiver(1),
                     -1);
    worker.watch({&warm.watermark()});
    prefill(warm_port, o, o.hosts);
    while (warm.receive_batch() > 0) {
      while (worker.step()) {
      }
      take_events();
    }
    warm.close_socket();
  }
  const auto processed = [&] {
    return EngineStats::get(stats.worker(0), static_cast<uint32_t>(WorkerCounter::kProcessed));
  };
  const uint64_t warm = processed();
  UdpSocket socket = backlog_socket();
  const uint16_t port = socket.bound_port();
  UdpReceiver receiver(0, config, std::move(socket), {&worker.input(0)}, {&worker.wake()}, stats.receiver(0),
                       o.cpu);
  worker.watch({&receiver.watermark()});
  prefill(port, o, o.packets, false, static_cast<uint32_t>(o.hosts));
  pin(other_cpu);
  const uint64_t start = monotonic_ns();
  worker.start();
  receiver.start();
  uint64_t last = start;
  for (uint64_t seen = 0; seen < o.packets;) {
    const timespec nap{0, 200'000};
    nanosleep(&nap, nullptr);
    take_events();
    const uint64_t now = monotonic_ns();
    const uint64_t done = processed() - warm;
    if (done != seen) {
      seen = done;
      last = now;
    } else if (now - last > 100'000'000) {
      break;
    }
  }
  const pid_t receiver_tid = thread_named("hw-rx-0");
  const pid_t worker_tid = thread_named("hw-wk-0");
  const uint64_t receiver_ns = thread_cpu_ns(receiver_tid);
  const uint64_t worker_ns = thread_cpu_ns(worker_tid);
  receiver.request_stop();
  receiver.join();
  worker.request_stop();
  worker.join();
  take_events();
  receiver.close_socket();
  pin(o.cpu);
  if (receiver_tid == 0 || worker_tid == 0) {
    std::fprintf(stderr, "threads: cannot find the engine's threads by name\n");
    std::exit(1);
  }
  return {processed() - warm, static_cast<double>(last - start) / 1e9, static_cast<double>(receiver_ns) / 1e9,
          static_cast<double>(worker_ns) / 1e9};
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

// Whether this kernel (and policy) lets a receiver use io_uring.
bool io_uring_available() {
  UdpSocket socket(UdpSocketOptions{"127.0.0.1", 0, 0, 5});
  int error = 0;
  const char* call = "";
  return UringReader::open(socket.fd(), kUringBufferCount, error, call) != nullptr;
}

// One contender's runs: packets per wall second and per CPU second, and the CPU time per packet
// split into user space and the kernel (in-line rows), or into the receiver's and the worker's
// threads (threads rows: their per-thread clocks are exact, but the kernel keeps a thread's
// user/system split in scheduler ticks, too coarse for a drain of a fraction of a second).
struct Rates {
  const char* name;   // in the JSON lines
  const char* label;  // in the table
  bool threads = false;
  std::vector<double> wall{};
  std::vector<double> cpu{};
  std::vector<double> user_ns{};
  std::vector<double> system_ns{};
  std::vector<double> receiver_ns{};
  std::vector<double> worker_ns{};
  void add(const RunResult& r) {
    const double packets = static_cast<double>(r.packets);
    wall.push_back(packets / r.seconds);
    cpu.push_back(packets / r.cpu_seconds);
    user_ns.push_back(r.user_seconds * 1e9 / packets);
    system_ns.push_back((r.cpu_seconds - r.user_seconds) * 1e9 / packets);
  }
  // With one core the CPU rate counts both threads; with two, the receiver's alone: its core is
  // the one a backlog saturates (the worker's time per packet, shown beside it, is a small part).
  void add(const ThreadsResult& r, bool two_cores) {
    const double packets = static_cast<double>(r.packets);
    wall.push_back(packets / r.seconds);
    cpu.push_back(packets / (r.receiver_cpu_seconds + (two_cores ? 0.0 : r.worker_cpu_seconds)));
    receiver_ns.push_back(r.receiver_cpu_seconds * 1e9 / packets);
    worker_ns.push_back(r.worker_cpu_seconds * 1e9 / packets);
  }
};

bool wanted(const Options& o, const Rates& rates) { return o.only.empty() || o.only == rates.name; }

void print_table(const Options& o, const std::vector<const Rates*>& rows, double bare_wall, double bare_cpu) {
  std::printf("| contender | packets/s (median of %d) | ratio to bare | packets/CPU-s | ratio to bare "
              "| user ns/packet | kernel ns/packet |\n|---|---|---|---|---|---|---|\n", o.runs);
  for (const Rates* r : rows) {
    std::printf("| %s | %.3g | %.2f | %.3g | %.2f |", r->label, median(r->wall), median(r->wall) / bare_wall,
                median(r->cpu), median(r->cpu) / bare_cpu);
    if (r->threads) std::printf(" n/a | n/a |\n");
    else std::printf(" %.0f | %.0f |\n", median(r->user_ns), median(r->system_ns));
  }
  bool any_threads = false;
  for (const Rates* r : rows) any_threads = any_threads || r->threads;
  if (!any_threads) return;
  std::printf("\n| threads contender | receiver CPU ns/packet | worker CPU ns/packet |\n|---|---|---|\n");
  for (const Rates* r : rows) {
    if (r->threads) std::printf("| %s | %.0f | %.0f |\n", r->label, median(r->receiver_ns), median(r->worker_ns));
  }
}

// One JSON line per contender; userNsPerPacket and systemNsPerPacket are null on threads rows,
// which carry receiverCpuNsPerPacket and workerCpuNsPerPacket instead.
void print_json(const Options& o, const std::vector<const Rates*>& rows, double bare_wall, double bare_cpu) {
  for (const Rates* r : rows) {
    std::printf(
        "{\"bench\":\"ingest\",\"scenario\":\"capacity\",\"contender\":\"%s\",\"packets\":%llu,"
        "\"hosts\":%llu,\"packetsPerSecond\":%.4g,\"ratioToBare\":%.3f,\"packetsPerCpuSecond\":%.4g,"
        "\"cpuRatioToBare\":%.3f,",
        r->name, static_cast<unsigned long long>(o.packets), static_cast<unsigned long long>(o.hosts),
        median(r->wall), median(r->wall) / bare_wall, median(r->cpu), median(r->cpu) / bare_cpu);
    if (r->threads) {
      std::printf("\"userNsPerPacket\":null,\"systemNsPerPacket\":null,\"receiverCpuNsPerPacket\":%.0f,"
                  "\"workerCpuNsPerPacket\":%.0f}\n",
                  median(r->receiver_ns), median(r->worker_ns));
    } else {
      std::printf("\"userNsPerPacket\":%.0f,\"systemNsPerPacket\":%.0f}\n", median(r->user_ns),
                  median(r->system_ns));
    }
  }
}

}  // namespace

// The other core of a pair for the threads rows: the lowest allowed CPU that is not `cpu`, or -1.
int other_cpu(int cpu) {
  for (const int allowed : allowed_cpus()) {
    if (allowed != cpu) return allowed;
  }
  return -1;
}

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  const int other = other_cpu(o.cpu);
  pin(o.cpu);
  const bool uring = io_uring_available();
  if (!uring) std::fprintf(stderr, "io_uring refused here: the io_uring rows are left out\n");
  if (o.threads && other < 0) std::fprintf(stderr, "one CPU allowed: the threads rows are left out\n");
  const bool threads = o.threads && other >= 0;
  Rates bare{"bare-recvmmsg", "bare recvmmsg"};
  Rates bare_uring{"bare-io_uring", "bare io_uring (UringReader, counts only)"};
  Rates heartwatch{"heartwatch", "heartwatch, recvmmsg backend"};
  Rates heartwatch_uring{"heartwatch-io_uring", "heartwatch, io_uring backend"};
  Rates authed{"heartwatch-auth", "heartwatch, recvmmsg, auth required"};
  Rates one_core{"heartwatch-threads-1core", "heartwatch threads, one core, recvmmsg", true};
  Rates one_core_uring{"heartwatch-threads-1core-io_uring", "heartwatch threads, one core, io_uring", true};
  Rates two_cores{"heartwatch-threads-2core", "heartwatch threads, two cores, recvmmsg (receiver CPU)", true};
  Rates two_cores_uring{"heartwatch-threads-2core-io_uring", "heartwatch threads, two cores, io_uring (receiver CPU)",
                        true};
  uint64_t short_runs = 0;
  for (int run = 0; run < o.runs; ++run) {
    std::vector<std::pair<Rates*, RunResult>> results = {{&bare, run_bare(o)}};
    if (uring && wanted(o, bare_uring)) results.emplace_back(&bare_uring, run_bare_uring(o));
    if (wanted(o, heartwatch)) results.emplace_back(&heartwatch, run_heartwatch(o, false, ReceiveBackend::kRecvmmsg));
    if (uring && wanted(o, heartwatch_uring)) {
      results.emplace_back(&heartwatch_uring, run_heartwatch(o, false, ReceiveBackend::kIoUring));
    }
    if (wanted(o, authed)) results.emplace_back(&authed, run_heartwatch(o, true, ReceiveBackend::kRecvmmsg));
    std::vector<std::pair<Rates*, ThreadsResult>> threaded;
    for (const bool two : {false, true}) {
      Rates& recvmmsg_rates = two ? two_cores : one_core;
      Rates& uring_rates = two ? two_cores_uring : one_core_uring;
      if (threads && wanted(o, recvmmsg_rates)) {
        threaded.emplace_back(&recvmmsg_rates, run_threads(o, ReceiveBackend::kRecvmmsg, other, two));
      }
      if (threads && uring && wanted(o, uring_rates)) {
        threaded.emplace_back(&uring_rates, run_threads(o, ReceiveBackend::kIoUring, other, two));
      }
    }
    std::fprintf(stderr, "run %d:", run);
    const auto report = [&](const Rates& rates, uint64_t packets) {
      short_runs += packets != o.packets;
      std::fprintf(stderr, " %s %.3g pkt/s %.3g pkt/cpu-s (%llu pkts);", rates.name, rates.wall.back(),
                   rates.cpu.back(), static_cast<unsigned long long>(packets));
    };
    for (auto& [rates, result] : results) {
      rates->add(result);
      report(*rates, result.packets);
    }
    for (auto& [rates, result] : threaded) {
      rates->add(result, rates == &two_cores || rates == &two_cores_uring);
      report(*rates, result.packets);
    }
    std::fprintf(stderr, "\n");
  }
  std::vector<const Rates*> rows;
  for (const Rates* r : {&bare, &bare_uring, &heartwatch, &heartwatch_uring, &authed, &one_core, &one_core_uring,
                         &two_cores, &two_cores_uring}) {
    if (!r->wall.empty()) rows.push_back(r);
  }
  print_table(o, rows, median(bare.wall), median(bare.cpu));
  if (short_runs > 0) {
    std::printf("note: %llu runs drained fewer packets than were sent (kernel drops: raise SO_RCVBUF)\n",
                static_cast<unsigned long long>(short_runs));
  }
  print_json(o, rows, median(bare.wall), median(bare.cpu));
  return 0;
}
