// A receiver whose socket read fails (other than "nothing to read") counts the error in
// ReceiverCounter::kReceiveErrors and goes on receiving.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <utility>

#include "core/engine/udp_receiver.h"
#include "receive_backend_env.h"

namespace heartwatch {
namespace {

sockaddr_in loopback(uint16_t port) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return address;
}

// A loopback port nobody listens on: bound, read back, released.
uint16_t closed_port() {
  const int fd = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in address = loopback(0);
  socklen_t length = sizeof(address);
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  EXPECT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length), 0);
  close(fd);
  return ntohs(address.sin_port);
}

void send_to(int fd, uint16_t port) {
  const sockaddr_in to = loopback(port);
  ASSERT_EQ(sendto(fd, "x", 1, 0, reinterpret_cast<const sockaddr*>(&to), sizeof(to)), 1);
}

TEST(ReceiveError, IsCountedAndTheReceiverGoesOn) {
  EngineConfig config;
  config.receive_backend = test_receive_backend();
  config.batch_size = 8;
  UdpSocket udp(UdpSocketOptions{"127.0.0.1", 0, 0});
  const int fd = udp.fd();
  const uint16_t port = udp.bound_port();
  // With IP_RECVERR the kernel reports an ICMP error (port unreachable, for the datagram this
  // socket sends below) to the next receive on the socket as ECONNREFUSED.
  const int on = 1;
  ASSERT_EQ(setsockopt(fd, SOL_IP, IP_RECVERR, &on, sizeof(on)), 0);
  SpscRing<ShardMessage> ring(1024);
  WakeSignal wake;
  EngineStats stats(1, 1);
  UdpReceiver receiver(0, config, std::move(udp), {&ring}, {&wake}, stats.receiver(0), -1);
  const auto errors = [&] {
    return EngineStats::get(stats.receiver(0), static_cast<uint32_t>(ReceiverCounter::kReceiveErrors));
  };

  send_to(fd, closed_port());
  pollfd pending{fd, 0, 0};
  ASSERT_EQ(poll(&pending, 1, 2000), 1);
  ASSERT_NE(pending.revents & POLLERR, 0);
  EXPECT_EQ(receiver.receive_batch(), 0u);
  EXPECT_EQ(errors(), 1u);

  // The error is consumed: the next datagram is received as usual (junk, so counted malformed).
  const int sender = socket(AF_INET, SOCK_DGRAM, 0);
  send_to(sender, port);
  close(sender);
  EXPECT_EQ(receiver.receive_batch(), 1u);
  EXPECT_EQ(errors(), 1u);
  EXPECT_EQ(EngineStats::get(stats.receiver(0), static_cast<uint32_t>(ReceiverCounter::kMalformed)), 1u);
}

}  // namespace
}  // namespace heartwatch
