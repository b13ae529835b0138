// The io_uring receive backend's socket side: one multishot recvmsg on a UDP socket, the kernel
// picking a buffer for each datagram from a provided-buffer ring, so a burst lands with one
// io_uring_enter and no per-datagram syscall. Datagrams are read in place (layout header, source
// address, control message and payload in the buffer the kernel chose) and the buffers go back
// to the ring, all at once, after the batch.
//
// Spoken to through the kernel's own interface (<linux/io_uring.h> and three syscalls), not
// liburing: every prebuilt target (glibc 2.28 and musl, x64 and arm64, built by zig) and every
// source build then has the backend, with no per-target library to build or install, and this
// reader uses four operations of it. Where the kernel or a seccomp policy refuses io_uring,
// open() says which call failed and why, and the receiver keeps recvmmsg. The gate is the setup
// flags used here (SINGLE_ISSUER and DEFER_TASKRUN, Linux 6.1): a kernel that takes them also has
// multishot recvmsg (6.0) and buffer rings (5.19).
//
// Thread ownership: open() on the JS thread; everything else on the receiver thread that called
// attach(), the ring's only submitter (IORING_SETUP_SINGLE_ISSUER).
#pragma once

#include <sys/socket.h>
#if __has_include(<linux/io_uring.h>)
#include <linux/io_uring.h>
#endif

#include <cstddef>
#include <cstdint>
#include <memory>

// The kernel headers this is built against name what the reader uses (Linux 6.1's do); older
// ones build a reader whose open() refuses, as an old kernel would.
#if defined(IORING_SETUP_DEFER_TASKRUN)
#define HW_IO_URING_HEADERS 1
#else
#define HW_IO_URING_HEADERS 0
#endif

struct io_uring_sqe;
struct io_uring_cqe;
struct io_uring_buf;
struct io_uring_params;
struct __kernel_timespec;

namespace heartwatch {

// One datagram as the kernel left it in a provided buffer.
struct ReceivedDatagram {
  const uint8_t* data;  // the datagram's first bytes: all of it, or kUringPayloadRoom of it
  uint32_t length;      // the datagram's true length, also when longer than the buffer's room
  bool truncated;       // longer than kUringPayloadRoom (never for UDP over IPv4 or IPv6)
  const sockaddr_storage* source;  // read in place: only the bytes its family uses are there
};

// Room for the source: a sockaddr_in6 (28 bytes) rounded up to 8, so that the control message
// after it is aligned as a cmsghdr must be.
inline constexpr uint32_t kUringNameRoom = 32;
// Payload room per buffer: the largest UDP payload, as recvmmsg's slot and spill region hold
// (kReceiveSlotBytes + kReceiveSpillBytes, checked where both are known), so both backends see
// every datagram whole.
inline constexpr uint32_t kUringPayloadRoom = 65536;
// Each buffer: the 16-byte io_uring_recvmsg_out, the source, the SO_RXQ_OVFL control message,
// then the payload. The kernel writes only the bytes a datagram needs, so a small heartbeat touches
// one page of its buffer: resident memory is about kUringBufferCount pages, and at most the whole
// region (~16 MiB per receiver) under a flood of maximum-size datagrams.
inline constexpr uint32_t kUringLayoutBytes = 16;
inline constexpr uint32_t kUringBufferBytes =
    kUringLayoutBytes + kUringNameRoom + CMSG_SPACE(sizeof(uint32_t)) + kUringPayloadRoom;
// Buffers a receiver provides: the kernel can fill this many in one io_uring_enter before the
// receiver returns any; more datagrams wait in the socket (the multishot ends with ENOBUFS and
// the reader arms it again).
inline constexpr uint32_t kUringBufferCount = 256;

class UringReader {
 public:
  // Sets up the ring (disabled until attach()) and registers `buffers` buffers (a power of two,
  // at most 32768) for `fd`. Returns null and sets `error` (an errno) and `call` (the syscall)
  // where the kernel or a policy refuses.
  // Runs on: JS thread (during listen).
  static std::unique_ptr<UringReader> open(int fd, uint32_t buffers, int& error, const char*& call) noexcept;
  ~UringReader();
  UringReader(const UringReader&) = delete;
  UringReader& operator=(const UringReader&) = delete;

