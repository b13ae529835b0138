// A TCP reactor thread: one epoll loop over the connections the accept thread hands it. Each
// readable connection gets one read per loop turn (level-triggered, so a busy peer cannot starve
// the others), and a turn that found few ready pauses briefly before the next (coalesce()). The
// bytes go through the connection's FrameReader, and every complete frame becomes a ShardMessage
// (the same to_shard_message() the UDP receivers use) pushed into the worker's ring for this
// reactor. Deadlines (first frame, idle, slow frame) sit on the reactor's DeadlineWheel. TCP
// frames pass the same source allow-list and authentication as datagrams (see auth_ below).
//
// Memory per connection: a 104-byte Connection record, a 24-byte wheel node and a 4-byte slot
// in free_ids_ once the id is closed: 132 bytes plus the vectors' spare capacity (measured 119-159
// bytes, bench/README.md "TCP transport"), and no buffer. The 64 KiB read buffer is the
// thread's, a frame's payload is skipped, and a status (a payload up to max_status_bytes) wholly
// inside one read is passed on from that buffer in place. Two bounded pools, each allocated the
// first time it is needed, hold what a frame that spans reads must keep until it completes:
// - a status's bytes, in one of StatusSlotPool::kSlots slots of max_status_bytes (256 KiB at
//   the default 1 KiB, 16 MiB at the largest limit). A status that finds no slot free is refused and counted
//   (statusSlotsFull); its heartbeat still counts, and the host keeps its previous status.
// - a signed frame's hashing state, in one of kTagSlots TagSlots (~1.8 KiB: the HMAC states of
//   up to 8 keys and the tag; ~460 KiB). A connection that needs one when none is free is closed
//   (reset) and counted (authSlotsFull): its frame cannot be verified.
// So half-sent frames cannot grow memory past those bounds.
#pragma once

#include <netinet/in.h>

#include <atomic>
#include <cstdint>
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
#include "core/engine/status_slot_pool.h"
#include "core/engine/wake_signal.h"
#include "core/net/deadline_wheel.h"
#include "core/protocol/frame_reader.h"
#include "core/ring/spsc_ring.h"

namespace heartwatch {

// A peer's address as accept() gave it: 28 bytes rather than a 128-byte sockaddr_storage.
union PeerSockaddr {
  sockaddr_in v4;
  sockaddr_in6 v6;
};

// What the accept thread hands a reactor.
struct AcceptedConnection {
  int fd;
  PeerSockaddr peer;
  uint64_t ip_key;  // identity_key(kIp) of the peer: the per-IP cap's key
};

class TcpReactor {
 public:
  // `rings[w]` and `wake[w]` belong to worker w.
  // Runs on: JS thread.
  TcpReactor(uint32_t index, const EngineConfig& config, std::vector<SpscRing<ShardMessage>*> rings,
             std::vector<WakeSignal*> wake, CounterLine& counters, int cpu);
  ~TcpReactor();
  TcpReactor(const TcpReactor&) = delete;
  TcpReactor& operator=(const TcpReactor&) = delete;

  // Runs on: JS thread.
  void start();
  // Passes heartbeat statuses to the workers through `rings` (one per worker); a status that
  // spans reads is gathered in a StatusSlotPool slot of `max_status_bytes`.
  // Before start(). Runs on: JS thread.
  void carry_statuses(std::vector<ByteRing*> rings, uint32_t max_status_bytes) {
    max_status_bytes_ = max_status_bytes;
    status_slots_.set_slot_bytes(max_status_bytes);
    statuses_.attach(std::move(rings), max_status_bytes);
  }
  void request_stop() noexcept;
  void join();
  // Replaces the key ring (hw.setKeys()): the reactor takes it after its next read() that
  // returns bytes, before handling them (AuthGate's ordering), so every frame sent after this
  // returns is checked with the new keys, except a signed frame whose header had already arrived
  // (checked with the keys in force then).
  // Runs on: JS thread.
  void set_keys(std::unique_ptr<KeyRing> ring) noexcept { auth_.offer(std::move(ring)); }

  // The accept thread's side: push a connection, then notify().
  // Runs on: accept thread.
  bool hand(const AcceptedConnection& connection) noexcept { return handoff_.try_push(connection); }
  void notify() noexcept;
  // The ip_key of each connection this reactor closed, for the accept thread's counts.
  // Runs on: accept thread.
  size_t take_closed(uint64_t* out, size_t max) noexcept { return closed_.pop_batch(out, max); }
  // What this reactor promises the workers about its connections (receive_watermark.h).
  ReceiveWatermark& watermark() noexcept { return watermark_; }

 private:
  // Times are the low 32 bits of the reactor's monotonic ms, read as ages with wrapping
  // arithmetic (age_ms()): each one matters only while its deadline is pending, under 2^24 ms,
  // after which the wheel closes the connection or the time is renewed. Fields ordered for
  // no padding: 96 bytes.
  struct Connection {
    FrameReader reader;
    int fd;
    uint32_t opened_ms;
    uint32_t last_frame_ms;     // valid once `framed`
    uint32_t frame_started_ms;  // valid while reader.mid_frame()
    PeerSockaddr peer;
    uint16_t tag_slot;     // kNoTagSlot, or the TagSlot hashing its signed frame in progress
    uint16_t status_slot;  // StatusSlotPool::kNone, kStatusRefused, or the slot holding its status so far
    bool framed;           // a complete frame has arrived
    bool carried_authenticated;  // carried_key's frame was authenticated
    uint64_t ip_key;
    // The host of the last frame passed on to a worker (0: none yet): the one host a connection
    // carries, whose worker hears of the close (tcp.closeMeansDown).
    uint64_t carried_key;
  };
  // A signed frame's tag as its bytes arrive across reads.
  struct TagSlot {
    KeyRing::PartialTag partial;
    uint8_t tag[kAuthTagBytes];
  };
  static constexpr uint16_t kNoTagSlot = 0xffff;
  static constexpr uint16_t kTagSlots = 256;
  // The status of the frame in progress found no slot free: its beat goes on without it.
  static constexpr uint16_t kStatusRefused = 0xfffe;
  static_assert(StatusSlotPool::kSlots < kStatusRefused && StatusSlotPool::kNone == 0xffff);

