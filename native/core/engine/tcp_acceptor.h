// The TCP accept thread: accepts connections, enforces tcp.maxConnections and
// tcp.maxConnectionsPerIp, and hands each connection to the least-loaded reactor through that
// reactor's SPSC ring and an eventfd wake-up (no lock). Reactors report closes back through
// their own rings; this thread alone keeps the open counts, so they need no atomics.
//
// A refused connection is closed at once with SO_LINGER 0. When accept() runs out of
// descriptors (EMFILE/ENFILE) the thread stops accepting for kAcceptPauseMs instead of spinning
// on a listening socket that stays readable; the pending connections wait in the backlog. When a
// reactor's hand-off ring is full (a reconnect storm outpacing it), the connection in hand waits
// and accepting pauses for kHandoffPauseMs: the backlog absorbs the burst, nothing is reset.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/engine/engine_config.h"
#include "core/engine/engine_stats.h"
#include "core/engine/tcp_reactor.h"
#include "core/net/tcp_listener.h"

namespace heartwatch {

inline constexpr int kAcceptPauseMs = 100;
inline constexpr int kHandoffPauseMs = 1;

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
  enum class Outcome : uint8_t { kDrained, kOutOfDescriptors, kHandoffFull };
  // Accepts what the backlog holds, until it is empty or something makes accept pause.
  Outcome accept_pending();
  void take_closes();
  // Refused (caps): closes it. Admitted: hands it to the least-loaded reactor, or keeps it in
  // `waiting_` and returns false when that reactor's ring is full.
  bool admit(const AcceptedConnection& connection);
  bool hand(const AcceptedConnection& connection);

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
  std::optional<AcceptedConnection> waiting_;  // admitted, not yet taken by a full reactor ring
};

}  // namespace heartwatch
