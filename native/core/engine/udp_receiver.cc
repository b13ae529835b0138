#include "core/engine/udp_receiver.h"

#include <netinet/in.h>
#include <time.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "core/common/current_thread.h"
#include "core/common/system_error.h"
#include "core/engine/heartbeat_intake.h"

namespace heartwatch {

static_assert(kUringPayloadRoom >= kReceiveSlotBytes, "both backends hold the same datagram bytes");

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
      cpu_(cpu),
      messages_(config.batch_size),
      iovecs_(2 * static_cast<size_t>(config.batch_size)),
      sources_(config.batch_size),
      datagrams_(new uint8_t[kReceiveSlotBytes * config.batch_size]),
      spill_(new uint8_t[kReceiveSpillBytes]),
      control_stride_(CMSG_SPACE(sizeof(uint32_t))),
      staged_(static_cast<size_t>(config.batch_size) * rings_.size()),
      staged_counts_(rings_.size(), 0) {
  control_.reset(new uint8_t[control_stride_ * config.batch_size]);
  prepare_headers();
  if (config.receive_backend != ReceiveBackend::kRecvmmsg) {
    int error = 0;
    const char* call = "";
    uring_ = UringReader::open(socket_.fd(), batch_size_, kUringBufferCount, error, call);
    if (!uring_ && config.receive_backend == ReceiveBackend::kIoUring) {
      throw SystemError(error, call, "(receiveBackend 'io_uring': the kernel or a seccomp policy refused io_uring; 'auto' falls back to recvmmsg)");
    }
    if (uring_) received_.resize(config.batch_size);
  }
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
}

void UdpReceiver::join() {
  if (thread_.joinable()) thread_.join();
}

void UdpReceiver::run() {
  name_and_pin_current_thread("hw-rx-" + std::to_string(index_), cpu_);
  while (!stop_.load(std::memory_order_relaxed)) receive_batch();
  if (uring_attached_) uring_->cancel();
}

void UdpReceiver::prepare_headers() noexcept {
  for (uint32_t i = 0; i < batch_size_; ++i) {
    iovecs_[2 * i] = {datagrams_.get() + i * kReceiveSlotBytes, kReceiveSlotBytes};
    iovecs_[2 * i + 1] = {spill_.get(), kReceiveSpillBytes};
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

uint32_t UdpReceiver::receive_batch() {
  if (uring_) return receive_uring_batch();
  // The kernel rewrote only the lengths of the headers the last call filled (msg_flags and
  // msg_len it sets on every fill): restore those, the rest stands from prepare_headers().
  for (uint32_t i = 0; i < filled_headers_; ++i) {
    messages_[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage);
    messages_[i].msg_hdr.msg_controllen = control_stride_;
  }
  const int received = recvmmsg(socket_.fd(), messages_.data(), batch_size_, MSG_WAITFORONE, nullptr);
  filled_headers_ = received > 0 ? static_cast<uint32_t>(received) : 1;
  if (received < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
    // Counted, and the thread goes on: the call that reports a pending socket error clears it.
    // The pause keeps an error that persists (ENOMEM) from spinning this thread.
    EngineStats::add(counters_, ReceiverCounter::kReceiveErrors, 1);
    const timespec pause{0, kCoalesceMicros * 1000};
    clock_nanosleep(CLOCK_MONOTONIC, 0, &pause, nullptr);
    return 0;
  }
  // Nothing (timeout, EINTR), or the wake-up of the shutdown that stop requested, which reads as
  // an empty datagram: not a peer's, so not counted.
  if (received <= 0 || stop_.load(std::memory_order_relaxed)) return 0;
  dispatch(static_cast<uint32_t>(received));
  coalesce(static_cast<uint32_t>(received));
  return static_cast<uint32_t>(received);
}

void UdpReceiver::coalesce(uint32_t received) const noexcept {
  if (!spin_ && received < batch_size_ / 4) {
    // A thin batch costs a syscall for a handful of datagrams; let the socket fill a little.
    // The pause bounds the added latency, and the socket buffer absorbs it at any rate.
    const timespec pause{0, kCoalesceMicros * 1000};
    clock_nanosleep(CLOCK_MONOTONIC, 0, &pause, nullptr);
  }
}

uint32_t UdpReceiver::receive_uring_batch() {
  if (!uring_attached_) {
    // Only the thread that attaches may use the ring (SINGLE_ISSUER); the socket stays open for
    // the reader, so a failure here is one that no retry mends: count it and wait for stop.
    const int error = uring_->attach();
    if (error != 0) {
      EngineStats::add(counters_, ReceiverCounter::kReceiveErrors, 1);
      const timespec pause{0, kUringWaitMillis * 1'000'000L};
      clock_nanosleep(CLOCK_MONOTONIC, 0, &pause, nullptr);
      return 0;
    }
    uring_attached_ = true;
  }
  const int received = uring_->wait(received_.data(), kUringWaitMillis, last_kernel_drops_);
  if (received < 0) {
    // As with recvmmsg: counted, paused, and the thread goes on.
    EngineStats::add(counters_, ReceiverCounter::kReceiveErrors, 1);
    const timespec pause{0, kCoalesceMicros * 1000};
    clock_nanosleep(CLOCK_MONOTONIC, 0, &pause, nullptr);
    return 0;
  }
  if (received == 0 || stop_.load(std::memory_order_relaxed)) {
    uring_->release();
    return 0;
  }
  BatchTally tally;
  for (int i = 0; i < received; ++i) {
    // Never truncated: the length is the datagram's own, its header in the buffer (see
    // kUringBufferBytes), as recvmmsg's slots give it.
    stage(received_[i].data, received_[i].length, false, *received_[i].source, tally);
  }
  push_staged(static_cast<uint32_t>(received), tally);
  uring_->release();
  coalesce(static_cast<uint32_t>(received));
  return static_cast<uint32_t>(received);
}

void UdpReceiver::dispatch(uint32_t count) {
  BatchTally tally;
  // SO_RXQ_OVFL carries the socket's drop count so far, on every datagram once it is non-zero:
  // the batch's last datagram has the newest.
  const msghdr& last = messages_[count - 1].msg_hdr;
  for (cmsghdr* c = CMSG_FIRSTHDR(&last); c != nullptr; c = CMSG_NXTHDR(const_cast<msghdr*>(&last), c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) {
      std::memcpy(&last_kernel_drops_, CMSG_DATA(c), sizeof(uint32_t));
    }
  }
  for (uint32_t i = 0; i < count; ++i) {
    const msghdr& header = messages_[i].msg_hdr;
    // The header is in the slot; msg_len is the whole datagram's length (see kReceiveSlotBytes).
    const uint8_t* data = datagrams_.get() + i * kReceiveSlotBytes;
    const bool truncated = (header.msg_flags & MSG_TRUNC) != 0;
    stage(data, messages_[i].msg_len, truncated, sources_[i], tally);
  }
  push_staged(count, tally);
}

void UdpReceiver::stage(const uint8_t* data, size_t length, bool truncated, const sockaddr_storage& source,
                        BatchTally& tally) {
  ShardMessage message;
  const ParseStatus status = to_shard_message(identity_, data, length, truncated, source, message);
  if (status == ParseStatus::kMalformed) {
    ++tally.malformed;
    return;
  }
  if (status == ParseStatus::kAuthUnsupported) {
    ++tally.auth_unsupported;
    return;
  }
  const uint32_t owner = shard_of(message.heartbeat.key, static_cast<uint32_t>(rings_.size()));
  staged_[static_cast<size_t>(owner) * batch_size_ + staged_counts_[owner]++] = message;
}

void UdpReceiver::push_staged(uint32_t count, const BatchTally& tally) {
  const uint32_t workers = static_cast<uint32_t>(rings_.size());
  uint64_t ring_drops = 0;
  for (uint32_t w = 0; w < workers; ++w) {
    const uint32_t staged = staged_counts_[w];
    if (staged == 0) continue;
    const size_t pushed = rings_[w]->push_batch(&staged_[static_cast<size_t>(w) * batch_size_], staged);
    ring_drops += staged - pushed;
    staged_counts_[w] = 0;
    if (pushed > 0) wake_[w]->notify();
  }

  EngineStats::add(counters_, ReceiverCounter::kReceived, count);
  EngineStats::add(counters_, ReceiverCounter::kBatches, 1);
  if (tally.malformed) EngineStats::add(counters_, ReceiverCounter::kMalformed, tally.malformed);
  if (tally.auth_unsupported) EngineStats::add(counters_, ReceiverCounter::kAuthUnsupported, tally.auth_unsupported);
  if (ring_drops) EngineStats::add(counters_, ReceiverCounter::kRingDrops, ring_drops);
  EngineStats::set(counters_, ReceiverCounter::kKernelDrops, last_kernel_drops_);
}

}  // namespace heartwatch