  // Makes the calling thread the ring's only submitter. Returns 0 or an errno.
  // Runs on: receiver thread, once, before collect().
  int attach() noexcept;
  // Arms the multishot recvmsg where it is not armed (first call, or after it ended), and runs
  // the kernel's pending work for the ring, which receives what the socket holds into buffers and
  // posts a completion for each. Does not wait for datagrams still to come. With `wait_for` 0
  // the kernel runs that work once (on Linux 6.18 the multishot then hands over about 32
  // datagrams and queues itself again); with `wait_for` > 0 it goes on while the socket holds
  // datagrams, until `wait_for` completions (at most all the buffers) are posted, but that costs
  // a few microseconds more where the socket holds fewer (the kernel's timed-wait path).
  // Returns 0 or an errno of io_uring_enter.
  int collect(uint32_t wait_for = 0) noexcept;
  // Takes up to `max` posted datagrams into `out`; their buffers stay the receiver's until
  // release(). Sets `kernel_drops` from the newest SO_RXQ_OVFL seen. Returns the count; 0 when no
  // completion is left. A completion that ended the multishot is consumed here: error() then
  // holds its errno where it was not a shutdown or ENOBUFS, and collect() arms a new one.
  uint32_t take(ReceivedDatagram* out, uint32_t max, uint32_t& kernel_drops) noexcept;
  // Hands the buffers of every take() since the last release back to the kernel, in one store.
  // Every take() must be followed by release() before the next collect().
  void release() noexcept;
  // The errno that last ended the multishot (not ENOBUFS, not a shutdown), cleared by reading.
  int error() noexcept;
  // Ends the multishot and waits (up to a second) for its last completion: until then the ring
  // holds the socket open, and its port bound, whatever close() does to the descriptor.
  // Runs on: receiver thread, when it stops.
  void cancel() noexcept;

 private:
  explicit UringReader(int fd, uint32_t buffers) noexcept;
  int setup(uint32_t cq_entries, const char*& call) noexcept;
  int map_rings(const io_uring_params& params) noexcept;
  int register_buffers() noexcept;
  // Queues one submission; the next enter() hands it to the kernel.
  io_uring_sqe* next_sqe() noexcept;
  int enter(uint32_t min_complete, const __kernel_timespec* timeout) noexcept;
  void arm() noexcept;

  int fd_;
  int ring_fd_ = -1;
  int enter_fd_ = -1;         // ring_fd_, or its registered index (enter_flags_ says which)
  unsigned enter_flags_ = 0;
  uint32_t buffer_count_;
  // The rings, mapped from the kernel: submission indices, entries and completions.
  void* ring_memory_ = nullptr;
  size_t ring_bytes_ = 0;
  io_uring_sqe* sqes_ = nullptr;
  size_t sqe_bytes_ = 0;
  uint32_t* sq_tail_ = nullptr;
  uint32_t sq_mask_ = 0;
  uint32_t to_submit_ = 0;
  uint32_t* cq_head_ = nullptr;
  uint32_t* cq_tail_ = nullptr;
  uint32_t cq_mask_ = 0;
  io_uring_cqe* cqes_ = nullptr;
  uint32_t cq_taken_ = 0;  // completions consumed since the last release()
  // The provided buffers: the ring of their addresses (shared with the kernel) and the memory.
  // The ring's entries, read through io_uring_buf itself: io_uring_buf_ring's flexible array
  // member sits past an empty struct that is one byte in C++, not at offset 0 as in C. Its tail
  // overlays the first entry's resv field.
  io_uring_buf* buffer_ring_ = nullptr;
  uint16_t* buffer_ring_tail_ = nullptr;
  size_t buffer_ring_bytes_ = 0;
  uint8_t* buffers_ = nullptr;
  size_t buffers_bytes_ = 0;
  uint16_t buffer_tail_ = 0;     // the ring's tail as this reader last published it
  uint32_t buffers_taken_ = 0;   // buffers taken since the last release(), in ring order
  msghdr shape_{};  // what the kernel lays out in each buffer: name and control sizes
  bool armed_ = false;
  bool shut_ = false;  // the socket was shut down: the multishot ended for good
  int error_ = 0;
};

}  // namespace heartwatch
