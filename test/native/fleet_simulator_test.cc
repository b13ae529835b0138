// Runs the simulator against a loopback socket and checks every datagram with the server's
// parser: the simulator encodes from the spec on its own, so this is where the two meet.
#include "sim/fleet_simulator.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <map>
#include <stdexcept>
#include <thread>
#include <vector>

#include "core/protocol/heartbeat_parser.h"

namespace heartwatch {
namespace {

using sim::FleetSimulator;

double monotonic_ms() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

struct Arrival {
  ParsedHeartbeat heartbeat;
  double at_ms;
  std::vector<uint8_t> payload;
};

// A UDP socket on loopback and a thread that parses everything sent to it.
class LoopbackReceiver {
 public:
  explicit LoopbackReceiver(int family) : family_(family) {
    fd_ = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return;
    const int rcvbuf = 8 << 20;
    setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    const timeval timeout{0, 20000};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    sockaddr_storage address{};
    socklen_t length;
    if (family == AF_INET) {
      auto* v4 = reinterpret_cast<sockaddr_in*>(&address);
      v4->sin_family = AF_INET;
      v4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      length = sizeof *v4;
    } else {
      auto* v6 = reinterpret_cast<sockaddr_in6*>(&address);
      v6->sin6_family = AF_INET6;
      v6->sin6_addr = in6addr_loopback;
      length = sizeof *v6;
    }
    if (bind(fd_, reinterpret_cast<sockaddr*>(&address), length) != 0 ||
        getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      close(fd_);
      fd_ = -1;
      return;
    }
    port_ = ntohs(family == AF_INET ? reinterpret_cast<sockaddr_in*>(&address)->sin_port
                                    : reinterpret_cast<sockaddr_in6*>(&address)->sin6_port);
    thread_ = std::thread([this] { receive(); });
  }

  ~LoopbackReceiver() {
    finish();
    if (fd_ >= 0) close(fd_);
  }

  bool ok() const { return fd_ >= 0; }
  uint16_t port() const { return port_; }

  // Drains what is queued (the sender has finished) and stops.
  void finish() {
    done_.store(true);
    if (thread_.joinable()) thread_.join();
  }

  std::vector<Arrival> arrivals;
  std::map<ParseStatus, uint64_t> statuses;

 private:
  void receive() {
    constexpr int kBatch = 64;
    std::vector<uint8_t> buffers(kBatch * 2048);
    iovec iov[kBatch];
    mmsghdr messages[kBatch];
    while (true) {
      for (int i = 0; i < kBatch; ++i) {
        iov[i] = iovec{buffers.data() + i * 2048, 2048};
        messages[i] = mmsghdr{};
        messages[i].msg_hdr.msg_iov = &iov[i];
        messages[i].msg_hdr.msg_iovlen = 1;
      }
      const bool last_pass = done_.load();
      const int n = recvmmsg(fd_, messages, kBatch, 0, nullptr);
      if (n <= 0) {
        if (last_pass) return;
        continue;
      }
      const double now = monotonic_ms();
      for (int i = 0; i < n; ++i) {
        ParsedHeartbeat heartbeat{};
        const ParseStatus status =
            parse_heartbeat_v1(buffers.data() + i * 2048, messages[i].msg_len, heartbeat);
        ++statuses[status];
        if (status == ParseStatus::kOk) {
          const uint8_t* payload = buffers.data() + i * 2048 + kHeartbeatHeaderBytes;
          arrivals.push_back(
              Arrival{heartbeat, now, {payload, payload + heartbeat.payload_len}});
        }
      }
    }
  }

