#include "sim/tcp_fleet.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <string>

#include "core/common/system_error.h"

namespace heartwatch::sim {

TcpFleet::TcpFleet(const sockaddr_storage& target, socklen_t target_length, uint32_t count,
                   uint32_t timeout_ms) {
  fds_.reserve(count);
  const int epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd < 0) throw SystemError(errno, "epoll_create1", "for the TCP fleet");
  try {
    for (uint32_t i = 0; i < count; ++i) {
      const int fd = open_one(target, target_length);
      fds_.push_back(fd);
      epoll_event event{};
      event.events = EPOLLOUT;
      event.data.u32 = i;
      epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &event);
    }
    // Wait until every connection is writable (established) or failed.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    uint32_t pending = count;
    std::vector<epoll_event> events(1024);
    while (pending > 0) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        throw SystemError(ETIMEDOUT, "connect",
                          std::to_string(pending) + " of " + std::to_string(count) +
                              " TCP connections still pending");
      }
      const int ready = epoll_wait(epoll_fd, events.data(), static_cast<int>(events.size()),
                                   static_cast<int>(left.count()));
      for (int e = 0; e < ready; ++e) {
        const int fd = fds_[events[e].data.u32];
        int error = 0;
        socklen_t length = sizeof(error);
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length);
        if (error != 0) throw SystemError(error, "connect", "a simulated host's TCP connection");
        epoll_ctl(epoll_fd, EPOLL_CTL_DEL, fd, nullptr);
        --pending;
      }
    }
  } catch (...) {
    close(epoll_fd);
    for (int fd : fds_) close(fd);
    fds_.clear();
    throw;
  }
  close(epoll_fd);
}

TcpFleet::~TcpFleet() {
  for (int fd : fds_) close(fd);
}

int TcpFleet::open_one(const sockaddr_storage& target, socklen_t target_length) {
  while (true) {
    const int fd = ::socket(target.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) throw SystemError(errno, "socket", "for a simulated host's TCP connection");
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    const auto& v4 = reinterpret_cast<const sockaddr_in&>(target);
    const bool loopback_v4 =
        target.ss_family == AF_INET && (ntohl(v4.sin_addr.s_addr) >> 24) == 127;
    if (loopback_v4 && sources_ > 1) {
      // 127.0.0.1 is the first source; later ones are 127.0.1.1, 127.0.2.1, ...
      sockaddr_in source{};
      source.sin_family = AF_INET;
      source.sin_addr.s_addr = htonl((127u << 24) | ((sources_ - 1) << 8) | 1u);
      if (bind(fd, reinterpret_cast<const sockaddr*>(&source), sizeof(source)) != 0) {
        const int error = errno;
        close(fd);
        throw SystemError(error, "bind", "a simulated host's source address");
      }
    }
    if (connect(fd, reinterpret_cast<const sockaddr*>(&target), target_length) == 0 ||
        errno == EINPROGRESS) {
      return fd;
    }
    const int error = errno;
    close(fd);
    if (error == EADDRNOTAVAIL && loopback_v4 && sources_ < 65'535) {
      ++sources_;  // this source's ephemeral ports are used up
      continue;
    }
    throw SystemError(error, "connect", "a simulated host's TCP connection");
  }
}

int TcpFleet::send(uint32_t index, const uint8_t* data, size_t length) noexcept {
  const int fd = fds_[index];
  size_t done = 0;
  while (done < length) {
    const ssize_t wrote = ::send(fd, data + done, length - done, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (wrote > 0) {
      done += static_cast<size_t>(wrote);
      continue;
    }
    if (wrote < 0 && errno == EINTR) continue;
    if (wrote < 0 && errno != EAGAIN) return errno;
    pollfd room{fd, POLLOUT, 0};
    if (poll(&room, 1, 1000) <= 0) return EAGAIN;
  }
  return 0;
}

}  // namespace heartwatch::sim
