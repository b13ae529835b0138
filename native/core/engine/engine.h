// The native engine: R receiver threads and W worker threads around a detector sharded by key.
//
//   sockets --recvmmsg--> UdpReceiver r --SpscRing (r, w)--> ShardWorker w --SpscRing--> JS
//   TCP --TcpAcceptor--> TcpReactor k --SpscRing (R + k, w)--^    (only with tcp.enabled)
//
// Construction binds every socket and checks every CPU, so a bad port, address or CPU fails
// with its errno name before any thread exists. start() then launches the threads.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "core/engine/engine_config.h"
#include "core/engine/engine_stats.h"
#include "core/engine/event_record.h"
#include "core/engine/shard_message.h"
#include "core/engine/shard_worker.h"
#include "core/engine/tcp_acceptor.h"
#include "core/engine/tcp_reactor.h"
#include "core/engine/udp_receiver.h"

namespace heartwatch {

class Engine {
 public:
  // `wake_js` asks the JS thread to call drain_events()/drain_results(); the engine calls it from
  // worker threads at most once until the JS thread calls begin_drain().
  // Throws SystemError (bind, socket options, CPU affinity) or std::invalid_argument.
  // Runs on: JS thread.
  Engine(const EngineConfig& config, std::function<void()> wake_js_callback);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Runs on: JS thread.
  void start();
  // Stops and joins every thread and closes every socket; idempotent. Events not yet drained
  // stay readable.
  // Runs on: JS thread.
  void stop();

  uint16_t port() const noexcept { return port_; }
  // The bound TCP port; 0 with TCP off.
  uint16_t tcp_port() const noexcept { return tcp_port_; }
  uint32_t tcp_reactor_count() const noexcept { return static_cast<uint32_t>(reactors_.size()); }
  uint32_t receiver_count() const noexcept { return static_cast<uint32_t>(receivers_.size()); }
  uint32_t worker_count() const noexcept { return static_cast<uint32_t>(workers_.size()); }
  int receiver_cpu(uint32_t index) const noexcept { return cpu_for(index); }
  // How receiver `index` reads its socket (config.receive_backend, resolved).
  ReceiveBackend receive_backend(uint32_t index) const noexcept { return receivers_[index]->backend(); }
  // Why receiver `index` reads with recvmmsg where kAuto would have used io_uring, else empty.
  const std::string& receive_backend_fallback(uint32_t index) const noexcept {
    return receivers_[index]->fallback_reason();
  }
  int worker_cpu(uint32_t index) const noexcept { return cpu_for(receiver_count() + index); }
  // TCP thread `index`: 0 the accept thread, 1 + k reactor k.
  int tcp_cpu(uint32_t index) const noexcept { return cpu_for(receiver_count() + worker_count() + index); }
  EngineStats& stats() noexcept { return *stats_; }
  std::shared_ptr<EngineStats> shared_stats() const noexcept { return stats_; }

  // Re-arms the wake-up before draining, so events published during the drain wake JS again.
  // Runs on: JS thread.
  void begin_drain() noexcept { wake_pending_.store(false, std::memory_order_seq_cst); }
  // Copies up to `max` event records, taking from each worker in turn.
  // Runs on: JS thread.
  size_t drain_events(EventRecord* out, size_t max) noexcept;
  // Runs on: JS thread.
  size_t drain_results(CommandResult* out, size_t max) noexcept;

  // Runs on: JS thread.
  bool post(uint32_t worker, const WorkerCommand& command) noexcept { return workers_[worker]->post(command); }
  uint32_t owner_of(uint64_t key) const noexcept;
  // Replaces every receiver's key ring (hw.setKeys()): datagrams sent after this returns are
  // checked with `keys` only. Throws std::invalid_argument for keys KeyRing refuses.
  // Runs on: JS thread.
  void set_keys(const std::vector<AuthKey>& keys);

  // How many UDP sockets not this engine's are bound to its port, in any process and on any
  // address (/proc/net/udp{,6}). Only a socket that set SO_REUSEPORT can be one while several
  // receivers share the port; with one receiver the kernel lets none bind.
  // Runs on: JS thread.
  uint32_t foreign_sockets() const;
  ShardWorker& worker(uint32_t index) noexcept { return *workers_[index]; }

 private:
  int cpu_for(uint32_t thread_index) const noexcept;
  // Producer `producer`'s status byte ring towards each worker; empty with statuses off.
  std::vector<ByteRing*> status_rings(uint32_t producer);
  // Runs on: JS thread.
  void create_tcp();
  // Runs on: worker thread.
  void wake_js() noexcept;

  EngineConfig config_;
  std::function<void()> wake_js_callback_;
  std::shared_ptr<EngineStats> stats_;
  std::vector<std::unique_ptr<ShardWorker>> workers_;
  std::vector<std::unique_ptr<UdpReceiver>> receivers_;
  std::vector<std::unique_ptr<TcpReactor>> reactors_;
  std::unique_ptr<TcpAcceptor> acceptor_;
  uint16_t port_ = 0;
  std::vector<uint64_t> socket_inodes_;  // of the receivers' sockets, for foreign_sockets()
  uint16_t tcp_port_ = 0;
  bool started_ = false;
  bool stopped_ = false;
  uint32_t drain_cursor_ = 0;
  alignas(64) std::atomic<bool> wake_pending_{false};
};

}  // namespace heartwatch