  int family_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> done_{false};
  std::thread thread_;
};

FleetSimulator::Config base_config(const char* address, uint16_t port) {
  FleetSimulator::Config c;
  c.address = address;
  c.port = port;
  return c;
}

std::map<uint64_t, std::vector<Arrival>> by_host(const std::vector<Arrival>& arrivals) {
  std::map<uint64_t, std::vector<Arrival>> hosts;
  for (const Arrival& a : arrivals) hosts[a.heartbeat.host_id].push_back(a);
  return hosts;
}

// Timing checks are one-sided: an action may run late on a loaded 2-core machine under
// sanitizers (a descheduled thread), so "late" bounds only catch a hang or a lost action;
// "early" bounds, which no load can excuse, stay tight.
constexpr double kSlackMs = 100;
constexpr double kLateMs = 1000;

TEST(FleetSimulator, FleetOverLoopbackMatchesTheSpecAndTheSchedule) {
  LoopbackReceiver receiver(AF_INET);
  ASSERT_TRUE(receiver.ok());
  FleetSimulator::Config c = base_config("127.0.0.1", receiver.port());
  c.hosts = 100;
  c.first_host_id = 1000;
  c.packets_per_second = 10000;  // Each host beats every 10 ms.
  c.duration_ms = 800;
  c.interval_ms = 10;
  c.payload_bytes = 6;
  c.batch = 16;
  c.kills = {{10, 10, 200, false}, {20, 10, 250, true}, {50, 10, 150, false}};
  c.restarts = {{40, 10, 300}, {50, 10, 450}};
  FleetSimulator simulator(c);
  const FleetSimulator::Report report = simulator.run();
  receiver.finish();

  EXPECT_EQ(report.send_errors, 0u);
  EXPECT_FALSE(report.stopped_early);
  EXPECT_GE(report.elapsed_ms, 800 - kSlackMs);
  EXPECT_LE(report.elapsed_ms, 800 + kLateMs);
  EXPECT_EQ(receiver.statuses[ParseStatus::kMalformed], 0u);
  ASSERT_EQ(receiver.arrivals.size(), report.packets_sent);
  EXPECT_EQ(report.leaves_sent, 10u);
  // 80 slots per host, less those of killed hosts: at least 2/3 of the offered rate.
  EXPECT_GT(report.packets_sent, 5000u);
  EXPECT_LE(report.packets_sent, 8000u + c.batch);

  // The first cycle is a shuffle of every host, and the second repeats it.
  std::vector<uint64_t> first_cycle, second_cycle;
  for (size_t i = 0; i < 100; ++i) first_cycle.push_back(receiver.arrivals[i].heartbeat.host_id);
  for (size_t i = 100; i < 200; ++i) second_cycle.push_back(receiver.arrivals[i].heartbeat.host_id);
  EXPECT_EQ(first_cycle, second_cycle);
  EXPECT_FALSE(std::is_sorted(first_cycle.begin(), first_cycle.end()));
  std::sort(first_cycle.begin(), first_cycle.end());
  for (uint64_t i = 0; i < 100; ++i) EXPECT_EQ(first_cycle[i], 1000 + i);

  const auto hosts = by_host(receiver.arrivals);
  ASSERT_EQ(hosts.size(), 100u);
  const double kill_10 = report.kills[0].at_ms, kill_20 = report.kills[1].at_ms,
               kill_50 = report.kills[2].at_ms;
  const double restart_40 = report.restart_at_ms[0], restart_50 = report.restart_at_ms[1];
  EXPECT_GE(kill_10 - report.start_ms, 200 - kSlackMs);
  EXPECT_LE(kill_10 - report.start_ms, 200 + kLateMs);
  EXPECT_GE(restart_50 - report.start_ms, 450 - kSlackMs);
  EXPECT_LE(restart_50 - report.start_ms, 450 + kLateMs);

  for (const auto& [host_id, arrivals] : hosts) {
    const uint32_t index = static_cast<uint32_t>(host_id - 1000);
    SCOPED_TRACE(index);
    uint32_t incarnation_changes = 0;
    for (size_t i = 0; i < arrivals.size(); ++i) {
      const ParsedHeartbeat& h = arrivals[i].heartbeat;
      EXPECT_EQ(h.interval_ms, 10u);
      EXPECT_EQ(h.payload_len, 6u);
      if (i == 0) {
        EXPECT_EQ(h.seq, 0u);
        continue;
      }
      const ParsedHeartbeat& prev = arrivals[i - 1].heartbeat;
      if (h.incarnation != prev.incarnation) {
        ++incarnation_changes;
        EXPECT_EQ(h.seq, 0u);
      } else {
        EXPECT_EQ(h.seq, prev.seq + 1);
      }
    }
    const bool restarted = (index >= 40 && index < 60);
    EXPECT_EQ(incarnation_changes, restarted ? 1u : 0u);
    const size_t leaves = std::count_if(arrivals.begin(), arrivals.end(),
                                        [](const Arrival& a) { return a.heartbeat.leave; });
    EXPECT_EQ(leaves, (index >= 20 && index < 30) ? 1u : 0u);

    if (index >= 10 && index < 20) {
      const double last_send = report.kills[0].last_send_ms[index - 10];
      EXPECT_LE(last_send, kill_10);
      EXPECT_GE(last_send, kill_10 - 10 - kLateMs);
      EXPECT_GE(arrivals.back().at_ms, last_send - kSlackMs);
      EXPECT_LE(arrivals.back().at_ms, last_send + kLateMs);
      EXPECT_LE(arrivals.back().at_ms, kill_10 + kLateMs);
    } else if (index >= 20 && index < 30) {
      EXPECT_TRUE(arrivals.back().heartbeat.leave);
      const double leave_send = report.kills[1].last_send_ms[index - 20];
      EXPECT_GE(leave_send, kill_20);
      EXPECT_LE(leave_send, kill_20 + 10 + kLateMs);
      EXPECT_GE(arrivals.back().at_ms, leave_send - kSlackMs);
      EXPECT_LE(arrivals.back().at_ms, leave_send + kLateMs);
    } else if (index >= 40 && index < 50) {
      for (size_t i = 1; i < arrivals.size(); ++i) {
        if (arrivals[i].heartbeat.incarnation != arrivals[i - 1].heartbeat.incarnation) {
          EXPECT_GE(arrivals[i].at_ms, restart_40 - kSlackMs);
        }
      }
    } else if (index >= 50 && index < 60) {
      // Silent from the kill to the restart, then back under a new incarnation.
      size_t change = 1;
      while (change < arrivals.size() &&
             arrivals[change].heartbeat.incarnation == arrivals[0].heartbeat.incarnation) {
        ++change;
      }
      ASSERT_LT(change, arrivals.size());
      EXPECT_LE(arrivals[change - 1].at_ms, kill_50 + kLateMs);
      EXPECT_GE(arrivals[change].at_ms, restart_50 - kSlackMs / 10);
      EXPECT_GT(arrivals[change].at_ms - arrivals[change - 1].at_ms, 300 - 10 - kSlackMs);
      EXPECT_LE(report.kills[2].last_send_ms[index - 50], kill_50);
    } else {
      // Unharmed hosts beat about once per 10 ms for the whole run.
      EXPECT_GE(arrivals.size(), 60u);
      EXPECT_LE(arrivals.size(), 81u);
    }
  }
}

// A host silent from a kill to its restart, or to the end of the run, is the only kind of long gap
// a sender that keeps up leaves; the others beat every 10 ms, far below the threshold (as the
// test above, this assumes the sender thread is not starved for hundreds of milliseconds).
TEST(FleetSimulator, ReportsHostsSilentLongerThanTheGapThreshold) {
  LoopbackReceiver receiver(AF_INET);
  ASSERT_TRUE(receiver.ok());
  FleetSimulator::Config c = base_config("127.0.0.1", receiver.port());
  c.hosts = 50;
  c.first_host_id = 1;
  c.packets_per_second = 5000;  // Each host beats every 10 ms.
  c.duration_ms = 800;
  c.kills = {{10, 5, 100, false}, {30, 3, 300, false}};
  c.restarts = {{10, 5, 500}};
  c.long_gap_ms = 300;
  FleetSimulator simulator(c);
  const FleetSimulator::Report report = simulator.run();
  receiver.finish();

  const double kill = report.kills[0].at_ms, restart = report.restart_at_ms[0];
  ASSERT_EQ(report.long_gaps.size(), 8u);
  // Never restarted: silent from the kill to the end of the run.
  const double end = report.start_ms + report.elapsed_ms;
  for (uint32_t i = 5; i < 8; ++i) {
    const FleetSimulator::LongGap& gap = report.long_gaps[i];
    EXPECT_EQ(gap.host, 25 + i);
    EXPECT_NEAR(gap.ended_ms, end, 0.01);
    EXPECT_GE(gap.gap_ms, end - report.kills[1].at_ms);
    EXPECT_NEAR(gap.gap_ms, end - report.kills[1].last_send_ms[i - 5], 0.01);
  }
  const auto hosts = by_host(receiver.arrivals);
  for (uint32_t i = 0; i < 5; ++i) {
    const FleetSimulator::LongGap& gap = report.long_gaps[i];
    SCOPED_TRACE(gap.host);
    EXPECT_EQ(gap.host, 10 + i);
    // Its last send came before the kill took effect, the one that ended the gap after the restart.
    EXPECT_GE(gap.gap_ms, restart - kill);
    EXPECT_GE(gap.ended_ms, restart);
    EXPECT_LE(gap.ended_ms, restart + 10 + kLateMs);
    // The send that ended it is the first datagram of the new incarnation.
    const std::vector<Arrival>& arrivals = hosts.at(1 + gap.host);
    size_t change = 1;
    while (change < arrivals.size() &&
           arrivals[change].heartbeat.incarnation == arrivals[0].heartbeat.incarnation) {
      ++change;
    }
    ASSERT_LT(change, arrivals.size());
    EXPECT_GE(arrivals[change].at_ms, gap.ended_ms - kSlackMs);
    EXPECT_LE(arrivals[change].at_ms, gap.ended_ms + kLateMs);
  }
}

TEST(FleetSimulator, TracksNoGapsUnlessAsked) {
  LoopbackReceiver receiver(AF_INET);
  ASSERT_TRUE(receiver.ok());
  FleetSimulator::Config c = base_config("127.0.0.1", receiver.port());
  c.hosts = 10;
  c.packets_per_second = 1000;
  c.duration_ms = 300;
  c.kills = {{0, 5, 50, false}};
  c.restarts = {{0, 5, 250}};
  FleetSimulator simulator(c);
  const FleetSimulator::Report report = simulator.run();
  receiver.finish();
  EXPECT_GT(report.packets_sent, 0u);
  EXPECT_TRUE(report.long_gaps.empty());
}

TEST(FleetSimulator, Ipv6AndSeqWrap) {
  LoopbackReceiver receiver(AF_INET6);
  if (!receiver.ok()) GTEST_SKIP() << "no IPv6 loopback here";
  FleetSimulator::Config c = base_config("::1", receiver.port());
  c.hosts = 5;
  c.first_host_id = UINT64_MAX - 4;
  c.packets_per_second = 2000;
  c.duration_ms = 200;
  c.first_seq = 0xFFFFFFF0;
  c.batch = 1;
  FleetSimulator simulator(c);
  const FleetSimulator::Report report = simulator.run();
  receiver.finish();
  ASSERT_EQ(receiver.arrivals.size(), report.packets_sent);
  EXPECT_GT(report.packets_sent, 200u);
  const auto hosts = by_host(receiver.arrivals);
  ASSERT_EQ(hosts.size(), 5u);
  EXPECT_EQ(hosts.begin()->first, UINT64_MAX - 4);
  EXPECT_EQ(hosts.rbegin()->first, UINT64_MAX);
  for (const auto& [host_id, arrivals] : hosts) {
    EXPECT_EQ(arrivals[0].heartbeat.seq, 0xFFFFFFF0u);
    bool wrapped = false;
    for (size_t i = 1; i < arrivals.size(); ++i) {
      const uint32_t previous = arrivals[i - 1].heartbeat.seq;
      EXPECT_EQ(arrivals[i].heartbeat.seq, static_cast<uint32_t>(previous + 1));
      wrapped |= arrivals[i].heartbeat.seq == 0;
    }
    EXPECT_TRUE(wrapped);
  }
}

TEST(FleetSimulator, StopEndsARunWithoutADuration) {
  LoopbackReceiver receiver(AF_INET);
  ASSERT_TRUE(receiver.ok());
  FleetSimulator::Config c = base_config("127.0.0.1", receiver.port());
  c.hosts = 10;
  c.packets_per_second = 1000;
  c.duration_ms = 0;
  c.kills = {{0, 10, 60000, false}};
  FleetSimulator simulator(c);
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    simulator.stop();
  });
  const double before = monotonic_ms();
  const FleetSimulator::Report report = simulator.run();
  stopper.join();
  receiver.finish();
  EXPECT_TRUE(report.stopped_early);
  EXPECT_LT(monotonic_ms() - before, 100 + kLateMs);
  EXPECT_GT(report.packets_sent, 0u);
  ASSERT_EQ(report.kills.size(), 1u);
  EXPECT_TRUE(std::isnan(report.kills[0].at_ms));
  EXPECT_TRUE(report.kills[0].last_send_ms.empty());
  EXPECT_THROW(simulator.run(), std::logic_error);
}

