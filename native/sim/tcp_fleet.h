// The fleet simulator's TCP side: one connection per simulated host to a heartwatch server run
// with `tcp`, opened all at once without blocking and waited for with epoll. When the ephemeral
// port range runs out on a loopback target (about 28,000 connections per source address), the
// next connections bind a new source address in 127.0.0.0/8.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace heartwatch::sim {

class TcpFleet {
 public:
  // Connects `count` sockets to `target` (TCP_NODELAY: each heartbeat is one small write that
  // must not wait). Throws SystemError naming the call and errno (EMFILE when the descriptor
  // limit is too low for `count`) and ETIMEDOUT when not all connect within `timeout_ms`.
  // Runs on: the caller's thread.
  TcpFleet(const sockaddr_storage& target, socklen_t target_length, uint32_t count,
           uint32_t timeout_ms);
  ~TcpFleet();
  TcpFleet(const TcpFleet&) = delete;
  TcpFleet& operator=(const TcpFleet&) = delete;

  // Writes one whole frame on connection `index`; returns 0 or the errno that stopped it. A
  // frame the socket takes only in part is finished before returning (a frame cut short would
  // break the stream's framing), waiting at most a second for room.
  // Runs on: the simulator's run() thread.
  int send(uint32_t index, const uint8_t* data, size_t length) noexcept;

  // Source addresses used (1 unless the ephemeral port range ran out).
  uint32_t source_addresses() const noexcept { return sources_; }

 private:
  int open_one(const sockaddr_storage& target, socklen_t target_length);

  std::vector<int> fds_;
  uint32_t sources_ = 1;
};

}  // namespace heartwatch::sim
