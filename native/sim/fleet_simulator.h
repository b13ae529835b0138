// A fleet of simulated hosts sending wire-protocol v1 heartbeats over UDP (or, with
// Config::tcp, one TCP connection per host), for tests, benchmarks and the demo.
//
// It is a separate protocol peer: it encodes packets from the spec (docs/protocol.md) itself and
// shares no code or structs with the server's parser, so if either side drifts from the spec the
// end-to-end tests that feed one into the other fail.
//
// Schedule: slot k of the run is due at start + k / rate and belongs to host order[k mod hosts],
// where `order` is a fixed shuffle of the host indices. So every host beats once per
// hosts / rate seconds, hosts are spread evenly over that period, and arrivals look random to the
// server. A killed host keeps its slots but sends nothing in them, so killing hosts lowers the
// packet rate and never changes the live hosts' period. Pacing is a token bucket on
// CLOCK_MONOTONIC: all slots that are due go out in sendmmsg batches; a sender that falls more
// than max(batch, 20 ms of slots) behind forgets the excess time rather than bursting, but never
// skips a slot, so each host's seq still goes up by exactly one per packet.
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace heartwatch::sim {

// Datagrams per sendmmsg call at most: UIO_MAXIOV, the most the kernel takes per call. The addon
// exports it (`contract.simulator.maxBatch`); lib/simulator.ts checks `batch` against it.
inline constexpr uint32_t kMaxSimulatorBatch = 1024;

// A status starts with its stamp: the host id (u64) and the status's change count (u32), both
// big-endian, so each change gives new bytes with nothing stored per host. The addon exports it
// (`contract.simulator.minStatusBytes`); lib/simulator.ts checks `statusBytes` against it.
inline constexpr uint32_t kMinSimulatorStatusBytes = 12;

class TagSigner;
class TcpFleet;

class FleetSimulator {
 public:
  // Hosts [first_host, first_host + host_count) stop at `at_ms` after the start. With `graceful`
  // each sends one last packet with the LEAVE flag in its next slot; otherwise it just goes quiet.
  struct KillEvent {
    uint32_t first_host = 0;
    uint32_t host_count = 0;
    uint32_t at_ms = 0;
    bool graceful = false;
  };

  // Hosts [first_host, first_host + host_count) restart at `at_ms`: a new random incarnation,
  // seq back to `first_seq`. A killed host that restarts sends again.
  struct RestartEvent {
    uint32_t first_host = 0;
    uint32_t host_count = 0;
    uint32_t at_ms = 0;
  };

  struct Config {
    std::string address = "127.0.0.1";  // IPv4 or IPv6 literal of the server.
    uint16_t port = 0;
    uint32_t hosts = 1;
    uint64_t first_host_id = 1;  // Host i sends host_id first_host_id + i; never 0.
    double packets_per_second = 1000;
    uint32_t duration_ms = 1000;  // 0: until stop().
    uint32_t interval_ms = 0;     // Announced in every packet; 0 = unknown.
    uint16_t payload_bytes = 0;
    uint32_t batch = 64;     // Datagrams per sendmmsg call, 1 to 1024.
    int cpu = -1;            // Pin run() to this CPU; -1: leave affinity alone.
    uint32_t first_seq = 0;  // Seq of each host's first packet (set near 2^32 to test wrap).
    uint64_t seed = 1;       // Shuffle order and incarnations; the same seed gives the same run.
    // Sign every packet with this key (AUTH + tag). Incarnations then only go up, as a server
    // that checks tags requires: the start time in Unix seconds, +1 per restart.
    std::vector<uint8_t> key;
    std::vector<KillEvent> kills;
    std::vector<RestartEvent> restarts;
    // Over TCP: one connection per host to a server run with `tcp` (see sim/tcp_fleet.h), each
    // heartbeat one frame on its host's connection; the constructor opens them all.
    bool tcp = false;
    // Report each host whose longest time between two of its sends, or from its last send to the
    // end of the run, was over this (Report::long_gaps): a host the sender itself left silent that
    // long, late by its own clock, not the server's. 0: not tracked (16 bytes per host when on).
    uint32_t long_gap_ms = 0;
    // Hosts whose index is a multiple of this carry a status of status_bytes instead of the
    // payload (payload_bytes must then be 0, so the other hosts send 28-byte beats). A host's
    // status changes every status_change_every-th of its beats, staggered so the changes spread
    // over the fleet: its beat b (0 first, counted from its seq) carries change count
    // (b + rank mod status_change_every) / status_change_every, rank = index / status_host_stride.
    // 0: no statuses.
    uint32_t status_host_stride = 0;
    uint16_t status_bytes = 0;         // kMinSimulatorStatusBytes or more with statuses.
    uint32_t status_change_every = 1;  // 1 or more.
  };

  struct KillRecord {
    // CLOCK_MONOTONIC ms when the kill took effect; NaN if the run ended first.
    double at_ms;
    // Per killed host (index i is host first_host + i): CLOCK_MONOTONIC ms of the send of its last
    // packet (the LEAVE one when graceful); NaN if it sent none. Empty if the kill never happened.
    std::vector<double> last_send_ms;
  };

  // A host's longest time between two consecutive sends, when over Config::long_gap_ms.
  struct LongGap {
    uint32_t host;     // Index, 0 to hosts - 1.
    double gap_ms;     // From one send to the next (a killed host's silence up to its restart too).
    double ended_ms;   // CLOCK_MONOTONIC ms of the send that ended it, or of the run's end when
                       // the host never sent again.
  };

  struct Report {
    uint64_t packets_sent = 0;
    uint64_t leaves_sent = 0;
    uint64_t send_errors = 0;
    std::vector<std::pair<int, uint64_t>> errors_by_errno;  // (errno, count), ascending errno.
    double start_ms = 0;                                    // CLOCK_MONOTONIC at the start.
    double elapsed_ms = 0;
    double achieved_packets_per_second = 0;
    bool stopped_early = false;           // stop() ended the run before duration_ms.
    std::vector<KillRecord> kills;        // One per Config::kills entry, same order.
    std::vector<double> restart_at_ms;    // CLOCK_MONOTONIC ms per restart; NaN if never applied.
    std::vector<LongGap> long_gaps;       // Ascending host; empty unless long_gap_ms is set.
  };

  // Validates the config, resolves the address and opens a UDP socket connected to it; every
  // buffer the run needs is allocated here. Throws std::invalid_argument for a bad config or
  // address and heartwatch::SystemError (errno name and call) when a system call fails.
  // Runs on: any thread.
  explicit FleetSimulator(Config config);
  ~FleetSimulator();

  FleetSimulator(const FleetSimulator&) = delete;
  FleetSimulator& operator=(const FleetSimulator&) = delete;

  // Sends until duration_ms has passed or stop() is called, then reports. Pins the calling thread
  // for the run when Config::cpu is set, and restores its affinity after. Call once.
  // Throws heartwatch::SystemError if the pinning fails, std::logic_error on a second call.
  // Runs on: the caller's thread (a dedicated sender thread).
  Report run();

  // Makes run() return within about 10 ms. May be called before run(), which then returns at once.
  // Runs on: any thread.
  void stop() noexcept;

 private:
  enum class HostStatus : uint8_t { kAlive, kLeaving, kDead };

  struct HostState {
    int64_t last_send_ns;  // CLOCK_MONOTONIC; -1 before the first packet.
    uint32_t seq;
    uint32_t incarnation;
    uint32_t leave_event;  // Index into kills of the graceful kill being carried out.
    HostStatus status;
  };

  struct HostGap {
    int64_t longest_ns;  // 0 before the host's second send.
    int64_t ended_ns;
  };

  struct TimedEvent {
    uint32_t at_ms;
    bool is_kill;
    uint32_t index;
  };

  // All run on: the run() thread.
  void apply_event(const TimedEvent& event, int64_t now_ns, Report& report);
  uint32_t fill_batch(uint64_t slots_due);
  void send_batch(uint32_t count, Report& report);
  void send_batch_tcp(uint32_t count, Report& report);
  void note_sent(uint32_t message, int64_t sent_ns, Report& report);
  void report_long_gaps(Report& report, int64_t end_ns) const;
  void encode(uint32_t message, uint32_t host, const HostState& state, bool leave) noexcept;
  uint16_t stamp_status(uint8_t* packet, uint32_t host, const HostState& state) const noexcept;
  uint32_t next_incarnation(uint32_t previous) noexcept;

  Config config_;
  int socket_ = -1;
  std::unique_ptr<TcpFleet> tcp_;
  std::atomic<bool> stop_requested_{false};
  bool ran_ = false;
  uint64_t rng_state_;

  std::vector<uint32_t> order_;
  std::vector<HostState> hosts_;
  std::vector<HostGap> gaps_;  // One per host when Config::long_gap_ms is set, else empty.
  std::vector<TimedEvent> events_;  // Kills and restarts by time; a kill and restart at one ms
                                    // apply in config order, kills first.
  uint32_t order_cursor_ = 0;
  uint64_t next_slot_ = 0;

  // One packet buffer, iovec and mmsghdr per batch entry, reused for every batch.
  std::vector<uint8_t> packets_;
  std::vector<iovec> iovecs_;
  std::vector<mmsghdr> messages_;
  std::vector<uint32_t> batch_hosts_;
  std::vector<uint8_t> batch_leave_;
  std::vector<uint64_t> errno_counts_;
  uint32_t slot_bytes_;  // each batch entry's buffer: room for the longer of payload and status
  std::unique_ptr<TagSigner> signer_;  // null: unsigned packets
};

}  // namespace heartwatch::sim