TEST(FleetSimulator, SendErrorsAreCountedByErrno) {
  // A port nobody listens on: the kernel reports ICMP port-unreachable on the connected socket.
  int probe = socket(AF_INET, SOCK_DGRAM, 0);
  ASSERT_GE(probe, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  ASSERT_EQ(bind(probe, reinterpret_cast<sockaddr*>(&address), length), 0);
  ASSERT_EQ(getsockname(probe, reinterpret_cast<sockaddr*>(&address), &length), 0);
  close(probe);

  FleetSimulator::Config c = base_config("127.0.0.1", ntohs(address.sin_port));
  c.hosts = 4;
  c.packets_per_second = 1000;
  c.duration_ms = 100;
  c.batch = 1;
  FleetSimulator simulator(c);
  const FleetSimulator::Report report = simulator.run();
  EXPECT_GT(report.send_errors, 0u);
  uint64_t refused = 0;
  for (const auto& [error, count] : report.errors_by_errno) {
    if (error == ECONNREFUSED) refused = count;
  }
  EXPECT_EQ(refused, report.send_errors);
}

uint64_t load_u64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = v << 8 | p[i];
  return v;
}

uint32_t load_u32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = v << 8 | p[i];
  return v;
}

// 100 hosts, every 10th with a 64-byte status changing every 5th of its beats, staggered: each
// status host's stamp follows its seq exactly, and the number of changes the server would see as
// update events is the one the schedule gives. Plain hosts send 28-byte beats.
TEST(FleetSimulator, StatusHostsChangeTheirStatusEveryNthBeatStaggered) {
  LoopbackReceiver receiver(AF_INET);
  ASSERT_TRUE(receiver.ok());
  FleetSimulator::Config c = base_config("127.0.0.1", receiver.port());
  c.hosts = 100;
  c.first_host_id = 500;
  c.first_seq = 0xffff'fff0;  // the change count is taken across the seq wrap
  c.packets_per_second = 2000;
  c.duration_ms = 1000;
  c.status_host_stride = 10;
  c.status_bytes = 64;
  c.status_change_every = 5;
  FleetSimulator simulator(c);
  const FleetSimulator::Report report = simulator.run();
  receiver.finish();
  ASSERT_EQ(report.send_errors, 0u);
  ASSERT_EQ(receiver.arrivals.size(), report.packets_sent);  // loopback at 2,000/s loses none

  uint64_t changes_seen = 0, changes_expected = 0;
  for (const auto& [host_id, arrivals] : by_host(receiver.arrivals)) {
    const uint32_t index = static_cast<uint32_t>(host_id - c.first_host_id);
    const bool has_status = index % 10 == 0;
    for (size_t k = 0; k < arrivals.size(); ++k) {
      const Arrival& a = arrivals[k];
      ASSERT_EQ(a.heartbeat.seq, static_cast<uint32_t>(c.first_seq + k));
      if (!has_status) {
        ASSERT_EQ(a.heartbeat.payload_len, 0u) << "host " << host_id;
        continue;
      }
      ASSERT_EQ(a.payload.size(), 64u);
      EXPECT_EQ(load_u64(a.payload.data()), host_id);
      EXPECT_EQ(load_u32(a.payload.data() + 8), (k + index / 10 % 5) / 5) << "host " << host_id;
      EXPECT_EQ(std::memcmp(a.payload.data() + 12, arrivals[0].payload.data() + 12, 52), 0);
      if (k > 0 && a.payload != arrivals[k - 1].payload) ++changes_seen;
    }
    if (has_status) changes_expected += (arrivals.size() - 1 + index / 10 % 5) / 5;
  }
  EXPECT_EQ(by_host(receiver.arrivals).size(), 100u);
  EXPECT_GE(changes_expected, 10u * 3);  // about 20 beats per host: 3 or 4 changes each
  EXPECT_LT(changes_expected, 10u * 5);
  EXPECT_EQ(changes_seen, changes_expected);
}

