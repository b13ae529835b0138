// One bound UDP socket for a receiver thread: the receive buffer the user asked for, SO_RXQ_OVFL
// so the kernel reports its drops, and, only where several receivers share a port, SO_REUSEPORT
// (see Engine's constructor for how the port stays heartwatch's alone).
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
  bool reuse_port = false;        // SO_REUSEPORT before bind: join the group already on the port
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

  // Lets later sockets of this process join this one's port (SO_REUSEPORT after bind: the bind
  // itself was exclusive, so it failed if anyone held the port).
  // Runs on: JS thread, before any engine thread starts.
  void share_port();
  // Steers every datagram of this socket's reuseport group to one of its first `members`
  // sockets, by a hash of the source address and port, so a socket that joins the group later
  // receives nothing (SO_ATTACH_REUSEPORT_CBPF).
  // Runs on: JS thread, before any engine thread starts.
  void steer_group_to_first(uint32_t members);
  // The socket's inode, as /proc/net/udp lists it.
  uint64_t inode() const noexcept;

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
