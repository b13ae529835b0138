#include "core/net/udp_socket.h"

#include <arpa/inet.h>
#include <linux/filter.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/common/system_error.h"
#include "core/net/socket_address.h"

namespace heartwatch {
UdpSocket::UdpSocket(const UdpSocketOptions& options) {
  const BindAddress address = bind_address(options.host, options.port);
  const int family = address.family;

  fd_ = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_UDP);
  if (fd_ < 0) throw SystemError(errno, "socket", "UDP");
  try {
    if (options.reuse_port) set_int_option(fd_, SOL_SOCKET, SO_REUSEPORT, 1, "SO_REUSEPORT");
    // Every Linux kernel since 2.6.33 has SO_RXQ_OVFL; emulated ones (qemu-user, gVisor) may
    // answer ENOPROTOOPT. The socket still works there; it just cannot count kernel drops.
    const int overflow = 1;
    if (setsockopt(fd_, SOL_SOCKET, SO_RXQ_OVFL, &overflow, sizeof(overflow)) != 0 &&
        errno != ENOPROTOOPT) {
      throw SystemError(errno, "setsockopt", "SO_RXQ_OVFL");
    }
    if (family == AF_INET6) set_int_option(fd_, IPPROTO_IPV6, IPV6_V6ONLY, 0, "IPV6_V6ONLY");
    if (options.recv_buffer_bytes > 0) {
      // SO_RCVBUFFORCE passes rmem_max when the process may (CAP_NET_ADMIN); otherwise the
      // kernel clamps SO_RCVBUF, and granted_recv_buffer_bytes() reports what was granted.
      const int bytes = static_cast<int>(options.recv_buffer_bytes);
      if (setsockopt(fd_, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof(bytes)) != 0) {
        set_int_option(fd_, SOL_SOCKET, SO_RCVBUF, bytes, "SO_RCVBUF");
      }
    }
    timeval timeout{options.receive_timeout_ms / 1000, (options.receive_timeout_ms % 1000) * 1000};
    if (setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout)) != 0) {
      throw SystemError(errno, "setsockopt", "SO_RCVTIMEO");
    }
    if (bind(fd_, reinterpret_cast<const sockaddr*>(&address.storage), address.length) != 0) {
      throw SystemError(errno, "bind", options.host + " port " + std::to_string(options.port));
    }
    sockaddr_storage bound{};
    socklen_t bound_length = sizeof(bound);
    if (getsockname(fd_, reinterpret_cast<sockaddr*>(&bound), &bound_length) != 0) {
      throw SystemError(errno, "getsockname", "UDP");
    }
    bound_port_ = ntohs(family == AF_INET ? reinterpret_cast<sockaddr_in*>(&bound)->sin_port
                                          : reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
    int granted = 0;
    socklen_t granted_length = sizeof(granted);
    if (getsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &granted, &granted_length) != 0) {
      throw SystemError(errno, "getsockopt", "SO_RCVBUF");
    }
    granted_recv_buffer_ = static_cast<uint32_t>(granted);
  } catch (...) {
    close();
    throw;
  }
}

UdpSocket::UdpSocket(UdpSocket&& other) noexcept
    : fd_(other.fd_), bound_port_(other.bound_port_), granted_recv_buffer_(other.granted_recv_buffer_) {
  other.fd_ = -1;
}

UdpSocket::~UdpSocket() { close(); }

void UdpSocket::close() noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void UdpSocket::share_port() { set_int_option(fd_, SOL_SOCKET, SO_REUSEPORT, 1, "SO_REUSEPORT"); }

// Classic BPF, run by the kernel per datagram; it returns the index of the group member that
// gets it. Members keep their join order (a socket that leaves is replaced by the last one, and
// ours leave only together), so ours are 0..members-1 and the modulo never picks a later one.
// The hash covers the source address's last word and the source port, read through the
// network header (IPv4 without options, or IPv6 without extension headers; other packets still
// hash the same way per flow, just on other bytes), so one sender stays on one receiver.
void UdpSocket::steer_group_to_first(uint32_t members) {
  constexpr uint32_t net = static_cast<uint32_t>(SKF_NET_OFF);
  sock_filter code[] = {
      BPF_STMT(BPF_LD | BPF_B | BPF_ABS, net + 0),     // 0: A = version << 4 | ...
      BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, 4),          // 1: A = IP version
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 6, 4, 0),    // 2: IPv6 -> 7
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, net + 12),    // 3: IPv4 source address
      BPF_STMT(BPF_MISC | BPF_TAX, 0),                 // 4: X = A
      BPF_STMT(BPF_LD | BPF_H | BPF_ABS, net + 20),    // 5: UDP source port
      BPF_STMT(BPF_JMP | BPF_JA, 3),                   // 6: -> 10
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, net + 20),    // 7: IPv6 source address, last word
      BPF_STMT(BPF_MISC | BPF_TAX, 0),                 // 8: X = A
      BPF_STMT(BPF_LD | BPF_H | BPF_ABS, net + 40),    // 9: UDP source port
      BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),          // 10: A ^= X
      BPF_STMT(BPF_ALU | BPF_MUL | BPF_K, 0x9e3779b1), // 11: spread (Fibonacci hashing)
      BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, 16),         // 12
      BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, members),    // 13: one of ours
      BPF_STMT(BPF_RET | BPF_A, 0),                    // 14
  };
  sock_fprog program{static_cast<unsigned short>(sizeof(code) / sizeof(code[0])), code};
  if (setsockopt(fd_, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &program, sizeof(program)) != 0) {
    throw SystemError(errno, "setsockopt", "SO_ATTACH_REUSEPORT_CBPF");
  }
}

uint64_t UdpSocket::inode() const noexcept {
  struct stat info{};
  return fstat(fd_, &info) == 0 ? info.st_ino : 0;
}

void UdpSocket::shutdown_reads() noexcept {
  if (fd_ >= 0) shutdown(fd_, SHUT_RD);
}

}  // namespace heartwatch
