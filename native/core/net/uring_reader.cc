#include "core/net/uring_reader.h"

#include <netinet/in.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <new>

namespace heartwatch {
#if HW_IO_URING_HEADERS
namespace {

constexpr uint16_t kBufferGroup = 0;
// user_data of the multishot recvmsg and of the request that cancels it.
constexpr uint64_t kReceiveTag = 1;
constexpr uint64_t kCancelTag = 2;
// Submission entries: one multishot and, as it stops, one cancel.
constexpr uint32_t kSubmissionEntries = 4;

// Where the kernel puts each part in a buffer: fixed, since every request has the same shape_.
static_assert(sizeof(io_uring_recvmsg_out) == kUringLayoutBytes);
constexpr size_t kNameOffset = sizeof(io_uring_recvmsg_out);
constexpr size_t kControlOffset = kNameOffset + kUringNameRoom;
constexpr size_t kPayloadOffset = kControlOffset + CMSG_SPACE(sizeof(uint32_t));
static_assert(kUringBufferBytes == kPayloadOffset + kUringPayloadRoom);
static_assert(kUringNameRoom >= sizeof(sockaddr_in6) && kControlOffset % alignof(cmsghdr) == 0);
// Buffers start on a cache line, so a datagram's header never straddles one it need not.
constexpr size_t kBufferStride = (kUringBufferBytes + 63) / 64 * 64;

int sys_setup(uint32_t entries, io_uring_params* params) {
  return static_cast<int>(syscall(__NR_io_uring_setup, entries, params));
}
int sys_register(int fd, unsigned opcode, const void* arg, unsigned count) {
  return static_cast<int>(syscall(__NR_io_uring_register, fd, opcode, arg, count));
}

template <typename T>
T* at(void* base, uint32_t offset) {
  return reinterpret_cast<T*>(static_cast<uint8_t*>(base) + offset);
}

// The socket's drop count a datagram carries (SO_RXQ_OVFL), if its control message has one.
bool read_drops(const uint8_t* buffer, const io_uring_recvmsg_out& message, uint32_t& drops) {
  size_t offset = 0;
  while (offset + sizeof(cmsghdr) <= message.controllen) {
    cmsghdr header;
    std::memcpy(&header, buffer + kControlOffset + offset, sizeof(header));
    if (header.cmsg_len < sizeof(cmsghdr) || offset + header.cmsg_len > message.controllen) return false;
    if (header.cmsg_level == SOL_SOCKET && header.cmsg_type == SO_RXQ_OVFL &&
        header.cmsg_len >= CMSG_LEN(sizeof(uint32_t))) {
      std::memcpy(&drops, buffer + kControlOffset + offset + CMSG_LEN(0), sizeof(uint32_t));
      return true;
    }
    offset += CMSG_ALIGN(header.cmsg_len);
  }
  return false;
}

}  // namespace

UringReader::UringReader(int fd, uint32_t buffers) noexcept : fd_(fd), buffer_count_(buffers) {
  shape_.msg_namelen = kUringNameRoom;
  shape_.msg_controllen = CMSG_SPACE(sizeof(uint32_t));
}

std::unique_ptr<UringReader> UringReader::open(int fd, uint32_t buffers, int& error, const char*& call) noexcept {
  std::unique_ptr<UringReader> reader(new (std::nothrow) UringReader(fd, buffers));
  if (!reader) {
    error = ENOMEM;
    call = "io_uring_setup";
    return nullptr;
  }
  // Completions the ring holds: every buffer in flight, twice, so it never overflows (each
  // datagram's completion holds a buffer until release()).
  error = reader->setup(2 * buffers, call);
  return error == 0 ? std::move(reader) : nullptr;
}

int UringReader::setup(uint32_t cq_entries, const char*& call) noexcept {
  io_uring_params params{};
  // Disabled until the receiver thread enables it, so that thread becomes the single issuer;
  // DEFER_TASKRUN: the kernel receives only inside that thread's io_uring_enter, which the
  // receive watermark relies on (UdpReceiver::receive_uring_batch).
  params.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_R_DISABLED |
                 IORING_SETUP_CQSIZE;
  params.cq_entries = cq_entries;
  call = "io_uring_setup";
  ring_fd_ = sys_setup(kSubmissionEntries, &params);
  if (ring_fd_ < 0) return errno;
  enter_fd_ = ring_fd_;
  call = "mmap";
  if (const int error = map_rings(params); error != 0) return error;
  call = "io_uring_register";
  return register_buffers();
}

int UringReader::map_rings(const io_uring_params& params) noexcept {
  if ((params.features & IORING_FEAT_SINGLE_MMAP) == 0) return ENOSYS;
  ring_bytes_ = std::max<size_t>(params.sq_off.array + params.sq_entries * sizeof(uint32_t),
                                 params.cq_off.cqes + params.cq_entries * sizeof(io_uring_cqe));
  void* rings = mmap(nullptr, ring_bytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring_fd_,
                     IORING_OFF_SQ_RING);
  if (rings == MAP_FAILED) return errno;
  ring_memory_ = rings;
  sqe_bytes_ = params.sq_entries * sizeof(io_uring_sqe);
  void* sqes = mmap(nullptr, sqe_bytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring_fd_,
                    IORING_OFF_SQES);
  if (sqes == MAP_FAILED) return errno;
  sqes_ = static_cast<io_uring_sqe*>(sqes);
  sq_tail_ = at<uint32_t>(rings, params.sq_off.tail);
  sq_mask_ = *at<uint32_t>(rings, params.sq_off.ring_mask);
  // Submission slot i names entry i, once for all.
  uint32_t* array = at<uint32_t>(rings, params.sq_off.array);
  for (uint32_t i = 0; i < params.sq_entries; ++i) array[i] = i;
  cq_head_ = at<uint32_t>(rings, params.cq_off.head);
  cq_tail_ = at<uint32_t>(rings, params.cq_off.tail);
  cq_mask_ = *at<uint32_t>(rings, params.cq_off.ring_mask);
  cqes_ = at<io_uring_cqe>(rings, params.cq_off.cqes);
  return 0;
}

int UringReader::register_buffers() noexcept {
  buffers_bytes_ = kBufferStride * buffer_count_;
  // Reserved, not committed: the kernel backs only the pages datagrams were written to.
  void* memory = mmap(nullptr, buffers_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                      -1, 0);
  if (memory == MAP_FAILED) return errno;
  buffers_ = static_cast<uint8_t*>(memory);
  buffer_ring_bytes_ = sizeof(io_uring_buf) * buffer_count_;
  memory = mmap(nullptr, buffer_ring_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (memory == MAP_FAILED) return errno;
  buffer_ring_ = static_cast<io_uring_buf*>(memory);
  buffer_ring_tail_ = reinterpret_cast<uint16_t*>(static_cast<uint8_t*>(memory) + offsetof(io_uring_buf, resv));
  io_uring_buf_reg registration{};
  registration.ring_addr = reinterpret_cast<uintptr_t>(memory);
  registration.ring_entries = buffer_count_;
  registration.bgid = kBufferGroup;
  if (sys_register(ring_fd_, IORING_REGISTER_PBUF_RING, &registration, 1) < 0) return errno;
  // Slot i holds buffer i, for good (see release()); the first slot's resv is the ring's tail.
  for (uint32_t id = 0; id < buffer_count_; ++id) {
    io_uring_buf& slot = buffer_ring_[id];
    slot.addr = reinterpret_cast<uint64_t>(buffers_ + kBufferStride * id);
    slot.len = kUringBufferBytes;
    slot.bid = static_cast<uint16_t>(id);
  }
  buffers_taken_ = buffer_count_;
  release();
  return 0;
}

UringReader::~UringReader() {
  // Closing the ring ends the multishot (cancel() has ended it already where the receiver thread
  // stopped) and drops the kernel's hold on the buffers.
  if (ring_fd_ >= 0) ::close(ring_fd_);
  if (sqes_ != nullptr) munmap(sqes_, sqe_bytes_);
  if (ring_memory_ != nullptr) munmap(ring_memory_, ring_bytes_);
  if (buffer_ring_ != nullptr) munmap(buffer_ring_, buffer_ring_bytes_);
  if (buffers_ != nullptr) munmap(buffers_, buffers_bytes_);
}

int UringReader::attach() noexcept {
  if (sys_register(ring_fd_, IORING_REGISTER_ENABLE_RINGS, nullptr, 0) < 0) return errno;
  // The ring's descriptor registered with this thread: each io_uring_enter then skips the file
  // table lookup. Where the kernel refuses (before 5.18), the plain descriptor serves.
  io_uring_rsrc_update update{};
  update.offset = ~0u;  // any free slot
  update.data = static_cast<uint64_t>(ring_fd_);
  if (sys_register(ring_fd_, IORING_REGISTER_RING_FDS, &update, 1) == 1) {
    enter_fd_ = static_cast<int>(update.offset);
    enter_flags_ = IORING_ENTER_REGISTERED_RING;
  }
  return 0;
}

io_uring_sqe* UringReader::next_sqe() noexcept {
  const uint32_t tail = *sq_tail_ + to_submit_;
  io_uring_sqe* sqe = &sqes_[tail & sq_mask_];
  std::memset(sqe, 0, sizeof(*sqe));
  ++to_submit_;
  return sqe;
}

int UringReader::enter(uint32_t min_complete, const __kernel_timespec* timeout) noexcept {
  if (to_submit_ > 0) __atomic_store_n(sq_tail_, *sq_tail_ + to_submit_, __ATOMIC_RELEASE);
  io_uring_getevents_arg arg{};
  arg.sigmask_sz = _NSIG / 8;
  arg.ts = reinterpret_cast<uint64_t>(timeout);
  const unsigned flags = enter_flags_ | IORING_ENTER_GETEVENTS | (timeout != nullptr ? IORING_ENTER_EXT_ARG : 0);
  const long submitted = syscall(__NR_io_uring_enter, enter_fd_, to_submit_, min_complete, flags,
                                 timeout != nullptr ? &arg : nullptr, timeout != nullptr ? sizeof(arg) : 0);
  if (submitted < 0) return errno;
  to_submit_ -= std::min<uint32_t>(to_submit_, static_cast<uint32_t>(submitted));
  return 0;
}

void UringReader::arm() noexcept {
  io_uring_sqe* sqe = next_sqe();
  sqe->opcode = IORING_OP_RECVMSG;
  sqe->fd = fd_;
  sqe->addr = reinterpret_cast<uint64_t>(&shape_);
  sqe->len = 1;
  // MSG_TRUNC: the completion carries the true length of a datagram longer than the buffer.
  sqe->msg_flags = MSG_TRUNC;
  sqe->ioprio = IORING_RECV_MULTISHOT;
  sqe->flags = IOSQE_BUFFER_SELECT;
  sqe->buf_group = kBufferGroup;
  sqe->user_data = kReceiveTag;
  armed_ = true;
}

int UringReader::collect(uint32_t wait_for) noexcept {
  // Re-armed after release() gave the buffers back: a multishot that ran out (ENOBUFS) would
  // fail again at once without them.
  if (!armed_ && !shut_) arm();
  if (wait_for == 0) return enter(0, nullptr);
  // A timeout that has already passed: the kernel runs the receive for as long as the socket
  // holds datagrams and completions are wanted, then returns (ETIME where fewer came), without
  // waiting for datagrams still to come.
  const __kernel_timespec now{0, 0};
  const int error = enter(std::min(wait_for, buffer_count_), &now);
  return error == ETIME ? 0 : error;
}

uint32_t UringReader::take(ReceivedDatagram* out, uint32_t max, uint32_t& kernel_drops) noexcept {
  const uint32_t head = *cq_head_ + cq_taken_;
  const uint32_t tail = __atomic_load_n(cq_tail_, __ATOMIC_ACQUIRE);
  uint32_t count = 0;
  const uint8_t* newest = nullptr;
  uint32_t seen = 0;
  for (; head + seen != tail && count < max; ++seen) {
    const io_uring_cqe& cqe = cqes_[(head + seen) & cq_mask_];
    if (cqe.user_data != kReceiveTag) continue;  // the cancel's own completion
    if ((cqe.flags & IORING_CQE_F_MORE) == 0) {
      armed_ = false;
      // The shutdown that stop requested ends the request with nothing; ENOBUFS (the buffers ran
      // out) just needs a new one; anything else is the caller's to count.
      if (cqe.res == 0) shut_ = true;
      if (cqe.res < 0 && cqe.res != -ENOBUFS) error_ = -cqe.res;
    }
    if ((cqe.flags & IORING_CQE_F_BUFFER) == 0) continue;
    const uint16_t id = static_cast<uint16_t>(cqe.flags >> IORING_CQE_BUFFER_SHIFT);
    ++buffers_taken_;
    const uint8_t* buffer = buffers_ + kBufferStride * id;
    if (cqe.res < static_cast<int>(kPayloadOffset)) continue;  // not a whole layout: no datagram
    io_uring_recvmsg_out message;
    std::memcpy(&message, buffer, sizeof(message));
    if (message.namelen == 0) continue;  // the shutdown's empty read
    newest = buffer;
    out[count++] = {buffer + kPayloadOffset, message.payloadlen,
                    (message.flags & MSG_TRUNC) != 0 || message.payloadlen > kUringPayloadRoom,
                    reinterpret_cast<const sockaddr_storage*>(buffer + kNameOffset)};
  }
  cq_taken_ += seen;
  // SO_RXQ_OVFL carries the socket's drop count so far, on every datagram once it is non-zero:
  // the newest datagram has the newest.
  if (newest != nullptr) {
    io_uring_recvmsg_out message;
    std::memcpy(&message, newest, sizeof(message));
    read_drops(newest, message, kernel_drops);
  }
  return count;
}

// Handing buffers back is the tail store alone: no slot is written. The kernel takes buffers from
// the ring's head, in ring order, and never writes a slot (it would only with IOU_PBUF_RING_INC or
// a bundle receive, neither used here); every buffer taken is handed back here before the next
// collect(), so the ring's tail is always buffer_count_ slots ahead of the head as the kernel
// starts taking. The slot the tail passes over is then the very slot the kernel took that buffer
// from, still holding it (slot i holds buffer i, from register_buffers() on).
void UringReader::release() noexcept {
  buffer_tail_ = static_cast<uint16_t>(buffer_tail_ + buffers_taken_);
  if (buffers_taken_ > 0) __atomic_store_n(buffer_ring_tail_, buffer_tail_, __ATOMIC_RELEASE);
  buffers_taken_ = 0;
  if (cq_taken_ > 0) __atomic_store_n(cq_head_, *cq_head_ + cq_taken_, __ATOMIC_RELEASE);
  cq_taken_ = 0;
}

int UringReader::error() noexcept {
  const int error = error_;
  error_ = 0;
  return error;
}

void UringReader::cancel() noexcept {
  release();
  if (!armed_) return;
  // A multishot queued but not yet submitted is submitted with its cancel, in order.
  io_uring_sqe* sqe = next_sqe();
  sqe->opcode = IORING_OP_ASYNC_CANCEL;
  sqe->addr = kReceiveTag;
  sqe->user_data = kCancelTag;
  ReceivedDatagram ignored[16];
  uint32_t drops = 0;
  for (int tries = 0; armed_ && tries < 10; ++tries) {
    const __kernel_timespec timeout{0, 100'000'000};
    enter(1, &timeout);  // ETIME: looked again below all the same
    while (take(ignored, 16, drops) > 0) {
    }
    release();
  }
}

#else  // kernel headers older than Linux 6.1: every open() is refused, as by an old kernel.

UringReader::UringReader(int fd, uint32_t buffers) noexcept : fd_(fd), buffer_count_(buffers) {}
UringReader::~UringReader() = default;

std::unique_ptr<UringReader> UringReader::open(int, uint32_t, int& error, const char*& call) noexcept {
  error = ENOSYS;
  call = "io_uring_setup (built with kernel headers older than Linux 6.1)";
  return nullptr;
}

int UringReader::attach() noexcept { return ENOSYS; }
int UringReader::collect(uint32_t) noexcept { return ENOSYS; }
uint32_t UringReader::take(ReceivedDatagram*, uint32_t, uint32_t&) noexcept { return 0; }
void UringReader::release() noexcept {}
int UringReader::error() noexcept { return 0; }
void UringReader::cancel() noexcept {}

#endif
}  // namespace heartwatch
