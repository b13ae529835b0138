// A receiver thread: drains its socket (how several share one port: see Engine) with recvmmsg,
// parses each datagram, keys it, and hands it to the worker that owns the key through that
// pair's SPSC ring.
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "core/auth/auth_gate.h"
#include "core/auth/source_allow_list.h"
#include "core/engine/engine_config.h"
#include "core/engine/engine_stats.h"
#include "core/engine/receive_watermark.h"
#include "core/engine/shard_message.h"
#include "core/engine/status_carrier.h"
#include "core/engine/wake_signal.h"
#include "core/net/udp_socket.h"
#include "core/ring/spsc_ring.h"

namespace heartwatch {

// Receive buffers. Each datagram of a batch lands in its own slot, which holds every common
// heartbeat (28 header bytes plus a small payload); the rest of a longer one, up to the largest
// UDP datagram, goes on into that slot's own spill region, as the second iovec. So small
// datagrams stay packed in kReceiveSlotBytes each, and any valid v1 size (up to 65,479 payload
// bytes) arrives whole: msg_len is its true length, never truncated, and every datagram of a
// batch keeps all its bytes, which an AUTH tag over a long payload needs. The spill regions are
// one allocation of batch_size x kReceiveSpillBytes that small datagrams never touch, so the
// kernel backs only the pages long datagrams were written to: it costs virtual memory, not
// resident memory, for a fleet of small heartbeats. A long datagram is joined into one scratch
// buffer before its tag is checked.
inline constexpr size_t kReceiveSlotBytes = 2048;
inline constexpr size_t kReceiveSpillBytes = 65536 - kReceiveSlotBytes;
// Pause after a batch under a quarter full, so batches grow with the load (at most this much
// added latency per heartbeat).
inline constexpr long kCoalesceMicros = 200;
// Longest a receiver waits on an empty socket before it looks again (and re-publishes its
// watermark); workers kick it sooner when they need a fresher one.
inline constexpr int kParkMillis = 100;

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

  // Passes heartbeat statuses to the workers through `rings` (one per worker); before start().
  // Runs on: JS thread.
  void carry_statuses(std::vector<ByteRing*> rings, uint32_t max_status_bytes) {
    statuses_.attach(std::move(rings), max_status_bytes);
  }
  // Runs on: JS thread.
  void start();
  // The backend this receiver reads with: recvmmsg, whatever was configured. The io_uring reader
  // (core/net/uring_reader.h) does not yet publish the receive watermark nor run the allow-list
  // and auth checks, so the constructor refuses kIoUring and kAuto resolves to recvmmsg.
  ReceiveBackend backend() const noexcept { return ReceiveBackend::kRecvmmsg; }
  // One recvmmsg that does not wait, the dispatch of what it got, and the watermark it earned;
  // on an empty socket, a wait (at most kParkMillis) for datagrams or a worker's kick.
  // Returns the number of datagrams taken. The thread loops on this; benchmarks call it inline.
  // Runs on: receiver thread.
  uint32_t receive_batch();
  // What this receiver tells workers about its socket; workers watch it (ShardWorker::watch).
  ReceiveWatermark& watermark() noexcept { return watermark_; }
  // Called once, from the receiver thread, if it stops for good on an error (kFailedErrno says
  // which). Its watermark stops there, so expiry is held: downs wait instead of being falsified.
  // Runs on: JS thread, before start().
  void on_failure(std::function<void()> callback) { on_failure_ = std::move(callback); }
  // Asks the thread to stop and wakes it from recvmmsg; join() waits for it.
  // Runs on: JS thread.
  void request_stop() noexcept;
  void join();
  // Replaces the key ring from the next batch on (see AuthGate for the ordering).
  // Runs on: JS thread.
  void set_keys(std::unique_ptr<KeyRing> ring) noexcept { auth_.offer(std::move(ring)); }

  // Closes the socket, so a stopped engine holds no port; only after join().
  // Runs on: JS thread.
  void close_socket() noexcept { socket_.close(); }

 private:
  // Runs on: receiver thread.
  void run();
  // Parses and shards `count` received datagrams, then pushes each worker's share at once.
  // Runs on: receiver thread.
  void dispatch(uint32_t count);
  const uint8_t* whole_datagram(uint32_t i) noexcept;
  // Adds one batch's drop counts (indexed by AuthVerdict) to this receiver's counters.
  // Runs on: receiver thread.
  void count_verdicts(const uint64_t* verdicts, uint64_t not_allowed) noexcept;
  // Publishes that everything that reached the socket before `started_ms` is in the rings.
  // Runs on: receiver thread.
  void publish_watermark(uint64_t started_ms);
  // Handles a failed read: an empty socket publishes the watermark and parks; a broken socket
  // fails the receiver; anything else is counted in kReceiveErrors and retried after a pause.
  // Runs on: receiver thread.
  void receive_failed(int error, uint64_t started_ms) noexcept;
  // Records `error`, stops the loop, and reports it.
  // Runs on: receiver thread.
  void fail(int error) noexcept;

  uint32_t index_;
  IdentityMode identity_;
  uint32_t batch_size_;
  bool spin_;  // lowest latency: never pause between batches
  UdpSocket socket_;
  std::vector<SpscRing<ShardMessage>*> rings_;
  std::vector<WakeSignal*> wake_;
  CounterLine& counters_;
  AuthGate auth_;
  SourceAllowList allow_;
  int cpu_;
  std::atomic<bool> stop_{false};
  std::thread thread_;

  // recvmmsg state, reused for every batch: no allocation per datagram.
  std::vector<mmsghdr> messages_;
  std::vector<iovec> iovecs_;
  std::vector<sockaddr_storage> sources_;
  std::unique_ptr<uint8_t[]> datagrams_;  // batch_size_ slots of kReceiveSlotBytes
  std::unique_ptr<uint8_t[]> spill_;      // batch_size_ spill regions of kReceiveSpillBytes
  std::unique_ptr<uint8_t[]> joined_;     // one whole long datagram, for its tag check
  std::unique_ptr<uint8_t[]> control_;
  size_t control_stride_;
  std::vector<ShardMessage> staged_;      // worker w's share at [w * batch_size_, ...)
  std::vector<uint32_t> staged_counts_;
  uint32_t last_kernel_drops_ = 0;
  StatusCarrier statuses_;
  ReceiveWatermark watermark_;
  uint64_t published_ms_ = 0;
  std::function<void()> on_failure_;
  bool failed_ = false;
};

}  // namespace heartwatch
