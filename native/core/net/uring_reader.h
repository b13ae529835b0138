// The io_uring receive backend's socket side: one multishot recvmsg on a UDP socket, the kernel
// picking a buffer for each datagram from a provided-buffer ring, so a whole burst lands with no
// syscall per batch beyond the wait. Datagrams are read in place (header, source address and
// control message in the buffer the kernel chose) and the buffers go back to the ring after.
//
// Where the kernel or a seccomp policy refuses io_uring, open() says why and the receiver keeps
// recvmmsg. The gate is the setup flags this backend uses (SINGLE_ISSUER and DEFER_TASKRUN,
// Linux 6.1): a kernel that takes them also has multishot recvmsg (6.0) and buffer rings (5.19).
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <memory>

struct io_uring;
struct io_uring_buf_ring;
struct io_uring_cqe;

namespace heartwatch {

// One datagram as the kernel left it in a provided buffer.
struct ReceivedDatagram {
  const uint8_t* data;  // the datagram's first bytes: all of it, or as many as the buffer holds
  uint32_t length;      // the datagram's true length, also when longer than the buffer's room
  // The source, read in place: only the bytes its family uses are there.
  const sockaddr_storage* source;
};

// Each provided buffer: 16-byte io_uring_recvmsg_out, the source (kUringNameRoom), the
// SO_RXQ_OVFL control message, then the payload, with room for as many bytes as recvmmsg's slots
// hold (kReceiveSlotBytes, checked where both are known): a longer datagram arrives with its true
// length and its header, as it does there.
inline constexpr uint32_t kUringBufferBytes = 2048 + 128;
// Room for the source: a sockaddr_in6 (28 bytes) rounded up to 8, so that the control message
// after it is aligned as a cmsghdr must be.
inline constexpr uint32_t kUringNameRoom = 32;
inline constexpr uint32_t kUringPayloadRoom = kUringBufferBytes - 16 - kUringNameRoom - 24;
// Buffers a receiver provides (open()'s `buffers`): the kernel can fill this many before the
// receiver returns any, and a burst this long needs no re-arm.
inline constexpr uint32_t kUringBufferCount = 1024;

class UringReader {
 public:
  // Sets up the ring (disabled until attach()) and registers `buffers` buffers (a power of two,
  // at most 32768) for `fd`, for waits of up to `batch` datagrams. Returns null and sets `error`
  // (an errno) and `call` (the syscall) where the kernel or a policy refuses.
  // Runs on: JS thread (during listen).
  static std::unique_ptr<UringReader> open(int fd, uint32_t batch, uint32_t buffers, int& error,
                                           const char*& call) noexcept;
  ~UringReader();
  UringReader(const UringReader&) = delete;
  UringReader& operator=(const UringReader&) = delete;

  // Makes the calling thread the ring's only submitter and arms the multishot recvmsg. Returns 0
  // or an errno.
  // Runs on: receiver thread, once, before wait().
  int attach() noexcept;
  // Waits up to `timeout_ms` for datagrams, then takes up to `batch` of them into `out`; their
  // buffers stay the receiver's until release(). Sets `kernel_drops` from the newest SO_RXQ_OVFL
  // seen. Returns the count (0: nothing came, or the socket was shut down), or -errno for a
  // failure that ended the multishot (it is armed again on the next call).
  // Runs on: receiver thread.
  int wait(ReceivedDatagram* out, int timeout_ms, uint32_t& kernel_drops) noexcept;
  // Hands the last wait()'s buffers back to the kernel.
  // Runs on: receiver thread.
  void release() noexcept;
  // Ends the multishot and waits (up to a second) for its last completion: until then the ring
  // holds the socket open, and its port bound, whatever close() does to the descriptor.
  // Runs on: receiver thread, when it stops.
  void cancel() noexcept;

 private:
  UringReader(int fd, uint32_t batch, uint32_t buffers) noexcept;
  int setup() noexcept;
  int arm() noexcept;
  // Consumes the completions at hand (up to batch_): their datagrams into `out`, the returned
  // count; a failure that ended the multishot into `error`.
  uint32_t take(ReceivedDatagram* out, uint32_t& kernel_drops, int& error) noexcept;

  int fd_;
  uint32_t batch_;
  uint32_t buffer_count_;
  std::unique_ptr<io_uring> ring_;
  io_uring_buf_ring* buffer_ring_ = nullptr;
  size_t buffer_ring_bytes_ = 0;
  std::unique_ptr<uint8_t[]> buffers_;
  msghdr shape_{};           // what the kernel lays out in each buffer: name and control sizes
  std::unique_ptr<io_uring_cqe*[]> cqes_;  // batch_ completions peeked at once
  uint32_t taken_cqes_ = 0;  // completions consumed by the last wait()
  std::unique_ptr<uint16_t[]> taken_ids_;  // buffers of the last wait(): one per completion
  uint32_t taken_buffers_ = 0;
  bool armed_ = false;
  bool shut_ = false;        // the socket was shut down: the multishot ended for good
};

}  // namespace heartwatch
