// Counters that every engine thread writes for itself and that JS reads without a lock or a
// native call: one 128-byte line of 16 u64 counters per thread, receivers first, then workers,
// then (with TCP on) the TCP accept thread and the TCP reactors, then a status line per worker
// (StatusCounter, written by that worker).
// Every field has exactly one writer: the line's thread, except kEventsTaken, which the JS
// thread counts as it takes events (pending = published - taken, exact from JS's view).
// The addon exposes the whole block to JS as an ArrayBuffer; lib/engine/native-engine.ts reads
// it with a BigUint64Array at the slots the addon exports (`contract.counters`). Each line has
// one writer, which uses relaxed atomic stores; aligned 64-bit loads on x86-64 never tear.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace heartwatch {

// Each slot is exported by name (native/addon/contract.cc), and lib/ reads slots only from
// there; 13-15 are free.
enum class ReceiverCounter : uint32_t {
  kReceived = 0,         // datagrams taken from the socket
  kMalformed = 1,        // dropped: not a valid v1 heartbeat (identity mode "id")
  kAuthUnsupported = 2,  // dropped: AUTH flag set, and this server has no key
  kKernelDrops = 3,      // dropped by the kernel before we read them (SO_RXQ_OVFL)
  kRingDrops = 4,        // dropped: the worker's ring was full
  kRecvBufferBytes = 5,  // SO_RCVBUF as granted by the kernel
  kBatches = 6,          // recvmmsg calls that returned datagrams
  kReceiveErrors = 7,    // recvmmsg calls that failed other than EAGAIN/EINTR
  kAuthFailed = 8,       // dropped: AUTH tag wrong, truncated, or the datagram was altered
  kUnauthenticated = 9,  // no tag while the server has keys (dropped if auth.required)
  kNotAllowed = 10,      // dropped: source outside the `allow` list, before parsing
  kWatermarkMs = 11,     // monotonic ms: everything that reached the socket before it was read
  kFailedErrno = 12,     // 0 while running; the errno that stopped the thread for good
  kCount = 16,
};

// Each slot is exported by name (native/addon/contract.cc), and lib/ reads slots only from
// there; 14-15 are free.
enum class WorkerCounter : uint32_t {
  kProcessed = 0,      // heartbeats (and leaves) applied to the detector
  kHostsUp = 1,
  kHostsDown = 2,
  kTrackedHosts = 3,
  kRefused = 4,        // new hosts refused by the maxHosts cap
  kEventsTaken = 5,      // events JS has taken from this worker (written by the JS thread)
  kEventsPublished = 6,  // events decided, in the ring or the overflow or taken
  kForgotten = 7,
  kReplayed = 8,         // authenticated datagrams dropped as replays (old seq or incarnation)
  kExpiryWaits = 9,      // expiry passes that held a due deadline back for the receive watermark
  kLossyDeferred = 10,   // deadlines in a lossy window given one more timeout
  kUncertainDowns = 11,  // downs after such a deferral (flagged uncertain)
  kAddressChanges = 12,  // heartbeats from another source than their host's last one
  kLastMovedKey = 13,    // the key of the latest such host (valid once kAddressChanges > 0)
  kCount = 16,
};

inline constexpr uint32_t kCountersPerLine = 16;

// Each slot is exported by name (native/addon/contract.cc); lib/ reads slots only from there.
enum class TcpAcceptorCounter : uint32_t {
  kAccepted = 0,            // connections handed to a reactor
  kRefusedMaxConnections = 1,  // closed at once: tcp.maxConnections reached
  kRefusedPerIp = 2,        // closed at once: tcp.maxConnectionsPerIp reached
  kAcceptPaused = 3,        // accept() found no descriptor left (EMFILE/ENFILE) and paused
  kHandoffWaits = 4,        // accept waited: a reactor's hand-off ring was full (none dropped)
  kOpen = 5,                // connections open, as the accept thread last counted them
  kDescriptorLimit = 6,     // RLIMIT_NOFILE soft limit after raising it to the hard limit
  kAcceptErrors = 7,        // other accept() failures
  kCount = 8,
};

// Each slot is exported by name (native/addon/contract.cc); lib/ reads slots only from there.
enum class TcpReactorCounter : uint32_t {
  kFrames = 0,             // complete frames read
  kProtocolErrors = 1,     // connections closed: a frame broke the v1 rules
  kAuthUnsupported = 2,    // frames dropped: AUTH set, and this server has no key
  kRingDrops = 3,          // frames dropped: the worker's ring was full
  kHandshakeTimeouts = 4,  // connections closed: no complete first frame in time
  kIdleTimeouts = 5,       // connections closed: no frame in tcp.idleTimeoutMs
  kSlowFrames = 6,         // connections closed: a frame took longer than tcp.frameTimeoutMs
  kClosedByPeer = 7,       // connections the peer closed or reset
  kUnauthenticated = 8,    // frames without a tag while the server has keys (dropped if required)
  kNotAllowed = 9,         // frames dropped: the peer is outside the `allow` list
  kAuthFailed = 10,        // frames dropped: AUTH tag wrong, or the frame was altered
  kAuthSlotsFull = 11,     // connections closed: a signed frame spanned reads, no TagSlot was free
  kStatusSlotsFull = 12,   // statuses refused (beats kept): one spanned reads, no status slot was free
  kCount = 13,
};

