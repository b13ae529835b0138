#include "sim/fleet_simulator.h"

#include <netdb.h>
#include <pthread.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>

#include "core/common/system_error.h"
#include "sim/tag_signer.h"
#include "sim/tcp_fleet.h"

namespace heartwatch::sim {
namespace {

// Written from docs/protocol.md, not taken from the server (see the header comment).
constexpr uint32_t kHeaderBytes = 28;
constexpr uint8_t kMagic0 = 0x48, kMagic1 = 0x57, kVersion = 1, kFlagLeave = 0x01, kFlagAuth = 0x02;
// The largest UDP payload over IPv4 (65535 - 20 IP - 8 UDP); IPv6 allows a little more.
constexpr uint32_t kMaxDatagramBytes = 65507;
constexpr uint32_t kTcpConnectTimeoutMs = 30'000;
constexpr int64_t kMaxSleepNs = 10'000'000;
constexpr double kBurstSeconds = 0.020;
constexpr char kPayloadPattern[] = "heartwatch-sim ";

void put_u16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}

void put_u32(uint8_t* p, uint32_t v) {
  for (int i = 3; i >= 0; --i, v >>= 8) p[i] = static_cast<uint8_t>(v);
}

void put_u64(uint8_t* p, uint64_t v) {
  for (int i = 7; i >= 0; --i, v >>= 8) p[i] = static_cast<uint8_t>(v);
}

int64_t monotonic_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

void sleep_until_ns(int64_t deadline_ns) {
  timespec ts{static_cast<time_t>(deadline_ns / 1'000'000'000),
              static_cast<long>(deadline_ns % 1'000'000'000)};
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
  }
}

double ns_to_ms(int64_t ns) { return static_cast<double>(ns) / 1e6; }

double last_send_ms(int64_t last_send_ns) {
  return last_send_ns < 0 ? std::numeric_limits<double>::quiet_NaN() : ns_to_ms(last_send_ns);
}

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

template <typename Event>
void check_range(const Event& event, uint32_t hosts, const char* what) {
  if (uint64_t{event.first_host} + event.host_count > hosts) {
    throw std::invalid_argument(std::string(what) + " event covers hosts past the fleet's " +
                                std::to_string(hosts));
  }
}

void validate_statuses(const FleetSimulator::Config& c, uint32_t tag_bytes) {
  if (c.payload_bytes != 0) {
    throw std::invalid_argument("payload_bytes must be 0 when status_host_stride is set");
  }
  if (c.status_bytes < kMinSimulatorStatusBytes ||
      kHeaderBytes + c.status_bytes + tag_bytes > kMaxDatagramBytes) {
    throw std::invalid_argument("status_bytes must be at least " +
                                std::to_string(kMinSimulatorStatusBytes) +
                                " and leave the datagram (tag included) within 65507 bytes");
  }
  if (c.status_change_every == 0) {
    throw std::invalid_argument("status_change_every must be at least 1");
  }
}

void validate(const FleetSimulator::Config& c) {
  if (c.hosts == 0) throw std::invalid_argument("hosts must be at least 1");
  if (c.first_host_id == 0 || c.first_host_id - 1 > UINT64_MAX - c.hosts) {
    throw std::invalid_argument(
        "host ids first_host_id .. first_host_id + hosts - 1 must be 1 to 2^64-1");
  }
  if (!(c.packets_per_second > 0) || !std::isfinite(c.packets_per_second)) {
    throw std::invalid_argument("packets_per_second must be positive and finite");
  }
  if (c.batch == 0 || c.batch > kMaxSimulatorBatch) {
    throw std::invalid_argument("batch must be 1 to " + std::to_string(kMaxSimulatorBatch));
  }
  const uint32_t tag_bytes = c.key.empty() ? 0 : TagSigner::kTagBytes;
  if (kHeaderBytes + c.payload_bytes + tag_bytes > kMaxDatagramBytes) {
    throw std::invalid_argument("payload_bytes must leave the datagram (tag included) within 65507 bytes");
  }
  if (c.status_host_stride > 0) validate_statuses(c, tag_bytes);
  if (c.cpu < -1 || c.cpu >= CPU_SETSIZE) throw std::invalid_argument("cpu out of range");
  if (c.port == 0) throw std::invalid_argument("port must be 1 to 65535");
  for (const auto& kill : c.kills) check_range(kill, c.hosts, "kill");
  for (const auto& restart : c.restarts) check_range(restart, c.hosts, "restart");
}

// Resolves a numeric IPv4/IPv6 literal (with an optional %scope for link-local IPv6); no DNS.
sockaddr_storage resolve(const std::string& address, uint16_t port, socklen_t& length) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_DGRAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const int rc = getaddrinfo(address.c_str(), std::to_string(port).c_str(), &hints, &found);
  if (rc != 0 || found == nullptr) {
    throw std::invalid_argument("address '" + address + "' is not an IPv4 or IPv6 literal");
  }
  sockaddr_storage target{};
  std::memcpy(&target, found->ai_addr, found->ai_addrlen);
  length = found->ai_addrlen;
  freeaddrinfo(found);
  return target;
}

// Pins the calling thread for its lifetime and puts the old affinity back after.
class AffinityGuard {
 public:
  explicit AffinityGuard(int cpu) {
    if (cpu < 0) return;
    int rc = pthread_getaffinity_np(pthread_self(), sizeof saved_, &saved_);
    if (rc != 0) throw SystemError(rc, "pthread_getaffinity_np", "for the fleet simulator");
    cpu_set_t wanted;
    CPU_ZERO(&wanted);
    CPU_SET(cpu, &wanted);
    rc = pthread_setaffinity_np(pthread_self(), sizeof wanted, &wanted);
    if (rc != 0) throw SystemError(rc, "pthread_setaffinity_np", "to CPU " + std::to_string(cpu));
    pinned_ = true;
  }
  ~AffinityGuard() {
    if (pinned_) pthread_setaffinity_np(pthread_self(), sizeof saved_, &saved_);
  }
  AffinityGuard(const AffinityGuard&) = delete;
  AffinityGuard& operator=(const AffinityGuard&) = delete;

 private:
  cpu_set_t saved_{};
  bool pinned_ = false;
};

}  // namespace

FleetSimulator::FleetSimulator(Config config)
    : config_(std::move(config)), rng_state_(config_.seed) {
  validate(config_);
  socklen_t target_length = 0;
  const sockaddr_storage target = resolve(config_.address, config_.port, target_length);

  order_.resize(config_.hosts);
  for (uint32_t i = 0; i < config_.hosts; ++i) order_[i] = i;
  for (uint32_t i = config_.hosts - 1; i > 0; --i) {
    // Modulo bias is below 2^-32 for any fleet size: negligible for a test shuffle.
    const auto j = static_cast<uint32_t>(splitmix64(rng_state_) % (uint64_t{i} + 1));
    std::swap(order_[i], order_[j]);
  }
  hosts_.resize(config_.hosts);
  if (config_.long_gap_ms > 0) gaps_.assign(config_.hosts, HostGap{0, 0});
  for (auto& host : hosts_) {
    host = HostState{-1, config_.first_seq, next_incarnation(0), 0,
                     HostStatus::kAlive};
  }

  for (uint32_t i = 0; i < config_.kills.size(); ++i) {
    events_.push_back(TimedEvent{config_.kills[i].at_ms, true, i});
  }
  for (uint32_t i = 0; i < config_.restarts.size(); ++i) {
    events_.push_back(TimedEvent{config_.restarts[i].at_ms, false, i});
  }
  std::stable_sort(events_.begin(), events_.end(), [](const TimedEvent& a, const TimedEvent& b) {
    return a.at_ms != b.at_ms ? a.at_ms < b.at_ms : a.is_kill && !b.is_kill;
  });

  // The fixed parts of every packet are written once; encode() fills in the rest per packet.
  if (!config_.key.empty()) signer_ = std::make_unique<TagSigner>(config_.key);
  const uint32_t body_bytes =
      std::max<uint32_t>(config_.payload_bytes,
                         config_.status_host_stride > 0 ? config_.status_bytes : 0);
  slot_bytes_ = kHeaderBytes + body_bytes + (signer_ ? TagSigner::kTagBytes : 0);
  packets_.assign(size_t{config_.batch} * slot_bytes_, 0);
  iovecs_.resize(config_.batch);
  messages_.assign(config_.batch, mmsghdr{});
  batch_hosts_.resize(config_.batch);
  batch_leave_.resize(config_.batch);
  errno_counts_.assign(4096, 0);
  for (uint32_t m = 0; m < config_.batch; ++m) {
    uint8_t* packet = packets_.data() + size_t{m} * slot_bytes_;
    packet[0] = kMagic0;
    packet[1] = kMagic1;
    packet[2] = kVersion;
    put_u32(packet + 20, config_.interval_ms);
    put_u16(packet + 24, config_.payload_bytes);
    // A status's bytes after its stamp are this pattern too.
    for (uint32_t i = 0; i < body_bytes; ++i) {
      packet[kHeaderBytes + i] =
          static_cast<uint8_t>(kPayloadPattern[i % (sizeof kPayloadPattern - 1)]);
    }
    iovecs_[m] = iovec{packet, slot_bytes_};
    messages_[m].msg_hdr.msg_iov = &iovecs_[m];
    messages_[m].msg_hdr.msg_iovlen = 1;
  }

  if (config_.tcp) {
    tcp_ = std::make_unique<TcpFleet>(target, target_length, config_.hosts, kTcpConnectTimeoutMs);
    return;
  }
  socket_ = ::socket(target.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (socket_ < 0) throw SystemError(errno, "socket", "for the fleet simulator");
  // Connected, so each send skips the route lookup and needs no per-message address.
  if (::connect(socket_, reinterpret_cast<const sockaddr*>(&target), target_length) != 0) {
    const int error = errno;
    ::close(socket_);
    throw SystemError(error, "connect",
                      "to " + config_.address + " port " + std::to_string(config_.port));
  }
}

FleetSimulator::~FleetSimulator() {
  if (socket_ >= 0) ::close(socket_);
}

void FleetSimulator::stop() noexcept { stop_requested_.store(true, std::memory_order_relaxed); }

FleetSimulator::Report FleetSimulator::run() {
  if (ran_) throw std::logic_error("FleetSimulator::run() may be called once");
  ran_ = true;
  AffinityGuard affinity(config_.cpu);

  // Everything the report holds is allocated before the clock starts.
  Report report;
  report.kills.resize(config_.kills.size(),
                      KillRecord{std::numeric_limits<double>::quiet_NaN(), {}});
  for (size_t i = 0; i < config_.kills.size(); ++i) {
    report.kills[i].last_send_ms.reserve(config_.kills[i].host_count);
  }
  report.restart_at_ms.assign(config_.restarts.size(), std::numeric_limits<double>::quiet_NaN());

  const double slots_per_ns = config_.packets_per_second / 1e9;
  const auto burst = static_cast<uint64_t>(
      std::max<double>(config_.batch, config_.packets_per_second * kBurstSeconds));
  const int64_t start_ns = monotonic_ns();
  const int64_t end_ns = config_.duration_ms == 0
                             ? std::numeric_limits<int64_t>::max()
                             : start_ns + int64_t{config_.duration_ms} * 1'000'000;
  report.start_ms = ns_to_ms(start_ns);
  int64_t anchor_ns = start_ns;
  uint64_t anchor_slot = 0;
  size_t next_event = 0;

  while (true) {
    const int64_t now = monotonic_ns();
    if (now >= end_ns) break;
    if (stop_requested_.load(std::memory_order_relaxed)) {
      report.stopped_early = true;
      break;
    }
    int64_t event_ns = std::numeric_limits<int64_t>::max();
    while (next_event < events_.size()) {
      event_ns = start_ns + int64_t{events_[next_event].at_ms} * 1'000'000;
      if (event_ns > now) break;
      apply_event(events_[next_event++], now, report);
      event_ns = std::numeric_limits<int64_t>::max();
    }

    uint64_t due =
        anchor_slot + static_cast<uint64_t>(static_cast<double>(now - anchor_ns) * slots_per_ns);
    if (due > next_slot_ + burst) {
      // Too far behind: forget the excess time instead of bursting to catch up.
      due = next_slot_ + burst;
      anchor_slot = due;
      anchor_ns = now;
    }
    if (due > next_slot_) {
      const uint32_t count = fill_batch(due);
      if (count > 0) send_batch(count, report);
      continue;
    }
    const double slots_ahead = static_cast<double>(next_slot_ + 1 - anchor_slot);
    const int64_t slot_ns = anchor_ns + static_cast<int64_t>(std::ceil(slots_ahead / slots_per_ns));
    sleep_until_ns(std::min({slot_ns, event_ns, end_ns, now + kMaxSleepNs}));
  }

  const int64_t elapsed_ns = monotonic_ns() - start_ns;
  report.elapsed_ms = ns_to_ms(elapsed_ns);
  report.achieved_packets_per_second =
      elapsed_ns > 0
          ? static_cast<double>(report.packets_sent) * 1e9 / static_cast<double>(elapsed_ns)
          : 0;
  for (size_t e = 0; e < errno_counts_.size(); ++e) {
    if (errno_counts_[e] != 0) {
      report.errors_by_errno.emplace_back(static_cast<int>(e), errno_counts_[e]);
    }
  }
  report_long_gaps(report, start_ns + elapsed_ns);
  return report;
}

// After the clock stops, so the list allocates nothing while sending. A silence still open at
// `end_ns` counts up to it: a host the sender never got back to was silent all that time too.
void FleetSimulator::report_long_gaps(Report& report, int64_t end_ns) const {
  const int64_t over_ns = int64_t{config_.long_gap_ms} * 1'000'000;
  for (uint32_t host = 0; host < gaps_.size(); ++host) {
    HostGap gap = gaps_[host];
    const int64_t last_ns = hosts_[host].last_send_ns;
    if (last_ns >= 0 && end_ns - last_ns > gap.longest_ns) gap = HostGap{end_ns - last_ns, end_ns};
    if (gap.longest_ns > over_ns) {
      report.long_gaps.push_back({host, ns_to_ms(gap.longest_ns), ns_to_ms(gap.ended_ns)});
    }
  }
}

void FleetSimulator::apply_event(const TimedEvent& event, int64_t now_ns, Report& report) {
  if (event.is_kill) {
    const KillEvent& kill = config_.kills[event.index];
    KillRecord& record = report.kills[event.index];
    record.at_ms = ns_to_ms(now_ns);
    for (uint32_t i = 0; i < kill.host_count; ++i) {
      HostState& host = hosts_[kill.first_host + i];
      record.last_send_ms.push_back(last_send_ms(host.last_send_ns));
      if (kill.graceful && host.status != HostStatus::kDead) {
        host.status = HostStatus::kLeaving;
        host.leave_event = event.index;
      } else {
        host.status = HostStatus::kDead;
      }
    }
    return;
  }
  const RestartEvent& restart = config_.restarts[event.index];
  report.restart_at_ms[event.index] = ns_to_ms(now_ns);
  for (uint32_t i = 0; i < restart.host_count; ++i) {
    HostState& host = hosts_[restart.first_host + i];
    host.incarnation = next_incarnation(host.incarnation);
    host.seq = config_.first_seq;
    host.status = HostStatus::kAlive;
  }
}

uint32_t FleetSimulator::fill_batch(uint64_t slots_due) {
  uint32_t count = 0;
  while (next_slot_ < slots_due && count < config_.batch) {
    const uint32_t host = order_[order_cursor_];
    if (++order_cursor_ == config_.hosts) order_cursor_ = 0;
    ++next_slot_;
    HostState& state = hosts_[host];
    if (state.status == HostStatus::kDead) continue;
    const bool leave = state.status == HostStatus::kLeaving;
    encode(count, host, state, leave);
    batch_hosts_[count] = host;
    batch_leave_[count] = leave;
    ++state.seq;
    if (leave) state.status = HostStatus::kDead;
    ++count;
  }
  return count;
}

void FleetSimulator::send_batch(uint32_t count, Report& report) {
  if (tcp_) {
    send_batch_tcp(count, report);
    return;
  }
  uint32_t done = 0;
  while (done < count) {
    const int sent = ::sendmmsg(socket_, &messages_[done], count - done, 0);
    if (sent < 0) {
      if (errno == EINTR) continue;
      // The failed datagram is dropped (its host shows a seq gap); the rest are retried.
      ++errno_counts_[std::min<size_t>(static_cast<size_t>(errno), errno_counts_.size() - 1)];
      ++report.send_errors;
      ++done;
      continue;
    }
    const int64_t sent_ns = monotonic_ns();
    for (uint32_t m = done; m < done + static_cast<uint32_t>(sent); ++m) note_sent(m, sent_ns, report);
    done += static_cast<uint32_t>(sent);
  }
}

// Each heartbeat is one frame on its host's connection; a frame that cannot be written is
// dropped and counted by errno, as a datagram would be.
void FleetSimulator::send_batch_tcp(uint32_t count, Report& report) {
  for (uint32_t m = 0; m < count; ++m) {
    const int error = tcp_->send(batch_hosts_[m], packets_.data() + size_t{m} * slot_bytes_,
                                 iovecs_[m].iov_len);
    if (error != 0) {
      ++errno_counts_[std::min<size_t>(static_cast<size_t>(error), errno_counts_.size() - 1)];
      ++report.send_errors;
      continue;
    }
    note_sent(m, monotonic_ns(), report);
  }
}

void FleetSimulator::note_sent(uint32_t message, int64_t sent_ns, Report& report) {
  const uint32_t host = batch_hosts_[message];
  const int64_t previous_ns = hosts_[host].last_send_ns;
  if (!gaps_.empty() && previous_ns >= 0 && sent_ns - previous_ns > gaps_[host].longest_ns) {
    gaps_[host] = HostGap{sent_ns - previous_ns, sent_ns};
  }
  hosts_[host].last_send_ns = sent_ns;
  if (batch_leave_[message]) {
    const uint32_t event = hosts_[host].leave_event;
    const uint32_t index = host - config_.kills[event].first_host;
    report.kills[event].last_send_ms[index] = ns_to_ms(sent_ns);
    ++report.leaves_sent;
  }
  ++report.packets_sent;
}

void FleetSimulator::encode(uint32_t message, uint32_t host, const HostState& state,
                            bool leave) noexcept {
  uint8_t* packet = packets_.data() + size_t{message} * slot_bytes_;
  packet[3] = static_cast<uint8_t>((leave ? kFlagLeave : 0) | (signer_ ? kFlagAuth : 0));
  put_u64(packet + 4, config_.first_host_id + host);
  put_u32(packet + 12, state.incarnation);
  put_u32(packet + 16, state.seq);
  // The length is written per packet only with statuses: without them every packet has the one
  // written by the constructor.
  uint32_t payload_bytes = config_.payload_bytes;
  if (config_.status_host_stride > 0) {
    payload_bytes = stamp_status(packet, host, state);
    put_u16(packet + 24, static_cast<uint16_t>(payload_bytes));
  }
  const uint32_t signed_bytes = kHeaderBytes + payload_bytes;
  if (signer_) signer_->sign(packet, signed_bytes, packet + signed_bytes);
  iovecs_[message].iov_len = signed_bytes + (signer_ ? TagSigner::kTagBytes : 0);
}

// Writes the status stamp of a host that carries one and returns the packet's payload length:
// status_bytes for it, 0 for a plain host. Derived from the seq, so restarts (seq back to
// first_seq) replay the same statuses. Runs on: the run() thread.
uint16_t FleetSimulator::stamp_status(uint8_t* packet, uint32_t host,
                                      const HostState& state) const noexcept {
  if (host % config_.status_host_stride != 0) return 0;
  const uint32_t beat = state.seq - config_.first_seq;  // u32 arithmetic: right across the wrap
  const uint32_t every = config_.status_change_every;
  // Staggered by the host's rank among the status hosts: every phase of the change gets an
  // equal share of them whatever the stride.
  const uint64_t changes = (uint64_t{beat} + host / config_.status_host_stride % every) / every;
  put_u64(packet + kHeaderBytes, config_.first_host_id + host);
  put_u32(packet + kHeaderBytes + 8, static_cast<uint32_t>(changes));
  return config_.status_bytes;
}

uint32_t FleetSimulator::next_incarnation(uint32_t previous) noexcept {
  if (!config_.key.empty()) {
    if (previous != 0) return previous + 1;
    return std::max<uint32_t>(1, static_cast<uint32_t>(::time(nullptr)));
  }
  // 0 means "not known" on the wire, so it is never picked.
  uint32_t next = static_cast<uint32_t>(splitmix64(rng_state_));
  if (next == previous) ++next;
  return next == 0 ? (previous == 1 ? 2 : 1) : next;
}

}  // namespace heartwatch::sim
