#include "core/net/socket_address.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cerrno>

#include "core/common/system_error.h"

namespace heartwatch {

BindAddress bind_address(const std::string& host, uint16_t port) {
  BindAddress address{};
  auto* v4 = reinterpret_cast<sockaddr_in*>(&address.storage);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&address.storage);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    address.family = AF_INET;
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    address.length = sizeof(sockaddr_in);
  } else if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    address.family = AF_INET6;
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    address.length = sizeof(sockaddr_in6);
  } else {
    throw SystemError(EINVAL, "inet_pton", "host \"" + host + "\" is not an IP address");
  }
  return address;
}

void set_int_option(int fd, int level, int name, int value, const char* what) {
  if (setsockopt(fd, level, name, &value, sizeof(value)) != 0) {
    throw SystemError(errno, "setsockopt", what);
  }
}

}  // namespace heartwatch
