// A receiver thread: drains its socket (how several share one port: see Engine) with recvmmsg,
// parses each datagram, keys it, and hands it to the worker that owns the key through that
// pair's SPSC ring.
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "core/engine/engine_config.h"
#include "core/engine/engine_stats.h"
#include "core/engine/shard_message.h"
#include "core/engine/wake_signal.h"
#include "core/net/udp_socket.h"
#include "core/net/uring_reader.h"
#include "core/ring/spsc_ring.h"

namespace heartwatch {

// Receive buffers. Each datagram of a batch lands in its own slot, which holds every common
// heartbeat (28 header bytes plus a small payload); the rest of a longer one, up to the largest
// UDP datagram, goes on into one spill buffer that every slot of the batch shares, as the second
// iovec. So small datagrams stay packed in kReceiveSlotBytes each and cost nothing more, and any
// valid v1 size (up to 65,479 payload bytes) arrives whole in length and header: msg_len is its
// true length, never truncated. When several datagrams of one batch spill, each overwrites the
// spill of the one before, so only the batch's last spilled datagram keeps the bytes past its
// slot; v1 reads nothing there (the payload is opaque and kept nowhere), so every one of them is
// parsed exactly. A check that must read those bytes (an AUTH tag over a long payload) has them
// only for that last one. Per receiver: batch_size x 2 KiB of slots plus one 64 KiB spill.
inline constexpr size_t kReceiveSlotBytes = 2048;
inline constexpr size_t kReceiveSpillBytes = 65536 - kReceiveSlotBytes;
// Pause after a batch under a quarter full, so batches grow with the load (at most this much
// added latency per heartbeat).
inline constexpr long kCoalesceMicros = 200;
// Longest an io_uring receiver waits before it looks at its stop flag again, as recvmmsg does
// with the socket's receive timeout.
inline constexpr int kUringWaitMillis = 100;

class UdpReceiver {
 public:
  // `rings[w]` and `wake[w]` belong to worker w.
  // Runs on: JS thread.
  UdpReceiver(uint32_t index, const EngineConfig& config, UdpSocket socket,
              std::vector<SpscRing<ShardMessage>*> rings, std::vector<WakeSignal*> wake,
              CounterLine& counters, int cpu);
  ~UdpReceiver();
  UdpReceiver(const UdpReceiver&) = delete;
  UdpReceiver& operator=(const UdpReceiver&) = delete;

  // Runs on: JS thread.
  void start();
  // The backend this receiver reads with, resolved from the configured one at construction:
  // kAuto becomes kIoUring where the kernel allowed it, else kRecvmmsg.
  ReceiveBackend backend() const noexcept { return uring_ ? ReceiveBackend::kIoUring : ReceiveBackend::kRecvmmsg; }
  // One recvmmsg (blocking up to the socket's receive timeout), or one io_uring wait (up to
  // kUringWaitMillis), and the dispatch of what it got.
  // Returns the number of datagrams taken. The thread loops on this; benchmarks call it inline.
  // Runs on: receiver thread.
  uint32_t receive_batch();
  // Asks the thread to stop and wakes it from recvmmsg; join() waits for it.
  // Runs on: JS thread.
  void request_stop() noexcept;
  void join();
  // Closes the socket, so a stopped engine holds no port; only after join(). An io_uring ring
  // holds the socket as long as its request lives: the thread ended that request as it stopped;
  // cancel() here covers a receiver driven inline, without its thread.
  // Runs on: JS thread.
  void close_socket() noexcept {
    if (uring_) uring_->cancel();
    socket_.close();
  }

 private:
  // Runs on: receiver thread.
  void run();
  // Parses and shards `count` received datagrams, then pushes each worker's share at once.
  // Runs on: receiver thread.
  void dispatch(uint32_t count);
  // Points every recvmmsg header at its slot, source and control buffer, once.
  // Runs on: JS thread (construction).
  void prepare_headers() noexcept;
  // receive_batch() for the io_uring backend.
  // Runs on: receiver thread.
  uint32_t receive_uring_batch();
  // Sleeps kCoalesceMicros after a thin batch (see receive_batch()).
  // Runs on: receiver thread.
  void coalesce(uint32_t received) const noexcept;
  // What a batch dropped before staging, counted once per batch.
  struct BatchTally {
    uint64_t malformed = 0;
    uint64_t auth_unsupported = 0;
  };
  // Parses and keys one datagram, whichever backend received it, and stages it for its worker.
  // Runs on: receiver thread.
  void stage(const uint8_t* data, size_t length, bool truncated, const sockaddr_storage& source,
             BatchTally& tally);
  // Pushes each worker's staged share at once, wakes it, and counts the batch.
  // Runs on: receiver thread.
  void push_staged(uint32_t count, const BatchTally& tally);

  uint32_t index_;
  IdentityMode identity_;
  uint32_t batch_size_;
  bool spin_;  // lowest latency: never pause between batches
  UdpSocket socket_;
  std::vector<SpscRing<ShardMessage>*> rings_;
  std::vector<WakeSignal*> wake_;
  CounterLine& counters_;
  int cpu_;
  std::atomic<bool> stop_{false};
  std::thread thread_;

  // recvmmsg state, reused for every batch: no allocation per datagram.
  std::vector<mmsghdr> messages_;
  std::vector<iovec> iovecs_;
  std::vector<sockaddr_storage> sources_;
  std::unique_ptr<uint8_t[]> datagrams_;  // batch_size_ slots of kReceiveSlotBytes
  std::unique_ptr<uint8_t[]> spill_;      // kReceiveSpillBytes, the second iovec of every slot
  std::unique_ptr<uint8_t[]> control_;
  size_t control_stride_;
  uint32_t filled_headers_ = 0;  // headers the last recvmmsg wrote lengths into
  std::vector<ShardMessage> staged_;      // worker w's share at [w * batch_size_, ...)
  std::vector<uint32_t> staged_counts_;
  uint32_t last_kernel_drops_ = 0;
  // The io_uring backend: null with recvmmsg. Attached to the thread that first receives.
  std::unique_ptr<UringReader> uring_;
  std::vector<ReceivedDatagram> received_;  // batch_size_ views into uring_'s buffers
  bool uring_attached_ = false;
};

}  // namespace heartwatch
