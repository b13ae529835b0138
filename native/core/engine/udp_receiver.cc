#include "core/engine/udp_receiver.h"

#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <new>
#include <string>

#include "core/common/current_thread.h"
#include "core/common/errno_name.h"
#include "core/common/system_error.h"
#include "core/common/monotonic_clock.h"
#include "core/engine/heartbeat_intake.h"

namespace heartwatch {

static_assert(kUringPayloadRoom >= kReceiveSlotBytes + kReceiveSpillBytes,
              "both backends hold every datagram whole");

void UdpReceiver::count_verdicts(const BatchTally& tally) noexcept {
  auto add = [this](ReceiverCounter field, uint64_t n) {
    if (n != 0) EngineStats::add(counters_, field, n);
  };
  auto of = [&tally](AuthVerdict v) { return tally.verdicts[static_cast<size_t>(v)]; };
  add(ReceiverCounter::kMalformed, of(AuthVerdict::kMalformed));
  add(ReceiverCounter::kAuthUnsupported, of(AuthVerdict::kAuthUnsupported));
  add(ReceiverCounter::kAuthFailed, of(AuthVerdict::kAuthFailed));
  add(ReceiverCounter::kUnauthenticated,
      of(AuthVerdict::kUnauthenticated) + of(AuthVerdict::kRejectedUnauthenticated));
  add(ReceiverCounter::kNotAllowed, tally.not_allowed);
}

UdpReceiver::UdpReceiver(uint32_t index, const EngineConfig& config, UdpSocket socket,
                         std::vector<SpscRing<ShardMessage>*> rings, std::vector<WakeSignal*> wake,
                         CounterLine& counters, int cpu)
    : index_(index),
      identity_(config.identity),
      batch_size_(config.batch_size),
      spin_(config.spin),
      socket_(std::move(socket)),
      rings_(std::move(rings)),
      wake_(std::move(wake)),
      counters_(counters),
      auth_(std::make_unique<KeyRing>(config.auth_keys), config.auth_required,
            config.identity != IdentityMode::kId),
      allow_(config.allow),
      allow_all_(allow_.empty()),
      cpu_(cpu),
      messages_(config.batch_size),
      iovecs_(2 * static_cast<size_t>(config.batch_size)),
      sources_(config.batch_size),
      datagrams_(new uint8_t[kReceiveSlotBytes * config.batch_size]),
      spill_(new uint8_t[kReceiveSpillBytes * config.batch_size]),
      joined_(new uint8_t[kReceiveSlotBytes + kReceiveSpillBytes]),
      control_stride_(CMSG_SPACE(sizeof(uint32_t))),
      staged_(static_cast<size_t>(config.batch_size) * rings_.size()),
      staged_counts_(rings_.size(), 0) {
  control_.reset(new uint8_t[control_stride_ * config.batch_size]);
  build_headers();
  open_backend(config.receive_backend);
  EngineStats::set(counters_, ReceiverCounter::kRecvBufferBytes, socket_.granted_recv_buffer_bytes());
}

void UdpReceiver::open_backend(ReceiveBackend wanted) {
  if (wanted == ReceiveBackend::kRecvmmsg || (wanted == ReceiveBackend::kAuto && !kAutoPrefersIoUring)) return;
  int error = 0;
  const char* call = "";
  uring_ = UringReader::open(socket_.fd(), kUringBufferCount, error, call);
  if (uring_) {
    received_.resize(batch_size_);
    return;
  }
  if (wanted == ReceiveBackend::kIoUring) {
    throw SystemError(error, call,
                      "(receiveBackend 'io_uring': the kernel or a seccomp policy refused io_uring; "
                      "'auto' falls back to recvmmsg)");
  }
  const char* name = errno_name(error);
  fallback_reason_ = std::string(call) + ": " + (name != nullptr ? name : "EUNKNOWN");
}

UdpReceiver::~UdpReceiver() {
  request_stop();
  join();
}

void UdpReceiver::start() { thread_ = std::thread([this] { run(); }); }

void UdpReceiver::request_stop() noexcept {
  stop_.store(true, std::memory_order_relaxed);
  socket_.shutdown_reads();
  watermark_.kick();
}

void UdpReceiver::join() {
  if (thread_.joinable()) thread_.join();
}

void UdpReceiver::run() {
  name_and_pin_current_thread("hw-rx-" + std::to_string(index_), cpu_);
  try {
    while (!stop_.load(std::memory_order_relaxed) && !failed_) receive_batch();
  } catch (const std::bad_alloc&) {
    fail(ENOMEM);
  }
  if (uring_attached_) uring_->cancel();
}

void UdpReceiver::fail(int error) noexcept {
  failed_ = true;
  EngineStats::set(counters_, ReceiverCounter::kFailedErrno, static_cast<uint64_t>(error));
  if (on_failure_) on_failure_();
}

void UdpReceiver::receive_failed(int error, uint64_t started_ms) noexcept {
  if (error == EINTR) return;
  if (error == EAGAIN || error == EWOULDBLOCK) {
    publish_watermark(started_ms);
    watermark_.park(socket_.fd(), kParkMillis);
    return;
  }
  if (error == EBADF || error == ENOTSOCK || error == EFAULT || error == EINVAL) {
    // The socket itself is broken: retrying would spin, and expiry stays held.
    fail(error);
    return;
  }
  // Counted, and the thread goes on (ENOMEM, ENOBUFS, an error the kernel queued on the socket,
  // which the call that reports it clears). The pause keeps one that persists from spinning.
  EngineStats::add(counters_, ReceiverCounter::kReceiveErrors, 1);
  const timespec pause{0, kCoalesceMicros * 1000};
  clock_nanosleep(CLOCK_MONOTONIC, 0, &pause, nullptr);
}

inline void UdpReceiver::stage(const DatagramView& datagram, BatchTally& tally) {
  // allows() says yes to anything when the list is empty; this test spares the call.
  if (!allow_all_ && !allow_.allows(*datagram.source)) {
    ++tally.not_allowed;
    return;
  }
  ParsedHeartbeat parsed{};
  const ParseStatus status =
      datagram.truncated ? ParseStatus::kMalformed : parse_heartbeat_v1(datagram.head, datagram.length, parsed);
  // Only a tag check reads past the header, so only a signed long datagram is joined.
  const uint8_t* data = status == ParseStatus::kOk && parsed.auth ? whole_datagram(datagram) : datagram.head;
  const AuthVerdict verdict = auth_.check(status, parsed, data);
  ++tally.verdicts[static_cast<size_t>(verdict)];
  if (!accepted(verdict)) return;
  // The key picks the worker, so the message is built straight into that worker's next slot.
  const uint64_t key = heartbeat_key(identity_, parsed, *datagram.source);
  const uint32_t owner = shard_of(key, static_cast<uint32_t>(rings_.size()));
  ShardMessage& message = staged_[static_cast<size_t>(owner) * batch_size_ + staged_counts_[owner]++];
  fill_shard_message(key, identity_, status, parsed, *datagram.source, verdict == AuthVerdict::kAuthenticated,
                     message);
  if (statuses_.enabled() && status == ParseStatus::kOk && parsed.payload_len > 0) {
    statuses_.carry(owner, message, parsed.payload_len, datagram.head + kHeartbeatHeaderBytes,
                    datagram.head_size - kHeartbeatHeaderBytes, datagram.rest, true);
  }
}

uint32_t UdpReceiver::receive_batch() {
  return uring_ ? receive_uring_batch() : receive_recvmmsg_batch();
}

void UdpReceiver::build_headers() noexcept {
  for (uint32_t i = 0; i < batch_size_; ++i) {
    iovecs_[2 * i] = {datagrams_.get() + i * kReceiveSlotBytes, kReceiveSlotBytes};
    iovecs_[2 * i + 1] = {spill_.get() + i * kReceiveSpillBytes, kReceiveSpillBytes};
    msghdr& header = messages_[i].msg_hdr;
    header = {};
    header.msg_name = &sources_[i];
    header.msg_namelen = sizeof(sockaddr_storage);
    header.msg_iov = &iovecs_[2 * i];
    header.msg_iovlen = 2;
    header.msg_control = control_.get() + i * control_stride_;
    header.msg_controllen = control_stride_;
  }
}

uint32_t UdpReceiver::receive_recvmmsg_batch() {
  // The headers were built once (build_headers()); dispatch() restores what the kernel wrote.
  // Read before the call: a short read below proves everything that arrived before it is read.
  const uint64_t started_ms = monotonic_ms_floor();
  const int received = recvmmsg(socket_.fd(), messages_.data(), batch_size_, MSG_DONTWAIT, nullptr);
  // The wake-up of the shutdown that stop requested reads as an empty datagram: not a peer's,
  // so not counted.
  if (stop_.load(std::memory_order_relaxed)) return 0;
  if (received < 0) {
    receive_failed(errno, started_ms);
    return 0;
  }
  if (received == 0) return 0;
  dispatch(static_cast<uint32_t>(received));
  if (static_cast<uint32_t>(received) < batch_size_) publish_watermark(started_ms);
  coalesce(static_cast<uint32_t>(received));
  return static_cast<uint32_t>(received);
}

// The receive watermark with io_uring. A multishot receive gives no short read to stand on: an
// empty completion queue does not say the socket is empty (the multishot may have ended on
// ENOBUFS with datagrams still queued). So: T0 is read first; collect() then runs every receive
// the kernel had pending for the ring (with DEFER_TASKRUN the multishot receives only inside this
// thread's io_uring_enter, and posts each datagram's completion before that call returns); then
// SO_MEMINFO reads the bytes queued on the socket. If none were, every datagram that reached the
// socket before T0 had left its queue by then, taken by a receive of this thread whose completion
// was posted before that read; the reap below takes every posted completion (the completion
// queue holds twice the buffers, so none overflows), so each is pushed before T0 is published.
uint32_t UdpReceiver::receive_uring_batch() {
  if (!uring_attached_) {
    // Only the thread that attaches may use the ring (SINGLE_ISSUER); nothing else can read the
    // socket, so a failure here fails the receiver.
    if (const int error = uring_->attach(); error != 0) {
      fail(error);
      return 0;
    }
    uring_attached_ = true;
  }
  const uint64_t started_ms = monotonic_ms_floor();
  const uint32_t wait_for = uring_backlog_ ? kUringBufferCount / 2 : 0;
  if (const int error = uring_->collect(wait_for); error != 0 && error != EINTR) {
    // EBADF and the like: the ring is broken; EBUSY or EAGAIN (the kernel's own shortage):
    // counted and retried after a pause.
    receive_failed(error == EAGAIN ? EBUSY : error, started_ms);
    return 0;
  }
  if (stop_.load(std::memory_order_relaxed)) return 0;
  // At most once a millisecond, the watermark's resolution: the read costs a syscall.
  uint64_t queued = 1;
  uint64_t kernel_drops = 0;
  const bool checked = started_ms != published_ms_ && started_ms != queue_checked_ms_ &&
                       socket_queue(queued, kernel_drops);
  if (checked) queue_checked_ms_ = started_ms;
  auth_.refresh();
  uint32_t total = 0;
  ReceivedDatagram* const received = received_.data();  // read once (see dispatch())
  for (uint32_t count; (count = uring_->take(received, batch_size_, last_kernel_drops_)) > 0;) {
    BatchTally tally;
    for (uint32_t i = 0; i < count; ++i) {
      const ReceivedDatagram& d = received[i];
      stage({d.data, kUringPayloadRoom, nullptr, d.length, d.truncated, d.source}, tally);
    }
    push_staged(count, tally);
    total += count;
  }
  uring_->release();
  // Wait from now on where the queue check (once a millisecond) saw a backlog; stop at the first
  // wait the socket could not fill, so a trickle pays the wait's cost at most once a millisecond.
  if (checked) {
    uring_backlog_ = queued >= kUringBacklogBytes;
  } else if (total < wait_for) {
    uring_backlog_ = false;
  }
  // A read error ended the multishot (collect() arms a new one): a broken socket fails the
  // receiver, anything else is counted, as with recvmmsg (never taken for an empty socket: only
  // the queue check above may publish).
  if (const int error = uring_->error(); error != 0) {
    receive_failed(error == EAGAIN ? EBUSY : error, started_ms);
    return total;
  }
  if (checked && queued == 0) publish_watermark(started_ms, kernel_drops);
  if (total == 0) {
    watermark_.park(socket_.fd(), kParkMillis);
    return 0;
  }
  coalesce(total);
  return total;
}

void UdpReceiver::coalesce(uint32_t received) const noexcept {
  if (!spin_ && received < batch_size_ / 4) {
    // A thin batch costs a syscall for a handful of datagrams; let the socket fill a little.
    // The pause bounds the added latency, and the socket buffer absorbs it at any rate.
    const timespec pause{0, kCoalesceMicros * 1000};
    clock_nanosleep(CLOCK_MONOTONIC, 0, &pause, nullptr);
  }
}

// The datagram in one piece: in place when its head holds it, else its head and the rest copied
// into joined_ (only long signed datagrams from recvmmsg pay the copy).
const uint8_t* UdpReceiver::whole_datagram(const DatagramView& datagram) noexcept {
  if (datagram.length <= datagram.head_size) return datagram.head;
  std::memcpy(joined_.get(), datagram.head, datagram.head_size);
  std::memcpy(joined_.get() + datagram.head_size, datagram.rest,
              std::min(datagram.length, kReceiveSlotBytes + kReceiveSpillBytes) - datagram.head_size);
  return joined_.get();
}

void UdpReceiver::dispatch(uint32_t count) {
  auth_.refresh();
  // SO_RXQ_OVFL carries the socket's drop count so far, on every datagram once it is non-zero:
  // the batch's last datagram has the newest.
  const msghdr& last = messages_[count - 1].msg_hdr;
  for (cmsghdr* c = CMSG_FIRSTHDR(&last); c != nullptr; c = CMSG_NXTHDR(const_cast<msghdr*>(&last), c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) {
      std::memcpy(&last_kernel_drops_, CMSG_DATA(c), sizeof(uint32_t));
    }
  }
  BatchTally tally;
  // Read once: stage() writes through byte pointers, which the compiler must assume could
  // change any member, so it would load these again for every datagram.
  mmsghdr* const messages = messages_.data();
  const sockaddr_storage* const sources = sources_.data();
  const uint8_t* const slots = datagrams_.get();
  const uint8_t* const spill = spill_.get();
  const size_t control_bytes = control_stride_;
  for (uint32_t i = 0; i < count; ++i) {
    // The header is in the slot, the rest in the slot's own spill region; msg_len is the whole
    // datagram's length (see kReceiveSlotBytes).
    mmsghdr& message = messages[i];
    stage({slots + size_t{i} * kReceiveSlotBytes, kReceiveSlotBytes, spill + size_t{i} * kReceiveSpillBytes,
           message.msg_len, (message.msg_hdr.msg_flags & MSG_TRUNC) != 0, &sources[i]},
          tally);
    // The kernel shortened these two to what it wrote (msg_flags is output only); the rest of
    // the header, and the iovecs, it only reads.
    message.msg_hdr.msg_namelen = sizeof(sockaddr_storage);
    message.msg_hdr.msg_controllen = control_bytes;
  }
  push_staged(count, tally);
}

void UdpReceiver::push_staged(uint32_t count, const BatchTally& tally) {
  const uint32_t workers = static_cast<uint32_t>(rings_.size());
  uint64_t ring_drops = 0;
  for (uint32_t w = 0; w < workers; ++w) {
    const uint32_t staged = staged_counts_[w];
    if (staged == 0) continue;
    const size_t pushed = rings_[w]->push_batch(&staged_[static_cast<size_t>(w) * batch_size_], staged);
    ring_drops += staged - pushed;
    if (pushed < staged) statuses_.unwind(w, &staged_[static_cast<size_t>(w) * batch_size_], staged, pushed);
    staged_counts_[w] = 0;
    if (pushed > 0) wake_[w]->notify();
  }

  EngineStats::add(counters_, ReceiverCounter::kReceived, count);
  EngineStats::add(counters_, ReceiverCounter::kBatches, 1);
  count_verdicts(tally);
  if (ring_drops) EngineStats::add(counters_, ReceiverCounter::kRingDrops, ring_drops);
  EngineStats::set(counters_, ReceiverCounter::kKernelDrops, last_kernel_drops_);
}

bool UdpReceiver::socket_queue(uint64_t& queued_bytes, uint64_t& kernel_drops) const noexcept {
  uint32_t meminfo[SK_MEMINFO_VARS] = {};
  socklen_t length = sizeof(meminfo);
  if (getsockopt(socket_.fd(), SOL_SOCKET, SO_MEMINFO, meminfo, &length) != 0 ||
      length <= SK_MEMINFO_DROPS * sizeof(uint32_t)) {
    return false;
  }
  // The memory of every datagram still queued (sk_rmem_alloc): 0 only when none is, an empty
  // datagram included (FIONREAD would read 0 for one at the head).
  queued_bytes = meminfo[SK_MEMINFO_RMEM_ALLOC];
  kernel_drops = meminfo[SK_MEMINFO_DROPS];
  return true;
}

void UdpReceiver::publish_watermark(uint64_t started_ms) {
  // At most once per millisecond, the watermark's resolution: the loss count costs a syscall.
  if (started_ms == published_ms_) return;
  // The socket's own drop count, read now, covers every drop before started_ms (the count each
  // datagram carries stops at the last one queued, and can miss drops after it).
  uint64_t queued_bytes = 0;
  uint64_t kernel_drops = last_kernel_drops_;
  socket_queue(queued_bytes, kernel_drops);
  publish_watermark(started_ms, kernel_drops);
}

void UdpReceiver::publish_watermark(uint64_t started_ms, uint64_t kernel_drops) {
  published_ms_ = started_ms;
  const uint64_t ring_drops = EngineStats::get(counters_, static_cast<uint32_t>(ReceiverCounter::kRingDrops));
  watermark_.publish(started_ms, kernel_drops + ring_drops);
  EngineStats::set(counters_, ReceiverCounter::kWatermarkMs, started_ms);
}

}  // namespace heartwatch
