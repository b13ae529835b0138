// The TCP accept thread: accepts connections, enforces tcp.maxConnections and
// tcp.maxConnectionsPerIp, and hands each connection to the least-loaded reactor through that
// reactor's SPSC ring and an eventfd wake-up (no lock). Reactors report closes back through
// their own rings; this thread alone keeps the open counts, so they need no atomics.
//
// A refused connection is closed at once with SO_LINGER 0. When accept() runs out of
// descriptors (EMFILE/ENFILE) the thread stops accepting for kAcceptPauseMs instead of spinning
// on a listening socket that stays readable; the pending connections wait in the backlog.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/engine/engine_config.h"
#include "core/engine/engine_stats.h"
#include "core/engine/tcp_reactor.h"
#include "core/net/tcp_listener.h"

namespace heartwatch {

inline constexpr int kAcceptPauseMs = 100;

class TcpAcceptor {
 public:
  // Runs on: JS thread.
  TcpAcceptor(const TcpConfig& config, std::unique_ptr<TcpListener> listener,
              std::vector<TcpReactor*> reactors, CounterLine& counters, int cpu);
  ~TcpAcceptor();
  TcpAcceptor(const TcpAcceptor&) = delete;
  TcpAcceptor& operator=(const TcpAcceptor&) = delete;

  // Runs on: JS thread.
  void start();
  void request_stop() noexcept;
  void join();

 private:
  // Runs on: accept thread, for all the private functions below.
  void run();
  // Accepts what the backlog holds; returns false when out of descriptors.
  bool accept_pending();
  void take_closes();
  bool admit(const AcceptedConnection& connection);

  TcpConfig config_;
  std::unique_ptr<TcpListener> listener_;
  std::vector<TcpReactor*> reactors_;
  CounterLine& counters_;
  int cpu_;
  int stop_fd_ = -1;
  std::atomic<bool> stop_{false};
  std::thread thread_;

  uint64_t open_ = 0;
  std::vector<uint64_t> open_per_reactor_;
  std::unordered_map<uint64_t, uint32_t> open_per_ip_;  // only with a per-IP cap
  std::vector<uint64_t> closed_keys_;
};

}  // namespace heartwatch
