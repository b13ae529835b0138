// One bound UDP socket for a receiver thread: SO_REUSEPORT so several receivers share a port,
// the receive buffer the user asked for, and SO_RXQ_OVFL so the kernel reports its drops.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>

namespace heartwatch {

struct UdpSocketOptions {
  std::string host;               // IP literal; "::" binds dual-stack IPv6 + IPv4
  uint16_t port = 0;              // 0 picks an ephemeral port
  uint32_t recv_buffer_bytes = 0; // 0 keeps the kernel default
  int receive_timeout_ms = 100;   // bounds how long a blocked receive can miss a stop request
};

class UdpSocket {
 public:
  // Creates, configures and binds. Throws SystemError (errno name + syscall) on failure.
  // Runs on: JS thread (during listen), before any engine thread starts.
  explicit UdpSocket(const UdpSocketOptions& options);
  ~UdpSocket();
  UdpSocket(UdpSocket&& other) noexcept;
  UdpSocket& operator=(UdpSocket&&) = delete;
  UdpSocket(const UdpSocket&) = delete;
  UdpSocket& operator=(const UdpSocket&) = delete;

  int fd() const noexcept { return fd_; }
  uint16_t bound_port() const noexcept { return bound_port_; }
  // What the kernel granted for SO_RCVBUF (Linux reports twice the usable payload size).
  uint32_t granted_recv_buffer_bytes() const noexcept { return granted_recv_buffer_; }

  // Wakes a receiver blocked in recvmmsg on this socket; it then sees its stop flag.
  // Runs on: any thread.
  void shutdown_reads() noexcept;
  // Releases the port now; fd() is -1 afterwards. Call only once no thread reads the socket.
  // Runs on: JS thread.
  void close() noexcept;

 private:
  int fd_ = -1;
  uint16_t bound_port_ = 0;
  uint32_t granted_recv_buffer_ = 0;
};

}  // namespace heartwatch
