// What the UDP socket and the TCP listener share: the address a host string and port bind to,
// and setting an int socket option with an error that names it.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <string>

namespace heartwatch {

struct BindAddress {
  sockaddr_storage storage;
  socklen_t length;
  int family;  // AF_INET or AF_INET6
};

// `host` must be an IPv4 or IPv6 literal; throws SystemError(EINVAL) otherwise.
// Runs on: JS thread (engine construction).
BindAddress bind_address(const std::string& host, uint16_t port);

// Throws SystemError naming `what` when setsockopt fails.
void set_int_option(int fd, int level, int name, int value, const char* what);

}  // namespace heartwatch
