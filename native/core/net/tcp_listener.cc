#include "core/net/tcp_listener.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "core/common/system_error.h"
#include "core/net/socket_address.h"

namespace heartwatch {
namespace {

void apply_options(int fd, int family, const TcpSocketOptions& options) {
  set_int_option(fd, SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR");
  if (family == AF_INET6) set_int_option(fd, IPPROTO_IPV6, IPV6_V6ONLY, 0, "IPV6_V6ONLY");
  if (options.defer_accept_s > 0) {
    set_int_option(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, options.defer_accept_s, "TCP_DEFER_ACCEPT");
  }
  // Before listen(), so the window scale offered in the handshake fits the buffer.
  if (options.recv_buffer_bytes > 0) {
    set_int_option(fd, SOL_SOCKET, SO_RCVBUF, options.recv_buffer_bytes, "SO_RCVBUF");
  }
  if (options.keepalive_idle_s > 0) {
    set_int_option(fd, SOL_SOCKET, SO_KEEPALIVE, 1, "SO_KEEPALIVE");
    set_int_option(fd, IPPROTO_TCP, TCP_KEEPIDLE, options.keepalive_idle_s, "TCP_KEEPIDLE");
    set_int_option(fd, IPPROTO_TCP, TCP_KEEPINTVL, options.keepalive_interval_s, "TCP_KEEPINTVL");
    set_int_option(fd, IPPROTO_TCP, TCP_KEEPCNT, options.keepalive_count, "TCP_KEEPCNT");
  }
}

}  // namespace

TcpListener::TcpListener(const TcpSocketOptions& options) {
  const BindAddress address = bind_address(options.host, options.port);
  const int family = address.family;
  fd_ = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
  if (fd_ < 0) throw SystemError(errno, "socket", "TCP");
  try {
    apply_options(fd_, family, options);
    if (bind(fd_, reinterpret_cast<const sockaddr*>(&address.storage), address.length) != 0) {
      throw SystemError(errno, "bind", "TCP " + options.host + " port " + std::to_string(options.port));
    }
    if (listen(fd_, static_cast<int>(options.backlog)) != 0) throw SystemError(errno, "listen", "TCP");
    sockaddr_storage bound{};
    socklen_t bound_length = sizeof(bound);
    if (getsockname(fd_, reinterpret_cast<sockaddr*>(&bound), &bound_length) != 0) {
      throw SystemError(errno, "getsockname", "TCP");
    }
    bound_port_ = ntohs(family == AF_INET ? reinterpret_cast<sockaddr_in*>(&bound)->sin_port
                                          : reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
  } catch (...) {
    close(fd_);
    fd_ = -1;
    throw;
  }
}

TcpListener::~TcpListener() {
  if (fd_ >= 0) close(fd_);
}

uint64_t raise_descriptor_limit() noexcept {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
  if (limit.rlim_cur < limit.rlim_max) {
    rlimit raised{limit.rlim_max, limit.rlim_max};
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  }
  return static_cast<uint64_t>(limit.rlim_cur);
}

}  // namespace heartwatch
