// A worker thread: owns one shard of the detector (no lock on it), drains the rings its
// receivers fill, applies heartbeats in batches, expires hosts with a bounded budget, and
// publishes events to the JS thread through its event ring.
//
// Events are never dropped: when the event ring is full (JS is busy), new events go to an
// overflow queue in order, and expiry pauses until JS catches up. Expiry is what produces events
// in bulk (a mass failure), so while JS is blocked the overflow holds only the few events that
// heartbeats cause (a new host, a recovery, a restart, a leave); the hosts that time out meanwhile
// stay in the detector's index and are reported, in deadline order, once JS drains.
//
// Statuses (detector.h): a producer's status bytes arrive in its ByteRing beside its message
// ring and are released after the batch that applied them. Event status bytes go to JS through
// one ByteRing (this worker the producer, the JS thread the consumer), named by the records;
// drain_events() releases the bytes of the records the previous call handed out, which JS has
// copied by then. Bytes of events in the overflow wait beside them; update events beyond as
// many bytes as the ring holds are dropped and counted (the hosts' statuses are still kept).
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
#include "core/ring/byte_ring.h"
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
  // The status bytes beside input(producer); null with statuses off.
  ByteRing* status_input(uint32_t producer) noexcept {
    return status_inputs_.empty() ? nullptr : status_inputs_[producer].get();
  }
  // The status bytes of published events (event_record.h); null with statuses off.
  std::shared_ptr<ByteRing> event_status_bytes() const noexcept { return event_bytes_; }
  // Where this worker counts statuses (StatusCounter); before start().
  void count_statuses_in(CounterLine& line) noexcept { status_counters_ = &line; }
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

  // Takes published events in order; once the thread has been joined, the overflow too. Frees
  // the status bytes of the events the previous call returned.
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
    taken_statuses_ = std::move(snapshot_statuses_);
    snapshot_statuses_ = {};
    snapshot_busy_.store(false, std::memory_order_release);
    return records;
  }
  // The status bytes of the records take_snapshot() just returned (HostRecord).
  // Runs on: JS thread.
  std::vector<uint8_t> take_snapshot_statuses() noexcept { return std::move(taken_statuses_); }

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
  void apply(const ShardMessage* messages, size_t count, uint64_t now_ms, uint32_t producer);
  StatusView status_view(const ShardMessage& message, ByteRing* bytes);
  // Pushes `record` with its `size` status bytes at `run`; false (nothing pushed) when either
  // ring is full. Runs on: worker thread, or the JS thread once the worker is joined.
  bool push_record(EventRecord record, const uint8_t* run, size_t size) noexcept;
  void queue_overflow(const EventRecord& record, const uint8_t* run, size_t size);
  void run_commands();
  void fill_snapshot(const WorkerCommand& command);
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
  std::deque<std::vector<uint8_t>> overflow_bytes_;  // of the overflow's records with a status, in order
  size_t overflow_status_bytes_ = 0;
  std::vector<std::unique_ptr<ByteRing>> status_inputs_;
  std::shared_ptr<ByteRing> event_bytes_;
  std::vector<StatusView> statuses_;  // beside batch_, filled once a message of it has a status
  CounterLine* status_counters_ = nullptr;
  uint64_t status_lost_ = 0;
  uint64_t events_dropped_ = 0;
  uint32_t release_end_ = 0;  // JS thread: event status bytes to free at the next drain
  bool release_pending_ = false;
  std::deque<CommandResult> pending_results_;
  std::vector<HostEvent> decided_;
  std::vector<Heartbeat> batch_;
  std::vector<ShardMessage> drained_;
  std::vector<HostRecord> snapshot_;
  std::vector<uint8_t> snapshot_statuses_;
  std::vector<uint8_t> taken_statuses_;  // JS thread's
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
