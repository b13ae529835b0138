#include "core/net/uring_reader.h"

#include <cerrno>

#if HW_HAVE_LIBURING
#include <liburing.h>
#include <netinet/in.h>
#include <sys/mman.h>

#include <cstring>

namespace heartwatch {
namespace {

constexpr uint16_t kBufferGroup = 0;
// user_data of the multishot recvmsg and of the request that cancels it.
constexpr uint64_t kReceiveTag = 1;
constexpr uint64_t kCancelTag = 2;

}  // namespace

// Where the kernel puts each part in a buffer: fixed, since every request has the same shape_
// (so the per-datagram work is two loads, not liburing's layout arithmetic).
constexpr size_t kNameOffset = sizeof(io_uring_recvmsg_out);
constexpr size_t kPayloadOffset = kNameOffset + kUringNameRoom + CMSG_SPACE(sizeof(uint32_t));
static_assert(kUringPayloadRoom == kUringBufferBytes - kPayloadOffset);
static_assert(kUringNameRoom >= sizeof(sockaddr_in6) && (kNameOffset + kUringNameRoom) % alignof(cmsghdr) == 0);

UringReader::UringReader(int fd, uint32_t batch, uint32_t buffers) noexcept
    : fd_(fd),
      batch_(batch),
      buffer_count_(buffers),
      ring_(new (std::nothrow) io_uring{}),
      cqes_(new (std::nothrow) io_uring_cqe*[batch]),
      taken_ids_(new (std::nothrow) uint16_t[batch]) {
  shape_.msg_namelen = kUringNameRoom;
  shape_.msg_controllen = CMSG_SPACE(sizeof(uint32_t));
}

std::unique_ptr<UringReader> UringReader::open(int fd, uint32_t batch, uint32_t buffers, int& error,
                                               const char*& call) noexcept {
  std::unique_ptr<UringReader> reader(new (std::nothrow) UringReader(fd, batch, buffers));
  if (!reader || !reader->ring_ || !reader->cqes_ || !reader->taken_ids_) {
    error = ENOMEM;
    call = "io_uring_setup";
    return nullptr;
  }
  io_uring_params params{};
  // Disabled until the receiver thread enables it, so that thread becomes the single issuer.
  params.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_R_DISABLED |
                 IORING_SETUP_CQSIZE;
  // Completions the ring holds before the kernel must stash more: every buffer in flight, twice.
  params.cq_entries = 2 * reader->buffer_count_;
  int result = io_uring_queue_init_params(4, reader->ring_.get(), &params);
  if (result < 0) {
    reader->ring_.reset();  // nothing to tear down
    error = -result;
    call = "io_uring_setup";
    return nullptr;
  }
  result = reader->setup();
  if (result != 0) {
    error = result;
    call = "io_uring_register";
    return nullptr;
  }
  return reader;
}

int UringReader::setup() noexcept {
  buffers_.reset(new (std::nothrow) uint8_t[static_cast<size_t>(kUringBufferBytes) * buffer_count_]);
  if (!buffers_) return ENOMEM;
  buffer_ring_bytes_ = sizeof(io_uring_buf) * buffer_count_;
  void* memory = mmap(nullptr, buffer_ring_bytes_, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  if (memory == MAP_FAILED) return errno;
  buffer_ring_ = static_cast<io_uring_buf_ring*>(memory);
  io_uring_buf_ring_init(buffer_ring_);
  io_uring_buf_reg registration{};
  registration.ring_addr = reinterpret_cast<uintptr_t>(memory);
  registration.ring_entries = buffer_count_;
  registration.bgid = kBufferGroup;
  const int result = io_uring_register_buf_ring(ring_.get(), &registration, 0);
  if (result < 0) return -result;
  const int mask = io_uring_buf_ring_mask(buffer_count_);
  for (uint32_t id = 0; id < buffer_count_; ++id) {
    io_uring_buf_ring_add(buffer_ring_, buffers_.get() + static_cast<size_t>(id) * kUringBufferBytes,
                          kUringBufferBytes, static_cast<uint16_t>(id), mask, static_cast<int>(id));
  }
  io_uring_buf_ring_advance(buffer_ring_, static_cast<int>(buffer_count_));
  return 0;
}

UringReader::~UringReader() {
  // Closing the ring ends the multishot (cancel() has ended it already where the receiver thread
  // stopped) and drops the kernel's hold on the buffers.
  if (ring_) io_uring_queue_exit(ring_.get());
  if (buffer_ring_ != nullptr) munmap(buffer_ring_, buffer_ring_bytes_);
}

int UringReader::attach() noexcept {
  const int result = io_uring_enable_rings(ring_.get());
  return result < 0 ? -result : 0;
}

int UringReader::arm() noexcept {
  io_uring_sqe* sqe = io_uring_get_sqe(ring_.get());
  if (sqe == nullptr) return EBUSY;  // cannot happen: one request in flight in a 4-entry ring
  // MSG_TRUNC: the completion carries the true length of a datagram longer than the buffer.
  io_uring_prep_recvmsg_multishot(sqe, fd_, &shape_, MSG_TRUNC);
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = kBufferGroup;
  io_uring_sqe_set_data64(sqe, kReceiveTag);
  armed_ = true;
  return 0;
}

void UringReader::cancel() noexcept {
  release();
  // A request armed but never submitted (no wait() since) holds nothing yet; submitting it with
  // the cancel ends it too.
  if (!armed_) return;
  io_uring_sqe* sqe = io_uring_get_sqe(ring_.get());
  if (sqe == nullptr) return;
  io_uring_prep_cancel64(sqe, kReceiveTag, 0);
  io_uring_sqe_set_data64(sqe, kCancelTag);
  for (int tries = 0; armed_ && tries < 10; ++tries) {
    io_uring_cqe* cqe = nullptr;
    __kernel_timespec timeout{0, 100'000'000};
    if (io_uring_submit_and_wait_timeout(ring_.get(), &cqe, 1, &timeout, nullptr) < 0) continue;
    unsigned head;
    unsigned seen = 0;
    io_uring_for_each_cqe(ring_.get(), head, cqe) {
      ++seen;
      if (cqe->user_data == kReceiveTag && (cqe->flags & IORING_CQE_F_MORE) == 0) armed_ = false;
    }
    io_uring_cq_advance(ring_.get(), seen);
  }
}

int UringReader::wait(ReceivedDatagram* out, int timeout_ms, uint32_t& kernel_drops) noexcept {
  // Completions that carry no datagram (the end of a multishot that ran out of buffers) are
  // consumed and the wait goes on, so that 0 means what it means for recvmmsg: nothing came.
  while (true) {
    // Re-armed here, after release() gave the buffers back: a multishot that ran out (ENOBUFS)
    // would fail again at once without them.
    if (!armed_ && !shut_) arm();
    io_uring_cqe* first = nullptr;
    __kernel_timespec timeout{timeout_ms / 1000, (timeout_ms % 1000) * 1'000'000LL};
    const int waited = io_uring_submit_and_wait_timeout(ring_.get(), &first, 1, &timeout, nullptr);
    if (waited < 0) return waited == -ETIME || waited == -EINTR ? 0 : waited;
    int error = 0;
    const uint32_t count = take(out, kernel_drops, error);
    if (count > 0) return static_cast<int>(count);
    release();
    if (error != 0) return -error;
    if (shut_) return 0;
  }
}

uint32_t UringReader::take(ReceivedDatagram* out, uint32_t& kernel_drops, int& error) noexcept {
  uint32_t count = 0;
  io_uring_recvmsg_out* newest = nullptr;
  taken_cqes_ = io_uring_peek_batch_cqe(ring_.get(), cqes_.get(), batch_);
  for (uint32_t i = 0; i < taken_cqes_; ++i) {
    const io_uring_cqe* cqe = cqes_[i];
    if ((cqe->flags & IORING_CQE_F_MORE) == 0) {
      armed_ = false;
      // The shutdown that stop requested ends the request with nothing; ENOBUFS (the buffers ran
      // out) just needs a new one; anything else is the caller's to count.
      if (cqe->res == 0) shut_ = true;
      if (cqe->res < 0 && cqe->res != -ENOBUFS) error = -cqe->res;
    }
    if ((cqe->flags & IORING_CQE_F_BUFFER) == 0) continue;
    const uint16_t id = static_cast<uint16_t>(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
    taken_ids_[taken_buffers_++] = id;
    uint8_t* buffer = buffers_.get() + static_cast<size_t>(id) * kUringBufferBytes;
    if (cqe->res < static_cast<int>(kPayloadOffset)) continue;  // not a whole layout: no datagram
    auto* message = reinterpret_cast<io_uring_recvmsg_out*>(buffer);
    if (message->namelen == 0) continue;  // shutdown's empty read
    newest = message;
    out[count++] = {buffer + kPayloadOffset, message->payloadlen,
                    reinterpret_cast<const sockaddr_storage*>(buffer + kNameOffset)};
  }
  // SO_RXQ_OVFL carries the socket's drop count so far, on every datagram once it is non-zero:
  // the newest datagram has the newest.
  if (newest == nullptr) return count;
  for (cmsghdr* c = io_uring_recvmsg_cmsg_firsthdr(newest, &shape_); c != nullptr;
       c = io_uring_recvmsg_cmsg_nexthdr(newest, &shape_, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) {
      std::memcpy(&kernel_drops, CMSG_DATA(c), sizeof(uint32_t));
    }
  }
  return count;
}

void UringReader::release() noexcept {
  const int mask = io_uring_buf_ring_mask(buffer_count_);
  for (uint32_t i = 0; i < taken_buffers_; ++i) {
    const uint16_t id = taken_ids_[i];
    io_uring_buf_ring_add(buffer_ring_, buffers_.get() + static_cast<size_t>(id) * kUringBufferBytes,
                          kUringBufferBytes, id, mask, static_cast<int>(i));
  }
  io_uring_buf_ring_advance(buffer_ring_, static_cast<int>(taken_buffers_));
  io_uring_cq_advance(ring_.get(), taken_cqes_);
  taken_buffers_ = 0;
  taken_cqes_ = 0;
}

}  // namespace heartwatch

#else  // built without liburing (scripts/liburing.js): every open() is refused, as by the kernel.

struct io_uring {};

namespace heartwatch {

UringReader::UringReader(int fd, uint32_t batch, uint32_t buffers) noexcept
    : fd_(fd), batch_(batch), buffer_count_(buffers) {}
UringReader::~UringReader() = default;

std::unique_ptr<UringReader> UringReader::open(int, uint32_t, uint32_t, int& error, const char*& call) noexcept {
  error = ENOSYS;
  call = "io_uring_setup (this build has no liburing)";
  return nullptr;
}

int UringReader::attach() noexcept { return ENOSYS; }
int UringReader::wait(ReceivedDatagram*, int, uint32_t&) noexcept { return -ENOSYS; }
void UringReader::release() noexcept {}
void UringReader::cancel() noexcept {}

}  // namespace heartwatch

#endif
