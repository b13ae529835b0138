#include "core/engine/engine.h"

#include <sched.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <sstream>
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

// The inodes of every UDP socket (any process) bound to local `port`, from /proc/net/udp and
// /proc/net/udp6: "sl local_address rem_address st queues timer retrnsmt uid timeout inode ...",
// local_address being hex "address:port".
std::vector<uint64_t> udp_sockets_on_port(uint16_t port) {
  std::vector<uint64_t> inodes;
  for (const char* path : {"/proc/net/udp", "/proc/net/udp6"}) {
    std::ifstream table(path);
    std::string line;
    std::getline(table, line);  // the column titles
    while (std::getline(table, line)) {
      std::istringstream fields(line);
      std::string slot, local, field;
      uint64_t inode = 0;
      fields >> slot >> local;
      for (int skip = 0; skip < 7; ++skip) fields >> field;
      fields >> inode;
      const size_t colon = local.rfind(':');
      if (!fields || colon == std::string::npos) continue;
      if (std::strtoul(local.c_str() + colon + 1, nullptr, 16) == port) inodes.push_back(inode);
    }
  }
  return inodes;
}

}  // namespace

Engine::Engine(const EngineConfig& config, std::function<void()> wake_js_callback)
    : config_(config),
      wake_js_callback_(std::move(wake_js_callback)),
      stats_(std::make_shared<EngineStats>(config.receivers, config.workers,
                                           config.tcp.enabled ? config.tcp.reactors : 0)) {
  if (config.receivers == 0 || config.workers == 0) {
    throw std::invalid_argument("the engine needs at least one receiver and one worker");
  }
  check_cpus(config.cpus);

  // Each shard gets an equal part of the cap, so the total never exceeds it.
  EngineConfig shard_config = config;
  shard_config.detector.max_hosts = std::max<uint32_t>(1, config.detector.max_hosts / config.workers);
  shard_config.detector.status_budget_bytes = config.detector.status_budget_bytes / config.workers;
  const double epoch_offset = monotonic_to_epoch_offset_ms();
  for (uint32_t w = 0; w < config.workers; ++w) {
    workers_.push_back(std::make_unique<ShardWorker>(w, shard_config, stats_->worker(w),
                                                     cpu_for(config.receivers + w), epoch_offset,
                                                     [this] { wake_js(); }));
    workers_.back()->count_statuses_in(stats_->worker_status(w));
  }

  // The port is heartwatch's alone (README "Ports"). The first socket binds without
  // SO_REUSEPORT, so its bind fails with EADDRINUSE while any socket of any user holds an
  // overlapping address on the port (with port 0 it picks the port). With one receiver that
  // stays so: the kernel refuses every later bind. Several receivers need SO_REUSEPORT to share
  // the port: the first socket turns it on after its bind, the others join its group, and the
  // last one steers the group's traffic to the group's first `receivers` members, ours. A later
  // socket of this user that sets SO_REUSEPORT can still join the group (it gets nothing) or
  // bind a narrower address on the port (it takes that address's traffic); foreign_sockets()
  // finds both, for the JS side to report.
  UdpSocketOptions socket_options{config.host, config.port, config.recv_buffer_bytes};
  for (uint32_t r = 0; r < config.receivers; ++r) {
    UdpSocket socket(socket_options);
    if (config.receivers > 1 && r == 0) socket.share_port();
    if (config.receivers > 1 && r == config.receivers - 1) socket.steer_group_to_first(config.receivers);
    socket_options.port = socket.bound_port();
    socket_options.reuse_port = true;
    port_ = socket.bound_port();
    socket_inodes_.push_back(socket.inode());
    std::vector<SpscRing<ShardMessage>*> rings;
    std::vector<WakeSignal*> wake;
    for (auto& worker : workers_) {
      rings.push_back(&worker->input(r));
      wake.push_back(&worker->wake());
    }
    receivers_.push_back(std::make_unique<UdpReceiver>(r, config, std::move(socket), std::move(rings),
                                                       std::move(wake), stats_->receiver(r), cpu_for(r)));
    receivers_.back()->carry_statuses(status_rings(r), config.detector.max_status_bytes);
  }
  for (auto& receiver : receivers_) receiver->on_failure([this] { wake_js(); });
  if (config.tcp.enabled) create_tcp();
  // In ring order: receiver r fills input(r), reactor k fills input(receivers + k).
  std::vector<ReceiveWatermark*> watermarks;
  for (auto& receiver : receivers_) watermarks.push_back(&receiver->watermark());
  for (auto& reactor : reactors_) watermarks.push_back(&reactor->watermark());
  for (auto& worker : workers_) worker->watch(watermarks);
}

