// A worker thread: owns one shard of the detector (no lock on it), drains the rings its
// receivers fill, applies heartbeats in batches, expires hosts with a bounded budget, and
// publishes events to the JS thread through its event ring.
//
// Events are never dropped: when the event ring is full (JS is busy), new events go to an
// overflow queue in order, and expiry pauses until JS catches up. Expiry is what produces events
// in bulk (a mass failure), so while JS is blocked the overflow holds only the few events that
// heartbeats cause (a new host, a recovery, a restart, a leave); the hosts that time out meanwhile
// stay in the detector's index and are reported, in deadline order, once JS drains.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "core/detector/detector.h"
#include "core/engine/engine_config.h"
#include "core/engine/engine_stats.h"
#include "core/engine/event_record.h"
#include "core/engine/receive_watermark.h"
#include "core/engine/shard_message.h"
#include "core/engine/wake_signal.h"
#include "core/ring/spsc_ring.h"

namespace heartwatch {

class ShardWorker {
 public:
  // `publish` is called, from this worker's thread, after it adds events or command results;
  // the engine coalesces those calls into one wake-up of the JS thread.
  // Runs on: JS thread.
  ShardWorker(uint32_t index, const EngineConfig& config, CounterLine& counters, int cpu,
              double epoch_offset_ms, std::function<void()> publish);
  ~ShardWorker();
  ShardWorker(const ShardWorker&) = delete;
  ShardWorker& operator=(const ShardWorker&) = delete;

  // The ring producer r fills (receivers first, then TCP reactors); created before start().
  SpscRing<ShardMessage>& input(uint32_t receiver) noexcept { return *inputs_[receiver]; }
  WakeSignal& wake() noexcept { return wake_; }

  // The watermarks of the receivers, in ring order (receiver r fills input(r)). Expiry never
  // passes the oldest of them; without any, it runs up to the clock.
  // Runs on: JS thread, before start().
  void watch(std::vector<ReceiveWatermark*> receivers);

  void start();
  void request_stop() noexcept;
  void join();

  // One pass of the worker loop: drain inputs, run commands, expire, publish. Returns whether it
  // did any work; the thread sleeps when it did none. Benchmarks call it inline.
  // Runs on: worker thread.
  bool step();

  // Takes published events in order; once the thread has been joined, the overflow too.
  // Runs on: JS thread (the event ring's single consumer).
  size_t drain_events(EventRecord* out, size_t max) noexcept;

  // Queues a command; false when the command ring is full (the caller retries later).
  // Runs on: JS thread (the command ring's single producer).
  bool post(const WorkerCommand& command) noexcept;
  // Runs on: JS thread (the result ring's single consumer).
  size_t drain_results(CommandResult* out, size_t max) noexcept { return results_.pop_batch(out, max); }
  // Hands over the records of the last snapshot command, once its result has been taken, and
  // frees the worker for the next snapshot at once: a consumer that reads slowly, or never,
  // holds only its own copy. Empty when no snapshot is waiting to be taken.
  // Runs on: JS thread.
  std::vector<HostRecord> take_snapshot() noexcept {
    // Busy means the worker has finished writing snapshot_ and will not touch it until cleared.
    if (!snapshot_busy_.load(std::memory_order_acquire)) return {};
    std::vector<HostRecord> records = std::move(snapshot_);
    snapshot_ = {};
    snapshot_busy_.store(false, std::memory_order_release);
    return records;
  }

 private:
  // Runs on: worker thread, for all the private functions below.
  void run();
  bool js_behind() const noexcept;
  size_t drain_inputs(uint64_t now_ms);
  // Takes receiver r's watermark `mark` (loaded before its ring was drained empty) and opens a
  // lossy window if r lost datagrams since the last one.
  void observe(uint32_t receiver, uint64_t mark, uint64_t now_ms);
  ExpiryHorizon horizon(uint64_t now_ms) const;
  // When a deadline is due but beyond the watermark `until_ms`, kicks the receivers whose
  // watermark is older than it, and keeps the worker polling until it passes.
  void await_watermark(uint64_t clock_ms, uint64_t until_ms);
  void apply(const ShardMessage* messages, size_t count, uint64_t now_ms);
  void run_commands();
  void publish_events();
  void flush_overflow();
  void update_counters();
  void sleep_until_work(uint64_t now_ms, bool js_behind);

  uint32_t index_;
  Detector detector_;
  CounterLine& counters_;
  int cpu_;
  double epoch_offset_ms_;
  std::function<void()> publish_;
  uint32_t expire_budget_;
  uint32_t max_idle_sleep_ms_;
  bool spin_;

  std::vector<std::unique_ptr<SpscRing<ShardMessage>>> inputs_;
  SpscRing<EventRecord> events_;
  SpscRing<WorkerCommand> commands_;
  SpscRing<CommandResult> results_;
  std::deque<EventRecord> overflow_;
  std::deque<CommandResult> pending_results_;
  std::vector<HostEvent> decided_;
  std::vector<Heartbeat> batch_;
  std::vector<ShardMessage> drained_;
  std::vector<HostRecord> snapshot_;
  std::atomic<bool> snapshot_busy_{false};
  std::optional<WorkerCommand> deferred_snapshot_;
  uint64_t published_ = 0;
  uint64_t last_input_ms_ = 0;

  std::vector<ReceiveWatermark*> watermarks_;
  std::vector<uint64_t> seen_mark_ms_;  // per receiver: the watermark this worker has caught up with
  std::vector<uint64_t> seen_lost_;     // per receiver: its loss count at that watermark
  uint64_t lossy_from_ms_ = 0;
  uint64_t lossy_until_ms_ = 0;
  uint64_t expired_through_ms_ = 0;  // every deadline up to here has been decided
  bool awaiting_watermark_ = false;  // a due deadline waits for the receivers: poll, do not sleep
  uint64_t watermark_checked_ms_ = 0;
  uint64_t expiry_waits_ = 0;

  WakeSignal wake_;
  std::atomic<bool> stop_{false};
  bool joined_ = false;
  std::thread thread_;
};

}  // namespace heartwatch
