// A receiver thread: drains its socket (how several share one port: see Engine) with recvmmsg or
// a multishot io_uring recvmsg (config.receive_backend), runs each datagram through the one
// per-datagram path both share (allow-list, parse, auth and replay tag, key, shard, status), and
// hands it to the worker that owns the key through that pair's SPSC ring.
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
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
#include "core/net/uring_reader.h"
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
// io_uring: a socket holding this many bytes after a read holds more than one pass of the
// kernel's multishot (about 32 datagrams on Linux 6.18; a small datagram takes 832 bytes of socket
// memory on loopback), so the next collect() asks for half the buffers: one io_uring_enter then
// takes a burst of up to all of them rather than one pass. Without a backlog it asks for none,
// since a wait the socket cannot fill costs ~5 us of kernel time (its timed-wait path), more than
// the calls it would save.
inline constexpr uint64_t kUringBacklogBytes = 32 * 1024;
// Whether receiveBackend 'auto' reads with io_uring where the kernel allows it: it drains more
// datagrams per CPU second than recvmmsg (bench/README.md, "Receive backends").
inline constexpr bool kAutoPrefersIoUring = true;

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
  // The backend this receiver reads with, resolved at construction: kAuto becomes kIoUring
  // where the kernel allowed it (see kAutoPrefersIoUring), else kRecvmmsg.
  ReceiveBackend backend() const noexcept { return uring_ ? ReceiveBackend::kIoUring : ReceiveBackend::kRecvmmsg; }
  // Why io_uring was not used where kAuto asked for it ("io_uring_setup: EPERM"), else empty.
  const std::string& fallback_reason() const noexcept { return fallback_reason_; }
  // One read that does not wait (a recvmmsg, or an io_uring_enter and its completions), the
  // dispatch of what it got, and the watermark it earned; on an empty socket, a wait (at most
  // kParkMillis) for datagrams or a worker's kick.
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

  // Closes the socket, so a stopped engine holds no port; only after join(). An io_uring ring
  // holds the socket as long as its request lives: the thread ended that request as it stopped;
  // cancel() here covers a receiver driven inline, on the thread that calls this.
  // Runs on: JS thread.
  void close_socket() noexcept {
    if (uring_ && uring_attached_) uring_->cancel();
    socket_.close();
  }

 private:
  // Runs on: receiver thread.
  void run();
  // One datagram as either backend received it: its first `head_size` bytes at `head` (the
  // header always), the rest, if any, at `rest`.
  struct DatagramView {
    const uint8_t* head;
    size_t head_size;
    const uint8_t* rest;
    size_t length;  // the datagram's true length
    bool truncated;
    const sockaddr_storage* source;
  };
  // What a batch dropped before staging, counted once per batch.
  struct BatchTally {
    uint64_t verdicts[static_cast<size_t>(AuthVerdict::kCount)] = {};
    uint64_t not_allowed = 0;
  };
  // Picks the backend: opens the io_uring reader where config asks for it.
  // Runs on: JS thread (construction).
  void open_backend(ReceiveBackend wanted);
  // Points every recvmmsg header at its slot, spill region, source and control buffer, once.
  // Runs on: JS thread (construction).
  void build_headers() noexcept;
  // receive_batch() for each backend.
  // Runs on: receiver thread.
  uint32_t receive_recvmmsg_batch();
  uint32_t receive_uring_batch();
  // Runs the recvmmsg batch of `count` datagrams through stage(), then push_staged().
  // Runs on: receiver thread.
  void dispatch(uint32_t count);
  // The per-datagram path both backends run: allow-list, parse, auth and replay tag, key, shard,
  // status; the message is staged for its worker.
  // Inlined into both backends' loops: a call per datagram costs more than the copy of its code.
  // Runs on: receiver thread.
  [[gnu::always_inline]] inline void stage(const DatagramView& datagram, BatchTally& tally);
  // Pushes each worker's staged share at once, wakes it, and counts the batch.
  // Runs on: receiver thread.
  void push_staged(uint32_t count, const BatchTally& tally);
  const uint8_t* whole_datagram(const DatagramView& datagram) noexcept;
  // Sleeps kCoalesceMicros after a thin batch (see receive_recvmmsg_batch()).
  // Runs on: receiver thread.
  void coalesce(uint32_t received) const noexcept;
  // Adds one batch's drop counts to this receiver's counters.
  // Runs on: receiver thread.
  void count_verdicts(const BatchTally& tally) noexcept;
  // The socket's queued bytes and drop count (SO_MEMINFO); false where the kernel said nothing.
  // Runs on: receiver thread.
  bool socket_queue(uint64_t& queued_bytes, uint64_t& kernel_drops) const noexcept;
  // Publishes that everything that reached the socket before `started_ms` is in the rings, with
  // the loss count as of then.
  // Runs on: receiver thread.
  void publish_watermark(uint64_t started_ms);
  void publish_watermark(uint64_t started_ms, uint64_t kernel_drops);
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
  bool allow_all_;  // allow_ is empty: no source is checked
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
  // The io_uring backend: null with recvmmsg. Attached to the thread that first receives.
  std::unique_ptr<UringReader> uring_;
  std::vector<ReceivedDatagram> received_;  // batch_size_ views into uring_'s buffers
  bool uring_attached_ = false;
  bool uring_backlog_ = false;  // io_uring: the socket held a backlog (kUringBacklogBytes)
  uint64_t queue_checked_ms_ = 0;  // the last millisecond the socket's queue was read
  std::string fallback_reason_;
  StatusCarrier statuses_;
  ReceiveWatermark watermark_;
  uint64_t published_ms_ = 0;
  std::function<void()> on_failure_;
  bool failed_ = false;
};

}  // namespace heartwatch