void Engine::create_tcp() {
  const TcpConfig& tcp = config_.tcp;
  if (tcp.reactors == 0) throw std::invalid_argument("the TCP transport needs at least one reactor");
  // Each connection is a descriptor: take all the process may have, and report the figure.
  EngineStats::set(stats_->tcp_acceptor(), TcpAcceptorCounter::kDescriptorLimit, raise_descriptor_limit());
  auto listener = std::make_unique<TcpListener>(tcp.socket);
  tcp_port_ = listener->bound_port();
  const uint32_t first_thread = config_.receivers + config_.workers;
  std::vector<TcpReactor*> reactors;
  for (uint32_t k = 0; k < tcp.reactors; ++k) {
    std::vector<SpscRing<ShardMessage>*> rings;
    std::vector<WakeSignal*> wake;
    for (auto& worker : workers_) {
      rings.push_back(&worker->input(config_.receivers + k));
      wake.push_back(&worker->wake());
    }
    reactors_.push_back(std::make_unique<TcpReactor>(k, config_, std::move(rings), std::move(wake),
                                                     stats_->tcp_reactor(k), cpu_for(first_thread + 1 + k)));
    reactors_.back()->carry_statuses(status_rings(config_.receivers + k), config_.detector.max_status_bytes);
    reactors.push_back(reactors_.back().get());
  }
  acceptor_ = std::make_unique<TcpAcceptor>(tcp, std::move(listener), std::move(reactors),
                                            stats_->tcp_acceptor(), cpu_for(first_thread));
}

Engine::~Engine() { stop(); }

void Engine::start() {
  if (started_) return;
  started_ = true;
  for (auto& worker : workers_) worker->start();
  for (auto& receiver : receivers_) receiver->start();
  for (auto& reactor : reactors_) reactor->start();
  if (acceptor_) acceptor_->start();
}

void Engine::stop() {
  if (stopped_) return;
  stopped_ = true;
  if (acceptor_) {
    acceptor_->request_stop();
    acceptor_->join();
  }
  for (auto& reactor : reactors_) reactor->request_stop();
  for (auto& reactor : reactors_) reactor->join();
  for (auto& receiver : receivers_) receiver->request_stop();
  for (auto& receiver : receivers_) receiver->join();
  // The port is free once stop() returns, not when the engine object is collected.
  for (auto& receiver : receivers_) receiver->close_socket();
  for (auto& worker : workers_) worker->request_stop();
  for (auto& worker : workers_) worker->join();
}

std::vector<ByteRing*> Engine::status_rings(uint32_t producer) {
  std::vector<ByteRing*> rings;
  for (auto& worker : workers_) {
    if (worker->status_input(producer) != nullptr) rings.push_back(worker->status_input(producer));
  }
  return rings;
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

void Engine::set_keys(const std::vector<AuthKey>& keys) {
  for (auto& receiver : receivers_) receiver->set_keys(std::make_unique<KeyRing>(keys));
  for (auto& reactor : reactors_) reactor->set_keyed(!keys.empty());
}

uint32_t Engine::foreign_sockets() const {
  uint32_t count = 0;
  for (uint64_t inode : udp_sockets_on_port(port_)) {
    if (std::find(socket_inodes_.begin(), socket_inodes_.end(), inode) == socket_inodes_.end()) ++count;
  }
  return count;
}

uint32_t Engine::owner_of(uint64_t key) const noexcept { return shard_of(key, worker_count()); }

}  // namespace heartwatch
