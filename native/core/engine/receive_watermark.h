// What a receiver tells the workers about its socket: "every datagram that reached my socket
// before `drained_before_ms` has been pushed to your rings", and how many datagrams were lost on
// the way (kernel drops plus ring drops) as of that moment.
//
// Protocol (the receive watermark, docs/detector.md "What a down means"):
// - The receiver reads the clock (T0), then calls recvmmsg without waiting. A short read (fewer
//   than a batch, or EAGAIN) means the socket queue, which is FIFO, was empty at some moment
//   after T0, so everything that arrived before T0 is in the batch just read or an earlier one.
//   After pushing the batch to the rings it stores the loss count, then T0 (release).
// - A worker loads T0 (acquire) before draining a ring; once a drain finds that ring empty it
//   has applied every heartbeat pushed before the store, so it may expire deadlines up to T0.
//   The minimum over all receivers bounds expiry: a receiver that is starved or stopped holds
//   expiry back (downs come late), never lets it run ahead of unread heartbeats (false downs).
// - A TCP reactor publishes the same promise for its connections: T0 read before an epoll_wait
//   that reported fewer events than it can hold (level-triggered, so every connection with
//   unread bytes at T0 is in the list), once each reported connection was read empty (a read
//   shorter than the buffer) and the frames were pushed. Connections the accept thread has not
//   handed over yet are not covered (docs/detector.md "What a down means").
// - A receiver waiting on an empty socket parks in poll(); a worker that has a deadline due but
//   an older watermark kicks it through an eventfd, so an idle socket costs no lateness.
//
// Runs on: written by its receiver thread, read (and kicked) by every worker thread.
#pragma once

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>

#include "core/common/system_error.h"

namespace heartwatch {

class ReceiveWatermark {
 public:
  ReceiveWatermark() : kick_fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
    if (kick_fd_ < 0) throw SystemError(errno, "eventfd", "receive watermark");
  }
  ~ReceiveWatermark() { close(kick_fd_); }
  ReceiveWatermark(const ReceiveWatermark&) = delete;
  ReceiveWatermark& operator=(const ReceiveWatermark&) = delete;

  // Runs on: receiver thread, after pushing everything read before `drained_before_ms`.
  void publish(uint64_t drained_before_ms, uint64_t lost) noexcept {
    lost_.store(lost, std::memory_order_relaxed);
    drained_before_ms_.store(drained_before_ms, std::memory_order_release);
  }

  // Runs on: worker thread. Load this before draining the receiver's ring.
  uint64_t drained_before_ms() const noexcept { return drained_before_ms_.load(std::memory_order_acquire); }
  // Runs on: worker thread, after drained_before_ms(): at least the count published with it.
  uint64_t lost() const noexcept { return lost_.load(std::memory_order_relaxed); }

  // Sleeps until `socket_fd` is readable, a worker kicks, or `timeout_ms` passes.
  // Runs on: receiver thread.
  void park(int socket_fd, int timeout_ms) noexcept {
    parked_.store(true, std::memory_order_seq_cst);
    pollfd fds[2] = {{socket_fd, POLLIN, 0}, {kick_fd_, POLLIN, 0}};
    poll(fds, 2, timeout_ms);
    parked_.store(false, std::memory_order_relaxed);
    if ((fds[1].revents & POLLIN) != 0) {
      uint64_t kicks;
      [[maybe_unused]] const ssize_t read_bytes = read(kick_fd_, &kicks, sizeof(kicks));
    }
  }

  // For a producer that waits in its own epoll (a TCP reactor) rather than in park(): it adds
  // kick_fd() to its epoll set, marks the wait with set_parked(), and drains the fd when it fires.
  // Runs on: the producer's thread.
  int kick_fd() const noexcept { return kick_fd_; }
  void set_parked(bool parked) noexcept { parked_.store(parked, std::memory_order_seq_cst); }

  // Asks a parked receiver for a fresh watermark. A kick that races with parking is lost; the
  // worker asks again on its next pass (it polls every millisecond while it waits).
  // Runs on: worker thread, or the JS thread when stopping.
  void kick() noexcept {
    if (!parked_.load(std::memory_order_seq_cst)) return;
    const uint64_t one = 1;
    [[maybe_unused]] const ssize_t written = write(kick_fd_, &one, sizeof(one));
  }

 private:
  alignas(64) std::atomic<uint64_t> drained_before_ms_{0};
  std::atomic<uint64_t> lost_{0};
  std::atomic<bool> parked_{false};
  int kick_fd_;
};

}  // namespace heartwatch
