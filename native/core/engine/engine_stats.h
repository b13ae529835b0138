// Counters that every engine thread writes for itself and that JS reads without a lock or a
// native call: one 128-byte line of 16 u64 counters per thread, receivers first, then workers.
// Every field has exactly one writer: the line's thread, except kEventsTaken, which the JS
// thread counts as it takes events (pending = published - taken, exact from JS's view).
// The addon exposes the whole block to JS as an ArrayBuffer; lib/engine/native-engine.ts reads
// it with a BigUint64Array using the same field order as below. Each line has one writer, which
// uses relaxed atomic stores; aligned 64-bit loads on x86-64 never tear.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace heartwatch {

// Field order is a contract with lib/engine/native-engine.ts (RECEIVER_FIELDS).
enum class ReceiverCounter : uint32_t {
  kReceived = 0,         // datagrams taken from the socket
  kMalformed = 1,        // dropped: not a valid v1 heartbeat (identity mode "id")
  kAuthUnsupported = 2,  // dropped: AUTH flag set, and this server has no key
  kKernelDrops = 3,      // dropped by the kernel before we read them (SO_RXQ_OVFL)
  kRingDrops = 4,        // dropped: the worker's ring was full
  kRecvBufferBytes = 5,  // SO_RCVBUF as granted by the kernel
  kBatches = 6,          // recvmmsg calls that returned datagrams
  kWatermarkMs = 7,      // monotonic ms: everything that reached the socket before it was read
  kFailedErrno = 8,      // 0 while running; the errno that stopped the thread for good
  kCount = 16,
};

// Field order is a contract with lib/engine/native-engine.ts (WORKER_FIELD).
enum class WorkerCounter : uint32_t {
  kProcessed = 0,      // heartbeats (and leaves) applied to the detector
  kHostsUp = 1,
  kHostsDown = 2,
  kTrackedHosts = 3,
  kRefused = 4,        // new hosts refused by the maxHosts cap
  kEventsTaken = 5,      // events JS has taken from this worker (written by the JS thread)
  kEventsPublished = 6,  // events decided, in the ring or the overflow or taken
  kForgotten = 7,
  kExpiryWaits = 8,     // expiry passes that held a due deadline back for the receive watermark
  kLossyDeferred = 9,   // deadlines in a lossy window given one more timeout
  kUncertainDowns = 10,  // downs after such a deferral (flagged uncertain)
  kCount = 16,
};

inline constexpr uint32_t kCountersPerLine = 16;
struct alignas(64) CounterLine {
  std::atomic<uint64_t> values[kCountersPerLine];
};
static_assert(sizeof(CounterLine) == 8 * kCountersPerLine);

class EngineStats {
 public:
  EngineStats(uint32_t receivers, uint32_t workers);
  ~EngineStats();
  EngineStats(const EngineStats&) = delete;
  EngineStats& operator=(const EngineStats&) = delete;

  CounterLine& receiver(uint32_t index) noexcept { return lines_[index]; }
  CounterLine& worker(uint32_t index) noexcept { return lines_[receivers_ + index]; }

  void* data() noexcept { return lines_; }
  size_t byte_length() const noexcept { return sizeof(CounterLine) * (receivers_ + workers_); }

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
  static uint64_t get(const CounterLine& line, uint32_t field) noexcept {
    return line.values[field].load(std::memory_order_relaxed);
  }

 private:
  // Single writer: a load and a store, not a locked read-modify-write.
  static void bump(CounterLine& line, uint32_t field, uint64_t delta) noexcept {
    auto& value = line.values[field];
    value.store(value.load(std::memory_order_relaxed) + delta, std::memory_order_relaxed);
  }

  uint32_t receivers_;
  uint32_t workers_;
  CounterLine* lines_;
};

}  // namespace heartwatch