  // Runs on: reactor thread, for all the private functions below.
  void run();
  // Sleeps kCoalesceMicros (the UDP receiver's pause) after a thin turn, so turns grow with load.
  void coalesce() const noexcept;
  void adopt(uint64_t now_ms);
  // Returns whether the connection was read empty (or closed).
  bool read_ready(uint32_t id, uint64_t now_ms);
  void frames(uint32_t id, const uint8_t* data, size_t length, uint64_t now_ms);
  // The frame that next() completed from [begin, end), taken `offset` bytes into it before this
  // read: checked, and staged for its worker unless dropped (counted in `dropped`).
  void deliver(Connection& connection, const uint8_t* begin, const uint8_t* end, uint32_t offset,
               const ParsedHeartbeat& parsed, ParseStatus status, const sockaddr_storage& source,
               uint64_t* dropped);
  bool admit(AuthVerdict verdict, uint64_t* dropped) const noexcept;
  // The verdict on the frame that next() completed from [begin, end); `offset`: the bytes of it
  // taken before this read.
  AuthVerdict check_frame(Connection& connection, const uint8_t* begin, const uint8_t* end, uint32_t offset,
                          const ParsedHeartbeat& parsed, ParseStatus status) noexcept;
  // The frame in progress goes on in a later read: a signed one keeps hashing in a TagSlot.
  // Returns false when it needed a slot and none was free (the connection is then closed).
  bool follow_tag(uint32_t id, const uint8_t* begin, const uint8_t* end, uint32_t offset);
  void start_tag(TagSlot& slot, const FrameReader& reader) const noexcept;
  static void feed_tag(TagSlot& slot, const FrameReader& reader, const uint8_t* begin, const uint8_t* end,
                       uint32_t offset) noexcept;
  void release_tag(Connection& connection) noexcept;
  // The frame in progress goes on in a later read: its status bytes in [begin, end) are kept in
  // a StatusSlotPool slot (taken with its first payload byte), or refused when none is free.
  void hold_status(Connection& connection, const uint8_t* begin, const uint8_t* end, uint32_t offset);
  // Notes the complete frame's status in `message`: from [begin, ...) in place, after the bytes
  // held in its slot when it spanned reads.
  void carry_status(const Connection& connection, ShardMessage& message, uint32_t size, const uint8_t* begin,
                    uint32_t offset) noexcept;
  void release_status(Connection& connection) noexcept;
  void stage(const ShardMessage& message);
  void flush(uint32_t worker);
  void expire(uint32_t id, uint64_t now_ms);
  uint64_t deadline_of(const Connection& connection, uint64_t now_ms) const noexcept;
  // How long ago `stamp` (a Connection time) was, at `now_ms`.
  static uint32_t age_ms(uint32_t stamp, uint64_t now_ms) noexcept {
    return static_cast<uint32_t>(now_ms) - stamp;
  }
  // Every close but the shutdown's (close_all) goes through here.
  void close_connection(uint32_t id, bool reset);
  // With tcp.closeMeansDown, tells the carried host's worker the connection closed.
  void report_close(const Connection& connection);
  void close_all() noexcept;

  uint32_t index_;
  IdentityMode identity_;
  TcpConfig tcp_;
  // Authentication over TCP: the same AuthGate rules and verdicts as a datagram. A frame wholly
  // inside one read is verified in place; one that spans reads is hashed as it arrives, in a
  // TagSlot taken when its header completes (under the ring in force then), or in scratch_ when
  // its header completes in the read that completes it. Authenticated frames reach the worker
  // flagged so, and its replay protection applies. The `allow` list applies to the peer's address
  // like a datagram's source, before any hashing.
  AuthGate auth_;
  SourceAllowList allow_;
  std::vector<SpscRing<ShardMessage>*> rings_;
  std::vector<WakeSignal*> wake_;
  CounterLine& counters_;
  int cpu_;
  bool spin_;  // lowest latency: never pause between turns
  int epoll_fd_ = -1;
  int event_fd_ = -1;
  ReceiveWatermark watermark_;
  std::atomic<bool> stop_{false};
  std::thread thread_;

  SpscRing<AcceptedConnection> handoff_;
  SpscRing<uint64_t> closed_;
  std::vector<Connection> connections_;
  std::vector<uint32_t> free_ids_;
  DeadlineWheel wheel_;
  std::unique_ptr<uint8_t[]> read_buffer_;
  std::vector<ShardMessage> staged_;  // worker w's share at [w * kStageFrames, ...)
  std::vector<uint32_t> staged_counts_;
  StatusCarrier statuses_;
  uint32_t max_status_bytes_ = 0;
  StatusSlotPool status_slots_;
  std::unique_ptr<TagSlot[]> tag_slots_;  // kTagSlots of them once a signed frame spans reads
  std::vector<uint32_t> free_tag_slots_;
  TagSlot scratch_;
};

}  // namespace heartwatch
