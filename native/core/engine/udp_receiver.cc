#include "core/engine/udp_receiver.h"

#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>

#include "core/common/current_thread.h"
#include "core/common/monotonic_clock.h"
#include "core/engine/heartbeat_intake.h"

namespace heartwatch {

void UdpReceiver::count_verdicts(const uint64_t* verdicts, uint64_t not_allowed) noexcept {
  auto add = [this](ReceiverCounter field, uint64_t n) {
    if (n != 0) EngineStats::add(counters_, field, n);
  };
  auto of = [verdicts](AuthVerdict v) { return verdicts[static_cast<size_t>(v)]; };
  add(ReceiverCounter::kMalformed, of(AuthVerdict::kMalformed));
  add(ReceiverCounter::kAuthUnsupported, of(AuthVerdict::kAuthUnsupported));
  add(ReceiverCounter::kAuthFailed, of(AuthVerdict::kAuthFailed));
  add(ReceiverCounter::kUnauthenticated,
      of(AuthVerdict::kUnauthenticated) + of(AuthVerdict::kRejectedUnauthenticated));
  add(ReceiverCounter::kNotAllowed, not_allowed);
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
  if (config.receive_backend == ReceiveBackend::kIoUring) {
    throw std::invalid_argument(
        "receiveBackend 'io_uring' is not yet combined with the receive watermark and source "
        "authentication; use 'auto' or 'recvmmsg'");
  }
  control_.reset(new uint8_t[control_stride_ * config.batch_size]);
  EngineStats::set(counters_, ReceiverCounter::kRecvBufferBytes, socket_.granted_recv_buffer_bytes());
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

uint32_t UdpReceiver::receive_batch() {
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
  auth_.refresh();
  dispatch(static_cast<uint32_t>(received));
  if (static_cast<uint32_t>(received) < batch_size_) publish_watermark(started_ms);
  if (!spin_ && static_cast<uint32_t>(received) < batch_size_ / 4) {
    // A thin batch costs a syscall for a handful of datagrams; let the socket fill a little.
    // The pause bounds the added latency, and the socket buffer absorbs it at any rate.
    const timespec pause{0, kCoalesceMicros * 1000};
    clock_nanosleep(CLOCK_MONOTONIC, 0, &pause, nullptr);
  }
  return static_cast<uint32_t>(received);
}

// The datagram of slot i in one piece: in place when it fits its slot, else its slot and its
// spill region copied into joined_ (only long signed datagrams pay the copy).
const uint8_t* UdpReceiver::whole_datagram(uint32_t i) noexcept {
  const uint8_t* slot = datagrams_.get() + size_t{i} * kReceiveSlotBytes;
  const size_t length = messages_[i].msg_len;
  if (length <= kReceiveSlotBytes) return slot;
  std::memcpy(joined_.get(), slot, kReceiveSlotBytes);
  std::memcpy(joined_.get() + kReceiveSlotBytes, spill_.get() + size_t{i} * kReceiveSpillBytes,
              std::min(length, kReceiveSlotBytes + kReceiveSpillBytes) - kReceiveSlotBytes);
  return joined_.get();
}

void UdpReceiver::dispatch(uint32_t count) {
  const uint32_t workers = static_cast<uint32_t>(rings_.size());
  uint64_t verdicts[static_cast<size_t>(AuthVerdict::kCount)] = {};
  uint64_t not_allowed = 0;
  for (uint32_t i = 0; i < count; ++i) {
    const msghdr& header = messages_[i].msg_hdr;
    for (cmsghdr* c = CMSG_FIRSTHDR(&header); c != nullptr;
         c = CMSG_NXTHDR(const_cast<msghdr*>(&header), c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) {
        std::memcpy(&last_kernel_drops_, CMSG_DATA(c), sizeof(uint32_t));
      }
    }
    if (!allow_.allows(sources_[i])) {
      ++not_allowed;
      continue;
    }
    // The header is in the slot; msg_len is the whole datagram's length (see kReceiveSlotBytes).
    const uint8_t* slot = datagrams_.get() + size_t{i} * kReceiveSlotBytes;
    const bool truncated = (header.msg_flags & MSG_TRUNC) != 0;
    ParsedHeartbeat parsed{};
    ShardMessage message;
    const ParseStatus status =
        truncated ? ParseStatus::kMalformed : parse_heartbeat_v1(slot, messages_[i].msg_len, parsed);
    // Only a tag check reads past the header, so only a signed long datagram is joined.
    const uint8_t* data = status == ParseStatus::kOk && parsed.auth ? whole_datagram(i) : slot;
    const AuthVerdict verdict = auth_.check(status, parsed, data);
    ++verdicts[static_cast<size_t>(verdict)];
    if (!accepted(verdict)) continue;
    to_shard_message(identity_, status, parsed, sources_[i], verdict == AuthVerdict::kAuthenticated, message);
    const uint32_t owner = shard_of(message.heartbeat.key, workers);
    if (statuses_.enabled() && status == ParseStatus::kOk && parsed.payload_len > 0) {
      // The payload starts in the slot and goes on in the slot's own spill region.
      statuses_.carry(owner, message, parsed.payload_len, slot + kHeartbeatHeaderBytes,
                      kReceiveSlotBytes - kHeartbeatHeaderBytes, spill_.get() + size_t{i} * kReceiveSpillBytes,
                      true);
    }
    staged_[static_cast<size_t>(owner) * batch_size_ + staged_counts_[owner]++] = message;
  }

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
  count_verdicts(verdicts, not_allowed);
  if (ring_drops) EngineStats::add(counters_, ReceiverCounter::kRingDrops, ring_drops);
  EngineStats::set(counters_, ReceiverCounter::kKernelDrops, last_kernel_drops_);
}

void UdpReceiver::publish_watermark(uint64_t started_ms) {
  // At most once per millisecond, the watermark's resolution: the loss count costs a syscall.
  if (started_ms == published_ms_) return;
  published_ms_ = started_ms;
  // The socket's own drop count, read now, covers every drop before started_ms (the count each
  // datagram carries stops at the last one queued, and can miss drops after it).
  uint32_t meminfo[SK_MEMINFO_VARS] = {};
  socklen_t length = sizeof(meminfo);
  uint64_t kernel_drops = last_kernel_drops_;
  if (getsockopt(socket_.fd(), SOL_SOCKET, SO_MEMINFO, meminfo, &length) == 0 &&
      length > SK_MEMINFO_DROPS * sizeof(uint32_t)) {
    kernel_drops = meminfo[SK_MEMINFO_DROPS];
  }
  const uint64_t ring_drops = EngineStats::get(counters_, static_cast<uint32_t>(ReceiverCounter::kRingDrops));
  watermark_.publish(started_ms, kernel_drops + ring_drops);
  EngineStats::set(counters_, ReceiverCounter::kWatermarkMs, started_ms);
}

}  // namespace heartwatch
