#include "core/engine/shard_worker.h"

#include <time.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "core/common/cpu_relax.h"
#include "core/common/current_thread.h"
#include "core/common/monotonic_clock.h"

namespace heartwatch {
namespace {

constexpr size_t kDrainBatch = 256;
constexpr size_t kCommandRingCapacity = 1024;
// Status bytes per (producer, worker) ring: room for a ring's worth of small statuses, and for
// several of the largest.
constexpr size_t kStatusInputBytes = 1u << 20;
// Status bytes of events towards JS per event ring slot (room for a 64-byte status and its
// previous one in every slot), and at least this much; as much again may wait in the overflow.
constexpr size_t kEventStatusBytesPerSlot = 128;
constexpr size_t kMinEventStatusBytes = 1u << 20;
// How long after the last heartbeat a worker keeps polling instead of sleeping until woken.
constexpr uint64_t kBusyWindowMs = 100;

// The worker's clock is whole milliseconds rounded down; the guard makes up for the rounding.
DetectorConfig with_clock_guard(DetectorConfig config) {
  config.clock_guard_ms = kWorkerClockGuardMs;
  return config;
}

}  // namespace

ShardWorker::ShardWorker(uint32_t index, const EngineConfig& config, CounterLine& counters, int cpu,
                         double epoch_offset_ms, std::function<void()> publish)
    : index_(index),
      detector_(with_clock_guard(config.detector)),
      counters_(counters),
      cpu_(cpu),
      epoch_offset_ms_(epoch_offset_ms),
      publish_(std::move(publish)),
      // Expiry runs only when its whole budget of events fits in the ring, so the budget must
      // leave room to spare.
      expire_budget_(std::max<uint32_t>(1, std::min<uint32_t>(config.expire_budget,
                                                               config.event_ring_capacity / 2))),
      max_idle_sleep_ms_(config.max_idle_sleep_ms),
      spin_(config.spin),
      events_(config.event_ring_capacity),
      commands_(kCommandRingCapacity),
      results_(kCommandRingCapacity) {
  // One ring per producer: the UDP receivers, then the TCP reactors.
  const uint32_t producers = config.receivers + (config.tcp.enabled ? config.tcp.reactors : 0);
  inputs_.reserve(producers);
  for (uint32_t r = 0; r < producers; ++r) {
    inputs_.push_back(std::make_unique<SpscRing<ShardMessage>>(config.ring_capacity));
  }
  if (config.detector.max_status_bytes > 0) {
    const size_t largest = size_t{config.detector.max_status_bytes} * 2;
    for (uint32_t r = 0; r < producers; ++r) {
      status_inputs_.push_back(std::make_unique<ByteRing>(std::max(kStatusInputBytes, 4 * largest)));
    }
    event_bytes_ = std::make_shared<ByteRing>(std::max(
        {kMinEventStatusBytes, 4 * largest, size_t{config.event_ring_capacity} * kEventStatusBytesPerSlot}));
  }
  decided_.reserve(config.expire_budget + 2 * kDrainBatch);
  batch_.reserve(kDrainBatch);
  drained_.resize(kDrainBatch);
}

ShardWorker::~ShardWorker() {
  request_stop();
  join();
}

void ShardWorker::watch(std::vector<ReceiveWatermark*> receivers) {
  watermarks_ = std::move(receivers);
  seen_mark_ms_.assign(watermarks_.size(), 0);
  seen_lost_.assign(watermarks_.size(), 0);
}

void ShardWorker::start() { thread_ = std::thread([this] { run(); }); }

void ShardWorker::request_stop() noexcept {
  stop_.store(true, std::memory_order_relaxed);
  wake_.notify();
}

void ShardWorker::join() {
  if (thread_.joinable()) thread_.join();
  joined_ = true;
}

size_t ShardWorker::drain_events(EventRecord* out, size_t max) noexcept {
  if (release_pending_) event_bytes_->release(release_end_);
  release_pending_ = false;
  size_t count = events_.pop_batch(out, max);
  // After join() this thread owns the overflow: hand over what the ring could not hold, its
  // status bytes through the byte ring (whose producer this thread now is).
  while (joined_ && count < max && !overflow_.empty()) {
    EventRecord record = overflow_.front();
    const size_t size = size_t{record.status_size} + record.previous_size;
    if (size > 0) {
      uint8_t* run = event_bytes_->reserve(size);
      if (run == nullptr) break;  // the next drain frees what this one hands out
      std::memcpy(run, overflow_bytes_.front().data(), size);
      record.status_end = static_cast<uint32_t>(event_bytes_->end());
      overflow_status_bytes_ -= size;
      overflow_bytes_.pop_front();
    }
    out[count++] = record;
    overflow_.pop_front();
  }
  for (size_t i = 0; i < count; ++i) {
    if (out[i].status_size == 0) continue;
    release_end_ = out[i].status_end;
    release_pending_ = true;
  }
  return count;
}

bool ShardWorker::post(const WorkerCommand& command) noexcept {
  if (!commands_.try_push(command)) return false;
  wake_.notify();
  return true;
}

void ShardWorker::run() {
  name_and_pin_current_thread("hw-wk-" + std::to_string(index_), cpu_);
  while (!stop_.load(std::memory_order_relaxed)) {
    if (!step()) sleep_until_work(monotonic_ms_floor(), js_behind());
  }
}

bool ShardWorker::js_behind() const noexcept {
  return !overflow_.empty() || events_.capacity() - events_.size_approx() < expire_budget_;
}

bool ShardWorker::step() {
  // One clock, whole milliseconds rounded down, for stamps and expiry alike; the detector's
  // one-millisecond clock guard makes up for the rounding (never early in real time).
  const uint64_t now = monotonic_ms_floor();
  const size_t applied = drain_inputs(now);
  if (applied > 0) last_input_ms_ = now;
  run_commands();
  flush_overflow();
  size_t expired = 0;
  // Expiry pauses while JS is behind: its events would only pile up in the overflow.
  if (!js_behind()) {
    const uint64_t clock = monotonic_ms_floor();
    const ExpiryHorizon limit = horizon(clock);
    expired = detector_.expire(clock, expire_budget_, decided_, limit);
    if (expired < expire_budget_) expired_through_ms_ = std::min(clock, limit.until_ms);
    await_watermark(clock, limit.until_ms);
  }
  publish_events();
  update_counters();
  return applied > 0 || expired > 0;
}

size_t ShardWorker::drain_inputs(uint64_t now_ms) {
  size_t total = 0;
  const bool watched = !watermarks_.empty();
  for (uint32_t r = 0; r < inputs_.size(); ++r) {
    auto& ring = inputs_[r];
    // Loaded before the drain: a drain that then finds the ring empty has applied everything
    // the receiver pushed before publishing this mark.
    const uint64_t mark = watched ? watermarks_[r]->drained_before_ms() : 0;
    // At most one ring's worth per step, so a receiver that keeps up with us cannot hold off
    // expiry, commands and publishing.
    size_t taken = 0;
    size_t got;
    do {
      got = ring->pop_batch(drained_.data(), kDrainBatch);
      apply(drained_.data(), got, now_ms, r);
      taken += got;
    } while (got == kDrainBatch && taken < ring->capacity());
    total += taken;
    if (watched && got < kDrainBatch) observe(r, mark, now_ms);
  }
  return total;
}

StatusView ShardWorker::status_view(const ShardMessage& message, ByteRing* bytes) {
  // Lost on the way (its producer's byte ring was full): the beat counts without it, and the
  // host keeps the status it had. Its size alone would read as bytes the detector must hash.
  if ((message.status_flags & kStatusLost) != 0) {
    ++status_lost_;
    return StatusView{};
  }
  StatusView view{nullptr, message.status_size};
  // Without kStatusCarried only the size came (longer than the limit: the detector counts it).
  if ((message.status_flags & kStatusCarried) != 0) view.data = bytes->run(message.status_end, message.status_size);
  return view;
}

void ShardWorker::observe(uint32_t receiver, uint64_t mark, uint64_t now_ms) {
  const uint64_t lost = watermarks_[receiver]->lost();
  if (lost != seen_lost_[receiver]) {
    seen_lost_[receiver] = lost;
    // Datagrams missing from the last count were lost after the watermark seen with that count,
    // and before now (read after the count): a deadline in between may have lost its heartbeat.
    const uint64_t from = seen_mark_ms_[receiver];
    const bool open = lossy_until_ms_ > expired_through_ms_;
    lossy_from_ms_ = open ? std::min(lossy_from_ms_, from) : from;
    lossy_until_ms_ = std::max({lossy_until_ms_, now_ms, monotonic_ms_floor() + 1});
  }
  if (mark > seen_mark_ms_[receiver]) seen_mark_ms_[receiver] = mark;
}

ExpiryHorizon ShardWorker::horizon(uint64_t now_ms) const {
  ExpiryHorizon limit;
  limit.until_ms = now_ms;
  for (const uint64_t mark : seen_mark_ms_) limit.until_ms = std::min(limit.until_ms, mark);
  limit.lossy_from_ms = lossy_from_ms_;
  limit.lossy_until_ms = lossy_until_ms_;
  return limit;
}

void ShardWorker::await_watermark(uint64_t clock_ms, uint64_t until_ms) {
  if (until_ms >= clock_ms) {
    awaiting_watermark_ = false;
    return;
  }
  // At most once per millisecond (the watermark's resolution), so a busy pass pays nothing.
  if (clock_ms == watermark_checked_ms_) return;
  watermark_checked_ms_ = clock_ms;
  const uint64_t due = detector_.next_deadline_ms();
  awaiting_watermark_ = due <= clock_ms && due > until_ms;
  if (!awaiting_watermark_) return;
  ++expiry_waits_;
  for (ReceiveWatermark* receiver : watermarks_) {
    if (receiver->drained_before_ms() < due) receiver->kick();
  }
}

// Heartbeats go to the detector in batches (it prefetches the batch's slots); a leave or a close
// flushes the batch before it so one host's messages keep their order. Statuses ride in
// statuses_, which stays empty while no message of the batch has one; their bytes are freed
// after the batch.
void ShardWorker::apply(const ShardMessage* messages, size_t count, uint64_t now_ms, uint32_t producer) {
  ByteRing* bytes = status_input(producer);
  const uint32_t* release = nullptr;
  auto flush = [&] {
    if (!statuses_.empty()) statuses_.resize(batch_.size());
    detector_.heartbeat_batch(batch_.data(), batch_.size(), now_ms, decided_,
                              statuses_.empty() ? nullptr : statuses_.data());
    batch_.clear();
    statuses_.clear();
  };
  batch_.clear();
  statuses_.clear();
  size_t closes = 0;
  for (size_t i = 0; i < count; ++i) {
    const ShardMessage& message = messages[i];
    const bool beat = message.kind == MessageKind::kBeat;
    if (message.status_size != 0 || message.status_flags != 0) {
      if ((message.status_flags & kStatusCarried) != 0) release = &message.status_end;
      if (beat) {
        statuses_.resize(batch_.size() + 1);
        statuses_.back() = status_view(message, bytes);
      }
    }
    if (beat) {
      batch_.push_back(message.heartbeat);
      continue;
    }
    flush();
    if (message.kind == MessageKind::kLeave) {
      detector_.leave(message.heartbeat, now_ms, decided_);
    } else {
      ++closes;
      detector_.disconnect(message.heartbeat.key, message.heartbeat.address, now_ms, decided_);
    }
  }
  flush();
  if (release != nullptr) bytes->release(*release);
  // Closes are not heartbeats.
  EngineStats::add(counters_, WorkerCounter::kProcessed, count - closes);
  if (decided_.size() >= kDrainBatch) publish_events();
}

void ShardWorker::run_commands() {
  WorkerCommand command;
  while (true) {
    // The JS thread reads snapshot_ until it releases it; a second snapshot waits for that
    // without holding up heartbeats.
    if (deferred_snapshot_.has_value()) {
      if (snapshot_busy_.load(std::memory_order_acquire)) break;
      command = *deferred_snapshot_;
      deferred_snapshot_.reset();
    } else if (commands_.pop_batch(&command, 1) != 1) {
      break;
    }
    CommandResult result{command.request_id, 0, index_};
    if (command.kind == CommandKind::kRemove) {
      result.value = detector_.remove(command.key) ? 1 : 0;
    } else if (snapshot_busy_.load(std::memory_order_acquire)) {
      deferred_snapshot_ = command;
      continue;
    } else {
      fill_snapshot(command);
      result.value = snapshot_.size();
      snapshot_busy_.store(true, std::memory_order_release);
    }
    pending_results_.push_back(result);
  }
  bool delivered = false;
  while (!pending_results_.empty() && results_.try_push(pending_results_.front())) {
    pending_results_.pop_front();
    delivered = true;
  }
  if (delivered) publish_();
}

void ShardWorker::fill_snapshot(const WorkerCommand& command) {
  snapshot_.clear();
  snapshot_statuses_.clear();
  auto add = [this, &command](const HostSnapshot& host) {
    HostSnapshotRecord record{};
    record.key = host.key;
    record.last_seen_epoch_ms = static_cast<double>(host.last_seen_ms) + epoch_offset_ms_;
    record.incarnation = host.incarnation;
    record.timeout_ms = host.timeout_ms;
    record.state = static_cast<uint8_t>(host.up ? HostSnapshotState::kUp : HostSnapshotState::kDown);
    record.family = host.address.family;
    record.port = host.address.port;
    std::memcpy(record.ip, host.address.ip, sizeof(record.ip));
    if (command.with_statuses) {
      record.status_size = static_cast<uint32_t>(host.status.size());
      snapshot_statuses_.insert(snapshot_statuses_.end(), host.status.begin(), host.status.end());
    }
    snapshot_.push_back(record);
  };
  if (command.kind == CommandKind::kSnapshot) {
    detector_.for_each_host(add);
  } else if (const std::optional<HostSnapshot> host = detector_.host(command.key)) {
    add(*host);
  }
}

void ShardWorker::publish_events() {
  if (decided_.empty()) return;
  // Counters first: JS must never see an event before the state that produced it, nor take
  // more events than it sees published.
  published_ += decided_.size();
  update_counters();
  size_t pushed = 0;
  const uint8_t* bytes = detector_.event_bytes().data();
  for (const HostEvent& event : decided_) {
    EventRecord record = EventRecord::from(event, epoch_offset_ms_);
    record.worker = static_cast<uint8_t>(index_);
    const size_t size = size_t{event.status_size} + event.previous_size;
    const uint8_t* run = size > 0 ? bytes + event.status_offset : nullptr;
    // Once anything waits in the overflow, everything after it must too, to keep the order.
    if (overflow_.empty() && push_record(record, run, size)) {
      ++pushed;
    } else {
      queue_overflow(record, run, size);
    }
  }
  decided_.clear();
  detector_.clear_event_bytes();
  if (pushed > 0) publish_();
}

bool ShardWorker::push_record(EventRecord record, const uint8_t* run, size_t size) noexcept {
  if (size == 0) return events_.try_push(record);
  const uint64_t before = event_bytes_->end();
  uint8_t* into = event_bytes_->reserve(size);
  if (into == nullptr) return false;
  std::memcpy(into, run, size);
  record.status_end = static_cast<uint32_t>(event_bytes_->end());
  if (events_.try_push(record)) return true;
  event_bytes_->rewind(before);
  return false;
}

void ShardWorker::queue_overflow(const EventRecord& record, const uint8_t* run, size_t size) {
  if (size > 0) {
    if (record.type == static_cast<uint8_t>(HostEventType::kUpdate) &&
        overflow_status_bytes_ + size > event_bytes_->capacity()) {
      // Counted as published above; it never will be.
      --published_;
      ++events_dropped_;
      return;
    }
    overflow_bytes_.emplace_back(run, run + size);
    overflow_status_bytes_ += size;
  }
  overflow_.push_back(record);
}

void ShardWorker::flush_overflow() {
  size_t pushed = 0;
  while (!overflow_.empty()) {
    const EventRecord& record = overflow_.front();
    const size_t size = size_t{record.status_size} + record.previous_size;
    if (!push_record(record, size > 0 ? overflow_bytes_.front().data() : nullptr, size)) break;
    if (size > 0) {
      overflow_status_bytes_ -= size;
      overflow_bytes_.pop_front();
    }
    overflow_.pop_front();
    ++pushed;
  }
  if (pushed > 0) publish_();
}

void ShardWorker::update_counters() {
  const DetectorStats stats = detector_.stats();
  EngineStats::set(counters_, WorkerCounter::kHostsUp, stats.up);
  EngineStats::set(counters_, WorkerCounter::kHostsDown, stats.down);
  EngineStats::set(counters_, WorkerCounter::kTrackedHosts, stats.tracked);
  EngineStats::set(counters_, WorkerCounter::kRefused, stats.refused);
  EngineStats::set(counters_, WorkerCounter::kReplayed, stats.replayed);
  EngineStats::set(counters_, WorkerCounter::kForgotten, stats.forgotten);
  EngineStats::set(counters_, WorkerCounter::kEventsPublished, published_);
  EngineStats::set(counters_, WorkerCounter::kExpiryWaits, expiry_waits_);
  EngineStats::set(counters_, WorkerCounter::kLossyDeferred, stats.deferred);
  EngineStats::set(counters_, WorkerCounter::kUncertainDowns, stats.uncertain);
  // A sample for warnings: read without a lock, it may belong to a change after the count read.
  EngineStats::set(counters_, WorkerCounter::kLastMovedKey, stats.last_moved_key);
  EngineStats::set(counters_, WorkerCounter::kAddressChanges, stats.address_changes);
  if (status_counters_ == nullptr) return;
  EngineStats::set(*status_counters_, StatusCounter::kStatuses, stats.statuses);
  EngineStats::set(*status_counters_, StatusCounter::kBytes, stats.status_bytes);
  EngineStats::set(*status_counters_, StatusCounter::kOversize, stats.status_oversize);
  EngineStats::set(*status_counters_, StatusCounter::kOverBudget, stats.status_over_budget);
  EngineStats::set(*status_counters_, StatusCounter::kLost, status_lost_);
  EngineStats::set(*status_counters_, StatusCounter::kEventsDropped, events_dropped_);
}

void ShardWorker::sleep_until_work(uint64_t now_ms, bool js_behind) {
  if (spin_) {
    cpu_relax();
    return;
  }
  uint64_t sleep_ms = max_idle_sleep_ms_;
  if (js_behind || !pending_results_.empty() || deferred_snapshot_.has_value() || awaiting_watermark_) {
    // JS taking events or results, or a receiver publishing a watermark, does not wake this
    // thread: poll at a short period.
    sleep_ms = 1;
  } else {
    const uint64_t next = detector_.next_deadline_ms();
    if (next != UINT64_MAX) sleep_ms = std::min<uint64_t>(sleep_ms, next > now_ms ? next - now_ms : 0);
    if (sleep_ms == 0) return;
  }
  if (now_ms - last_input_ms_ < kBusyWindowMs) {
    // Heartbeats are flowing: nap for at most a millisecond without announcing it, so the
    // receivers never spend a syscall waking this thread. The nap delays a heartbeat's stamp by
    // under a millisecond, which can only make a deadline later, never earlier.
    const timespec nap{0, static_cast<long>(std::min<uint64_t>(sleep_ms, 1) * 1'000'000u)};
    clock_nanosleep(CLOCK_MONOTONIC, 0, &nap, nullptr);
    return;
  }
  const uint32_t epoch = wake_.prepare_wait();
  bool has_input = commands_.size_approx() > 0 || stop_.load(std::memory_order_relaxed);
  for (auto& ring : inputs_) has_input = has_input || ring->size_approx() > 0;
  if (has_input) {
    wake_.cancel_wait();
    return;
  }
  wake_.wait(epoch, sleep_ms * 1'000'000u);
}

}  // namespace heartwatch