TEST(FleetSimulator, RejectsBadAddressesAndConfigs) {
  EXPECT_THROW(FleetSimulator(base_config("not-an-address", 9)), std::invalid_argument);
  EXPECT_THROW(FleetSimulator(base_config("example.com", 9)), std::invalid_argument);
  EXPECT_THROW(FleetSimulator(base_config("127.0.0.1", 0)), std::invalid_argument);
  const auto with = [](auto change) {
    FleetSimulator::Config c = base_config("127.0.0.1", 9);
    change(c);
    return c;
  };
  EXPECT_THROW(FleetSimulator(with([](auto& c) { c.hosts = 0; })), std::invalid_argument);
  EXPECT_THROW(FleetSimulator(with([](auto& c) { c.first_host_id = 0; })), std::invalid_argument);
  EXPECT_THROW(FleetSimulator(with([](auto& c) { c.first_host_id = UINT64_MAX, c.hosts = 2; })),
               std::invalid_argument);
  EXPECT_THROW(FleetSimulator(with([](auto& c) { c.packets_per_second = 0; })),
               std::invalid_argument);
  EXPECT_THROW(FleetSimulator(with([](auto& c) { c.packets_per_second = INFINITY; })),
               std::invalid_argument);
  EXPECT_THROW(FleetSimulator(with([](auto& c) { c.batch = 0; })), std::invalid_argument);
  EXPECT_THROW(FleetSimulator(with([](auto& c) { c.batch = 1025; })), std::invalid_argument);
  EXPECT_THROW(FleetSimulator(with([](auto& c) { c.payload_bytes = 65480; })),
               std::invalid_argument);
  EXPECT_NO_THROW(FleetSimulator(with([](auto& c) { c.payload_bytes = 65479; })));
  EXPECT_THROW(FleetSimulator(with([](auto& c) { c.cpu = -2; })), std::invalid_argument);
  EXPECT_THROW(FleetSimulator(with([](auto& c) {
                 c.hosts = 10;
                 c.kills = {{5, 6, 0, false}};
               })),
               std::invalid_argument);
  EXPECT_THROW(FleetSimulator(with([](auto& c) {
                 c.hosts = 10;
                 c.restarts = {{10, 1, 0}};
               })),
               std::invalid_argument);
  const auto statuses = [](FleetSimulator::Config& c) {
    c.status_host_stride = 10;
    c.status_bytes = 64;
  };
  EXPECT_NO_THROW(FleetSimulator(with(statuses)));
  EXPECT_THROW(FleetSimulator(with([&](auto& c) {
                 statuses(c);
                 c.payload_bytes = 1;
               })),
               std::invalid_argument);
  EXPECT_THROW(FleetSimulator(with([&](auto& c) {
                 statuses(c);
                 c.status_bytes = sim::kMinSimulatorStatusBytes - 1;
               })),
               std::invalid_argument);
  EXPECT_THROW(FleetSimulator(with([&](auto& c) {
                 statuses(c);
                 c.status_bytes = 65480;
               })),
               std::invalid_argument);
  EXPECT_THROW(FleetSimulator(with([&](auto& c) {
                 statuses(c);
                 c.status_change_every = 0;
               })),
               std::invalid_argument);
  EXPECT_NO_THROW(FleetSimulator(with([](auto& c) { c.first_host_id = UINT64_MAX; })));
  EXPECT_NO_THROW(FleetSimulator(base_config("::1", 9)));
}

}  // namespace
}  // namespace heartwatch
