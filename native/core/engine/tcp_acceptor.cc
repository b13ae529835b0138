#include "core/engine/tcp_acceptor.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/common/current_thread.h"
#include "core/common/system_error.h"

namespace heartwatch {
namespace {

constexpr size_t kCloseBatch = 1024;
// How often an idle accept thread takes the reactors' closes, so `openConnections` stays current.
constexpr int kOpenRefreshMs = 100;

void reset_and_close(int fd) noexcept {
  const linger hard{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &hard, sizeof(hard));
  close(fd);
}

}  // namespace

TcpAcceptor::TcpAcceptor(const TcpConfig& config, std::unique_ptr<TcpListener> listener,
                         std::vector<TcpReactor*> reactors, CounterLine& counters, int cpu)
    : config_(config),
      listener_(std::move(listener)),
      reactors_(std::move(reactors)),
      counters_(counters),
      cpu_(cpu),
      open_per_reactor_(reactors_.size(), 0),
      closed_keys_(kCloseBatch) {
  stop_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (stop_fd_ < 0) throw SystemError(errno, "eventfd", "TCP accept thread");
}

TcpAcceptor::~TcpAcceptor() {
  request_stop();
  join();
  close(stop_fd_);
}

void TcpAcceptor::start() { thread_ = std::thread([this] { run(); }); }

void TcpAcceptor::request_stop() noexcept {
  stop_.store(true, std::memory_order_relaxed);
  const uint64_t one = 1;
  [[maybe_unused]] const ssize_t written = write(stop_fd_, &one, sizeof(one));
}

void TcpAcceptor::join() {
  if (thread_.joinable()) thread_.join();
}

void TcpAcceptor::run() {
  name_and_pin_current_thread("hw-tcp-acc", cpu_);
  int pause_ms = 0;
  while (!stop_.load(std::memory_order_relaxed)) {
    // While paused, only the stop request is watched: the listening socket stays readable.
    pollfd fds[2] = {{stop_fd_, POLLIN, 0}, {listener_->fd(), POLLIN, 0}};
    const int ready = poll(fds, pause_ms > 0 ? 1 : 2, pause_ms > 0 ? pause_ms : kOpenRefreshMs);
    if (stop_.load(std::memory_order_relaxed)) break;
    take_closes();
    EngineStats::set(counters_, TcpAcceptorCounter::kOpen, open_);
    if (waiting_ && !hand(*waiting_)) {
      pause_ms = kHandoffPauseMs;
      continue;
    }
    waiting_.reset();
    if (pause_ms == 0 && (ready <= 0 || !(fds[1].revents & POLLIN))) continue;
    switch (accept_pending()) {
      case Outcome::kDrained: pause_ms = 0; break;
      case Outcome::kOutOfDescriptors: pause_ms = kAcceptPauseMs; break;
      case Outcome::kHandoffFull: pause_ms = kHandoffPauseMs; break;
    }
  }
  // No more connections queue in a backlog nobody accepts from.
  listener_.reset();
  if (waiting_) close(waiting_->fd);
}

TcpAcceptor::Outcome TcpAcceptor::accept_pending() {
  while (true) {
    AcceptedConnection connection{};
    socklen_t length = sizeof(connection.peer);
    connection.fd = accept4(listener_->fd(), reinterpret_cast<sockaddr*>(&connection.peer), &length,
                            SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (connection.fd < 0) {
      if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED) return Outcome::kDrained;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        EngineStats::add(counters_, TcpAcceptorCounter::kAcceptPaused, 1);
        return Outcome::kOutOfDescriptors;
      }
      EngineStats::add(counters_, TcpAcceptorCounter::kAcceptErrors, 1);
      return Outcome::kDrained;
    }
    connection.ip_key = identity_key(IdentityMode::kIp, 0, reinterpret_cast<const sockaddr*>(&connection.peer));
    take_closes();
    const bool handed = admit(connection);
    EngineStats::set(counters_, TcpAcceptorCounter::kOpen, open_);
    if (!handed && waiting_) return Outcome::kHandoffFull;
  }
}

void TcpAcceptor::take_closes() {
  for (uint32_t r = 0; r < reactors_.size(); ++r) {
    size_t got;
    while ((got = reactors_[r]->take_closed(closed_keys_.data(), closed_keys_.size())) > 0) {
      open_ -= got;
      open_per_reactor_[r] -= got;
      if (config_.max_connections_per_ip == 0) continue;
      for (size_t i = 0; i < got; ++i) {
        const auto it = open_per_ip_.find(closed_keys_[i]);
        if (it != open_per_ip_.end() && --it->second == 0) open_per_ip_.erase(it);
      }
    }
  }
}

bool TcpAcceptor::admit(const AcceptedConnection& connection) {
  if (open_ >= config_.max_connections) {
    EngineStats::add(counters_, TcpAcceptorCounter::kRefusedMaxConnections, 1);
    reset_and_close(connection.fd);
    return false;
  }
  if (config_.max_connections_per_ip > 0) {
    const auto it = open_per_ip_.find(connection.ip_key);
    if (it != open_per_ip_.end() && it->second >= config_.max_connections_per_ip) {
      EngineStats::add(counters_, TcpAcceptorCounter::kRefusedPerIp, 1);
      reset_and_close(connection.fd);
      return false;
    }
  }
  // Counted open from here, even while it waits for room in a reactor's ring.
  ++open_;
  if (config_.max_connections_per_ip > 0) ++open_per_ip_[connection.ip_key];
  EngineStats::add(counters_, TcpAcceptorCounter::kAccepted, 1);
  if (hand(connection)) return true;
  waiting_ = connection;
  return false;
}

bool TcpAcceptor::hand(const AcceptedConnection& connection) {
  const auto least = std::min_element(open_per_reactor_.begin(), open_per_reactor_.end());
  const uint32_t r = static_cast<uint32_t>(least - open_per_reactor_.begin());
  if (!reactors_[r]->hand(connection)) {
    EngineStats::add(counters_, TcpAcceptorCounter::kHandoffWaits, 1);
    return false;
  }
  reactors_[r]->notify();
  ++open_per_reactor_[r];
  return true;
}

}  // namespace heartwatch
