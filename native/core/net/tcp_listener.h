// The TCP listening socket and the knobs every accepted connection inherits from it (Linux
// copies SO_KEEPALIVE, TCP_KEEPIDLE/INTVL/CNT and SO_RCVBUF to accepted sockets), so no
// per-connection system call sets them.
#pragma once

#include <cstdint>
#include <string>

namespace heartwatch {

struct TcpSocketOptions {
  std::string host;                // IP literal; "::" binds dual-stack IPv6 + IPv4
  uint16_t port = 0;               // 0 picks an ephemeral port
  uint32_t backlog = 4096;         // listen(2) backlog (the kernel clamps it to somaxconn)
  uint32_t defer_accept_s = 0;     // TCP_DEFER_ACCEPT: wake accept only once data arrived; 0 off
  uint32_t recv_buffer_bytes = 0;  // SO_RCVBUF for accepted connections; 0 keeps autotuning
  uint32_t keepalive_idle_s = 0;   // TCP_KEEPIDLE; 0 turns SO_KEEPALIVE off
  uint32_t keepalive_interval_s = 10;
  uint32_t keepalive_count = 3;
};

class TcpListener {
 public:
  // Creates, configures, binds and listens (non-blocking). Throws SystemError.
  // Runs on: JS thread (during listen), before any engine thread starts.
  explicit TcpListener(const TcpSocketOptions& options);
  ~TcpListener();
  TcpListener(const TcpListener&) = delete;
  TcpListener& operator=(const TcpListener&) = delete;

  int fd() const noexcept { return fd_; }
  uint16_t bound_port() const noexcept { return bound_port_; }

 private:
  int fd_ = -1;
  uint16_t bound_port_ = 0;
};

// Raises the soft RLIMIT_NOFILE to the hard limit (each connection is a descriptor) and returns
// the soft limit now in force.
// Runs on: JS thread.
uint64_t raise_descriptor_limit() noexcept;

}  // namespace heartwatch