// One line per worker after all the others (status_carrier.h, detector.h "Statuses"); field
// order is a contract with lib/engine/native-engine.ts (STATUS_FIELDS).
enum class StatusCounter : uint32_t {
  kStatuses = 0,      // hosts with a status
  kBytes = 1,         // bytes of the blocks holding them
  kOversize = 2,      // statuses refused: longer than maxStatusBytes
  kOverBudget = 3,    // statuses refused: statusBudgetBytes reached
  kLost = 4,          // statuses a receiver or reactor could not pass on (byte ring full)
  kEventsDropped = 5, // update events dropped while JS was too far behind
  kCount = 6,
};

struct alignas(64) CounterLine {
  std::atomic<uint64_t> values[kCountersPerLine];
};
static_assert(sizeof(CounterLine) == 8 * kCountersPerLine);

class EngineStats {
 public:
  // `tcp_reactors` > 0 adds the accept thread's line and one line per reactor.
  EngineStats(uint32_t receivers, uint32_t workers, uint32_t tcp_reactors = 0);
  ~EngineStats();
  EngineStats(const EngineStats&) = delete;
  EngineStats& operator=(const EngineStats&) = delete;

  CounterLine& receiver(uint32_t index) noexcept { return lines_[index]; }
  CounterLine& worker(uint32_t index) noexcept { return lines_[receivers_ + index]; }
  CounterLine& tcp_acceptor() noexcept { return lines_[receivers_ + workers_]; }
  CounterLine& tcp_reactor(uint32_t index) noexcept { return lines_[receivers_ + workers_ + 1 + index]; }
  CounterLine& worker_status(uint32_t index) noexcept { return lines_[line_count() + index]; }

  void* data() noexcept { return lines_; }
  size_t byte_length() const noexcept { return sizeof(CounterLine) * (line_count() + workers_); }

  // Runs on: the line's owning thread.
  static void add(CounterLine& line, ReceiverCounter field, uint64_t delta) noexcept {
    bump(line, static_cast<uint32_t>(field), delta);
  }
  static void set(CounterLine& line, ReceiverCounter field, uint64_t value) noexcept {
    line.values[static_cast<uint32_t>(field)].store(value, std::memory_order_relaxed);
  }
  static void add(CounterLine& line, WorkerCounter field, uint64_t delta) noexcept {
    bump(line, static_cast<uint32_t>(field), delta);
  }
  static void set(CounterLine& line, WorkerCounter field, uint64_t value) noexcept {
    line.values[static_cast<uint32_t>(field)].store(value, std::memory_order_relaxed);
  }
  static void add(CounterLine& line, TcpAcceptorCounter field, uint64_t delta) noexcept {
    bump(line, static_cast<uint32_t>(field), delta);
  }
  static void set(CounterLine& line, TcpAcceptorCounter field, uint64_t value) noexcept {
    line.values[static_cast<uint32_t>(field)].store(value, std::memory_order_relaxed);
  }
  static void add(CounterLine& line, TcpReactorCounter field, uint64_t delta) noexcept {
    bump(line, static_cast<uint32_t>(field), delta);
  }
  static void set(CounterLine& line, StatusCounter field, uint64_t value) noexcept {
    line.values[static_cast<uint32_t>(field)].store(value, std::memory_order_relaxed);
  }
  static uint64_t get(const CounterLine& line, uint32_t field) noexcept {
    return line.values[field].load(std::memory_order_relaxed);
  }

 private:
  // Single writer: a load and a store, not a locked read-modify-write.
  static void bump(CounterLine& line, uint32_t field, uint64_t delta) noexcept {
    auto& value = line.values[field];
    value.store(value.load(std::memory_order_relaxed) + delta, std::memory_order_relaxed);
  }

  // The lines before the workers' status lines.
  uint32_t line_count() const noexcept {
    return receivers_ + workers_ + (tcp_reactors_ > 0 ? 1 + tcp_reactors_ : 0);
  }

  uint32_t receivers_;
  uint32_t workers_;
  uint32_t tcp_reactors_;
  CounterLine* lines_;
};

}  // namespace heartwatch
