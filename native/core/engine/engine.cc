#include "core/engine/engine.h"

#include <sched.h>

#include <algorithm>
#include <cerrno>
#include <stdexcept>
#include <string>

#include "core/common/monotonic_clock.h"
#include "core/common/system_error.h"

namespace heartwatch {
namespace {

void check_cpus(const std::vector<int>& cpus) {
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0) {
    throw SystemError(errno, "sched_getaffinity", "of this process");
  }
  for (int cpu : cpus) {
    if (cpu < 0 || cpu >= CPU_SETSIZE || !CPU_ISSET(cpu, &allowed)) {
      throw SystemError(EINVAL, "sched_setaffinity",
                        "cpu " + std::to_string(cpu) + " is not one this process may run on");
    }
  }
}

}  // namespace

Engine::Engine(const EngineConfig& config, std::function<void()> wake_js_callback)
    : config_(config),
      wake_js_callback_(std::move(wake_js_callback)),
      stats_(std::make_shared<EngineStats>(config.receivers, config.workers)) {
  if (config.receivers == 0 || config.workers == 0) {
    throw std::invalid_argument("the engine needs at least one receiver and one worker");
  }
  check_cpus(config.cpus);

  // Each shard gets an equal part of the cap, so the total never exceeds it.
  EngineConfig shard_config = config;
  shard_config.detector.max_hosts = std::max<uint32_t>(1, config.detector.max_hosts / config.workers);
  const double epoch_offset = monotonic_to_epoch_offset_ms();
  for (uint32_t w = 0; w < config.workers; ++w) {
    workers_.push_back(std::make_unique<ShardWorker>(w, shard_config, stats_->worker(w),
                                                     cpu_for(config.receivers + w), epoch_offset,
                                                     [this] { wake_js(); }));
  }

  // With port 0 the first socket picks the port and the others share it through SO_REUSEPORT.
  UdpSocketOptions socket_options{config.host, config.port, config.recv_buffer_bytes};
  for (uint32_t r = 0; r < config.receivers; ++r) {
    UdpSocket socket(socket_options);
    socket_options.port = socket.bound_port();
    port_ = socket.bound_port();
    std::vector<SpscRing<ShardMessage>*> rings;
    std::vector<WakeSignal*> wake;
    for (auto& worker : workers_) {
      rings.push_back(&worker->input(r));
      wake.push_back(&worker->wake());
    }
    receivers_.push_back(std::make_unique<UdpReceiver>(r, config, std::move(socket), std::move(rings),
                                                       std::move(wake), stats_->receiver(r), cpu_for(r)));
  }
  std::vector<ReceiveWatermark*> watermarks;
  for (auto& receiver : receivers_) {
    watermarks.push_back(&receiver->watermark());
    receiver->on_failure([this] { wake_js(); });
  }
  for (auto& worker : workers_) worker->watch(watermarks);
}

Engine::~Engine() { stop(); }

void Engine::start() {
  if (started_) return;
  started_ = true;
  for (auto& worker : workers_) worker->start();
  for (auto& receiver : receivers_) receiver->start();
}

void Engine::stop() {
  if (stopped_) return;
  stopped_ = true;
  for (auto& receiver : receivers_) receiver->request_stop();
  for (auto& receiver : receivers_) receiver->join();
  for (auto& worker : workers_) worker->request_stop();
  for (auto& worker : workers_) worker->join();
}

int Engine::cpu_for(uint32_t thread_index) const noexcept {
  if (config_.cpus.empty()) return -1;
  return config_.cpus[thread_index % config_.cpus.size()];
}

void Engine::wake_js() noexcept {
  if (!wake_pending_.exchange(true, std::memory_order_seq_cst)) wake_js_callback_();
}

size_t Engine::drain_events(EventRecord* out, size_t max) noexcept {
  size_t total = 0;
  const uint32_t count = worker_count();
  // Start from a different worker each call so a busy shard cannot starve the others.
  for (uint32_t i = 0; i < count && total < max; ++i) {
    const uint32_t w = (drain_cursor_ + i) % count;
    const size_t taken = workers_[w]->drain_events(out + total, max - total);
    if (taken > 0) EngineStats::add(stats_->worker(w), WorkerCounter::kEventsTaken, taken);
    total += taken;
  }
  drain_cursor_ = (drain_cursor_ + 1) % count;
  return total;
}

size_t Engine::drain_results(CommandResult* out, size_t max) noexcept {
  size_t total = 0;
  for (auto& worker : workers_) total += worker->drain_results(out + total, max - total);
  return total;
}

uint32_t Engine::owner_of(uint64_t key) const noexcept { return shard_of(key, worker_count()); }

}  // namespace heartwatch
