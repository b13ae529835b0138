#include "core/engine/tcp_reactor.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <string>

#include "core/common/current_thread.h"
#include "core/common/monotonic_clock.h"
#include "core/common/system_error.h"
#include "core/engine/heartbeat_intake.h"
#include "core/engine/udp_receiver.h"

namespace heartwatch {
namespace {

constexpr size_t kReadBytes = 64 * 1024;  // one read per ready connection per loop turn
constexpr size_t kStageFrames = 512;      // frames staged per worker before a push
constexpr int kMaxEvents = 256;
constexpr uint64_t kWakeToken = ~uint64_t{0};
constexpr uint64_t kKickToken = ~uint64_t{0} - 1;  // a worker asks for a fresher watermark
constexpr size_t kHandoffCapacity = 4096;
// With no deadline armed the loop still wakes now and then; a stop request wakes it at once.
constexpr int kIdlePollMs = 1000;
// A turn that found fewer ready descriptors than this is thin: the loop pauses before the next.
constexpr int kThinTurn = kMaxEvents / 4;

}  // namespace

TcpReactor::TcpReactor(uint32_t index, const EngineConfig& config,
                       std::vector<SpscRing<ShardMessage>*> rings, std::vector<WakeSignal*> wake,
                       CounterLine& counters, int cpu)
    : index_(index),
      identity_(config.identity),
      tcp_(config.tcp),
      // TCP frames are v1 or break the stream, so no plain pings here.
      auth_(std::make_unique<KeyRing>(config.auth_keys), config.auth_required, false),
      allow_(config.allow),
      rings_(std::move(rings)),
      wake_(std::move(wake)),
      counters_(counters),
      cpu_(cpu),
      spin_(config.spin),
      handoff_(kHandoffCapacity),
      // Every connection closes once, and the accept thread never counts more open than
      // max_connections, so this ring cannot overflow.
      closed_(config.tcp.max_connections),
      wheel_(monotonic_ms_floor()),
      read_buffer_(new uint8_t[kReadBytes]),
      staged_(kStageFrames * rings_.size()),
      staged_counts_(rings_.size(), 0) {
  // The per-connection memory the docs promise: this record plus a 24-byte wheel node.
  static_assert(sizeof(Connection) <= 104);
  // The times' wrapping ages hold while every pending deadline is this far off at most.
  static_assert(kMaxOptionTimeoutMs < (uint32_t{1} << 31));
  // And what the docs promise for signed frames that span reads: ~1.8 KiB a slot.
  static_assert(sizeof(TagSlot) <= 1824);
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) throw SystemError(errno, "epoll_create1", "TCP reactor");
  event_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (event_fd_ < 0) {
    close(epoll_fd_);
    throw SystemError(errno, "eventfd", "TCP reactor");
  }
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.u64 = kWakeToken;
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, event_fd_, &event);
  event.data.u64 = kKickToken;
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, watermark_.kick_fd(), &event);
}

TcpReactor::~TcpReactor() {
  request_stop();
  join();
  close_all();
  close(event_fd_);
  close(epoll_fd_);
}

void TcpReactor::close_all() noexcept {
  for (Connection& connection : connections_) {
    if (connection.fd >= 0) close(connection.fd);
    connection.fd = -1;
  }
  // Connections handed over but never adopted.
  AcceptedConnection pending;
  while (handoff_.pop_batch(&pending, 1) == 1) close(pending.fd);
}

void TcpReactor::start() { thread_ = std::thread([this] { run(); }); }

void TcpReactor::request_stop() noexcept {
  stop_.store(true, std::memory_order_relaxed);
  notify();
}

void TcpReactor::join() {
  if (thread_.joinable()) thread_.join();
}

void TcpReactor::notify() noexcept {
  const uint64_t one = 1;
  [[maybe_unused]] const ssize_t written = write(event_fd_, &one, sizeof(one));
}

void TcpReactor::run() {
  name_and_pin_current_thread("hw-tcp-" + std::to_string(index_), cpu_);
  epoll_event events[kMaxEvents];
  while (!stop_.load(std::memory_order_relaxed)) {
    const int timeout = wheel_.size() > 0 ? static_cast<int>(DeadlineWheel::kSlotMs) : kIdlePollMs;
    // Read before the wait: every connection with bytes unread at this moment is reported by it.
    const uint64_t started = monotonic_ms_floor();
    watermark_.set_parked(true);
    const int ready = epoll_wait(epoll_fd_, events, kMaxEvents, timeout);
    watermark_.set_parked(false);
    const uint64_t now = monotonic_ms_floor();
    bool drained = ready >= 0 && ready < kMaxEvents;
    for (int i = 0; i < ready; ++i) {
      const uint64_t token = events[i].data.u64;
      if (token == kWakeToken || token == kKickToken) {
        uint64_t drained_count;
        const int fd = token == kWakeToken ? event_fd_ : watermark_.kick_fd();
        [[maybe_unused]] const ssize_t got = read(fd, &drained_count, sizeof(drained_count));
        continue;
      }
      drained = read_ready(static_cast<uint32_t>(token), now) && drained;
    }
    for (uint32_t w = 0; w < rings_.size(); ++w) flush(w);
    if (drained) {
      const uint32_t drops = static_cast<uint32_t>(TcpReactorCounter::kRingDrops);
      watermark_.publish(started, EngineStats::get(counters_, drops));
    }
    adopt(now);
    wheel_.advance(now, [&](uint32_t id) { expire(id, now); });
    // The closes the wheel just made (tcp.closeMeansDown) leave now, not with a later turn's
    // frames: with no other connection busy, that turn may be a whole idle poll away.
    for (uint32_t w = 0; w < rings_.size(); ++w) flush(w);
    if (!spin_ && drained && ready > 0 && ready < kThinTurn) coalesce();
  }
  // Stopping ends every connection now, so peers see the server go instead of a silent socket.
  close_all();
}

// With one frame per connection now and then, a turn that woke for a few descriptors paid a
// wake-up and an epoll_wait for a few frames (a third of the reactor's time on a fleet beating
// once a second). Pausing as the UDP receiver does after a thin batch lets the next turn find
// more ready at once. Frames wait at most kCoalesceMicros more; the watermark only moves later.
// A turn that left bytes unread (a full read buffer) does not pause.
void TcpReactor::coalesce() const noexcept {
  const timespec pause{0, kCoalesceMicros * 1000};
  clock_nanosleep(CLOCK_MONOTONIC, 0, &pause, nullptr);
}

void TcpReactor::adopt(uint64_t now_ms) {
  AcceptedConnection accepted;
  while (handoff_.pop_batch(&accepted, 1) == 1) {
    uint32_t id;
    if (!free_ids_.empty()) {
      id = free_ids_.back();
      free_ids_.pop_back();
    } else {
      id = static_cast<uint32_t>(connections_.size());
      connections_.emplace_back();
    }
    Connection& connection = connections_[id];
    connection = Connection{};
    connection.tag_slot = kNoTagSlot;
    connection.status_slot = StatusSlotPool::kNone;
    connection.fd = accepted.fd;
    connection.opened_ms = static_cast<uint32_t>(now_ms);
    connection.ip_key = accepted.ip_key;
    connection.peer = accepted.peer;
    epoll_event event{};
    event.events = EPOLLIN | EPOLLRDHUP;
    event.data.u64 = id;
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, accepted.fd, &event) != 0) {
      close_connection(id, true);
      continue;
    }
    wheel_.arm(id, deadline_of(connection, now_ms));
  }
}

bool TcpReactor::read_ready(uint32_t id, uint64_t now_ms) {
  if (id >= connections_.size() || connections_[id].fd < 0) return true;  // closed earlier this turn
  const ssize_t got = read(connections_[id].fd, read_buffer_.get(), kReadBytes);
  if (got > 0) {
    auth_.refresh();  // see set_keys(): one relaxed load unless a new ring waits
    frames(id, read_buffer_.get(), static_cast<size_t>(got), now_ms);
    // A full buffer may have left bytes behind; a short read took all the socket held.
    return static_cast<size_t>(got) < kReadBytes;
  }
  if (got < 0 && errno == EAGAIN) return true;
  if (got < 0 && errno == EINTR) return false;
  // End of stream or a reset: the peer is gone. Counted once the accept thread can see the freed
  // place (close_connection() hands it the close), so a reader of the count may rely on it.
  close_connection(id, false);
  EngineStats::add(counters_, TcpReactorCounter::kClosedByPeer, 1);
  return true;
}

void TcpReactor::frames(uint32_t id, const uint8_t* data, size_t length, uint64_t now_ms) {
  Connection& connection = connections_[id];
  sockaddr_storage source{};
  std::memcpy(&source, &connection.peer, sizeof(connection.peer));
  const uint8_t* end = data + length;
  const bool was_mid_frame = connection.reader.mid_frame();
  uint64_t complete = 0;
  // Indexed by TcpReactorCounter: the drop and auth counters admit() adds to.
  uint64_t dropped[static_cast<size_t>(TcpReactorCounter::kCount)] = {};
  const bool allowed = allow_.allows(source);
  ParsedHeartbeat parsed;
  ParseStatus status;
  FrameReader::Result result;
  const uint8_t* begin;
  uint32_t offset;
  for (;;) {
    begin = data;
    offset = connection.reader.frame_offset();
    result = connection.reader.next(data, end, parsed, status);
    if (result != FrameReader::Result::kFrame) break;
    ++complete;
    // A peer outside `allow` is dropped before any hashing, as a datagram is before parsing.
    if (allowed) {
      deliver(connection, begin, data, offset, parsed, status, source, dropped);
    } else {
      ++dropped[static_cast<size_t>(TcpReactorCounter::kNotAllowed)];
    }
    release_status(connection);
  }
  if (complete) EngineStats::add(counters_, TcpReactorCounter::kFrames, complete);
  for (TcpReactorCounter field : {TcpReactorCounter::kAuthUnsupported, TcpReactorCounter::kUnauthenticated,
                                  TcpReactorCounter::kNotAllowed, TcpReactorCounter::kAuthFailed}) {
    const uint64_t n = dropped[static_cast<size_t>(field)];
    if (n != 0) EngineStats::add(counters_, field, n);
  }
  if (result == FrameReader::Result::kViolation) {
    EngineStats::add(counters_, TcpReactorCounter::kProtocolErrors, 1);
    close_connection(id, true);
    return;
  }
  // The bytes ran out, maybe inside a frame that goes on in the next read.
  if (allowed && !follow_tag(id, begin, end, offset)) return;
  if (allowed && statuses_.enabled()) hold_status(connection, begin, end, offset);
  if (complete) {
    connection.last_frame_ms = static_cast<uint32_t>(now_ms);
    connection.framed = true;
  }
  // A frame began in this read: the slow-frame bound runs from now.
  if (connection.reader.mid_frame() && (complete > 0 || !was_mid_frame)) {
    connection.frame_started_ms = static_cast<uint32_t>(now_ms);
  }
  wheel_.arm(id, deadline_of(connection, now_ms));
}

void TcpReactor::deliver(Connection& connection, const uint8_t* begin, const uint8_t* end, uint32_t offset,
                         const ParsedHeartbeat& parsed, ParseStatus status, const sockaddr_storage& source,
                         uint64_t* dropped) {
  const AuthVerdict verdict = check_frame(connection, begin, end, offset, parsed, status);
  if (!admit(verdict, dropped)) return;
  ShardMessage message;
  to_shard_message(identity_, status, parsed, source, verdict == AuthVerdict::kAuthenticated, message);
  connection.carried_key = message.heartbeat.key;
  connection.carried_authenticated = message.heartbeat.authenticated;
  if (statuses_.enabled() && parsed.payload_len > 0) {
    carry_status(connection, message, parsed.payload_len, begin, offset);
  }
  stage(message);
}

// Whether a complete frame goes on to its worker; what it counts for is added to `dropped`.
bool TcpReactor::admit(AuthVerdict verdict, uint64_t* dropped) const noexcept {
  auto count = [dropped](TcpReactorCounter field) { ++dropped[static_cast<size_t>(field)]; };
  switch (verdict) {
    case AuthVerdict::kPlain:
    case AuthVerdict::kAuthenticated:
      return true;
    case AuthVerdict::kUnauthenticated:
      count(TcpReactorCounter::kUnauthenticated);
      return true;
    case AuthVerdict::kRejectedUnauthenticated:
      count(TcpReactorCounter::kUnauthenticated);
      return false;
    case AuthVerdict::kAuthFailed:
      count(TcpReactorCounter::kAuthFailed);
      return false;
    case AuthVerdict::kAuthUnsupported:
      count(TcpReactorCounter::kAuthUnsupported);
      return false;
    case AuthVerdict::kMalformed:  // not from check() on a complete frame (FrameReader's kOk)
    case AuthVerdict::kCount:
      break;
  }
  return false;
}

AuthVerdict TcpReactor::check_frame(Connection& connection, const uint8_t* begin, const uint8_t* end,
                                    uint32_t offset, const ParsedHeartbeat& parsed, ParseStatus status) noexcept {
  // The whole frame is in this read (the common case): verified in place, as a datagram is. An
  // unsigned frame's verdict does not read its bytes.
  if (offset == 0 || !parsed.auth) return auth_.check(status, parsed, begin);
  TagSlot* slot = connection.tag_slot == kNoTagSlot ? nullptr : &tag_slots_[connection.tag_slot];
  if (slot == nullptr) {
    // Its header arrived in an earlier read while the server had no key.
    if (offset >= kHeartbeatHeaderBytes || !auth_.keyed()) return AuthVerdict::kAuthUnsupported;
    slot = &scratch_;  // its header completed in this read
    start_tag(*slot, connection.reader);
  }
  feed_tag(*slot, connection.reader, begin, end, offset);
  const bool authentic = KeyRing::finish(slot->partial, slot->tag);
  release_tag(connection);
  return authentic ? AuthVerdict::kAuthenticated : AuthVerdict::kAuthFailed;
}

bool TcpReactor::follow_tag(uint32_t id, const uint8_t* begin, const uint8_t* end, uint32_t offset) {
  Connection& connection = connections_[id];
  const FrameReader& reader = connection.reader;
  if (connection.tag_slot == kNoTagSlot) {
    // A slot is taken only in the read where the header completes, under the ring of that moment.
    const bool header_now = offset < kHeartbeatHeaderBytes && reader.header_complete();
    if (!header_now || !reader.signed_frame() || !auth_.keyed()) return true;
    if (free_tag_slots_.empty() && !tag_slots_) {
      tag_slots_.reset(new TagSlot[kTagSlots]);
      free_tag_slots_.reserve(kTagSlots);
      for (uint32_t i = kTagSlots; i-- > 0;) free_tag_slots_.push_back(i);
    }
    if (free_tag_slots_.empty()) {
      EngineStats::add(counters_, TcpReactorCounter::kAuthSlotsFull, 1);
      close_connection(id, true);
      return false;
    }
    connection.tag_slot = free_tag_slots_.back();
    free_tag_slots_.pop_back();
    start_tag(tag_slots_[connection.tag_slot], reader);
  }
  feed_tag(tag_slots_[connection.tag_slot], reader, begin, end, offset);
  return true;
}

// The header is hashed from the reader's copy: its bytes may have come over several reads.
void TcpReactor::start_tag(TagSlot& slot, const FrameReader& reader) const noexcept {
  auth_.ring().begin(slot.partial);
  KeyRing::update(slot.partial, reader.header(), kHeartbeatHeaderBytes);
}

// [begin, end) holds the frame's bytes from `offset` on: payload bytes are hashed, tag bytes kept.
void TcpReactor::feed_tag(TagSlot& slot, const FrameReader& reader, const uint8_t* begin, const uint8_t* end,
                          uint32_t offset) noexcept {
  const uint32_t stop = offset + static_cast<uint32_t>(end - begin);
  const uint32_t signed_end = reader.signed_bytes();
  uint32_t from = std::max<uint32_t>(offset, kHeartbeatHeaderBytes);
  const uint32_t hashed_end = std::min(stop, signed_end);
  if (from < hashed_end) KeyRing::update(slot.partial, begin + (from - offset), hashed_end - from);
  from = std::max(offset, signed_end);
  if (from < stop) std::memcpy(slot.tag + (from - signed_end), begin + (from - offset), stop - from);
}

void TcpReactor::release_tag(Connection& connection) noexcept {
  if (connection.tag_slot == kNoTagSlot) return;
  TagSlot& slot = tag_slots_[connection.tag_slot];
  if (slot.partial.keys != 0) KeyRing::finish(slot.partial, slot.tag);  // wipes the key states
  free_tag_slots_.push_back(connection.tag_slot);
  connection.tag_slot = kNoTagSlot;
}

void TcpReactor::hold_status(Connection& connection, const uint8_t* begin, const uint8_t* end, uint32_t offset) {
  const FrameReader& reader = connection.reader;
  if (!reader.header_complete()) return;
  const uint32_t payload_end = reader.signed_bytes();  // the payload is [kHeartbeatHeaderBytes, payload_end)
  // A status longer than the limit travels as its size alone: nothing to keep.
  if (payload_end - kHeartbeatHeaderBytes > max_status_bytes_) return;
  const uint32_t from = std::max<uint32_t>(offset, kHeartbeatHeaderBytes);
  const uint32_t to = std::min(offset + static_cast<uint32_t>(end - begin), payload_end);
  if (from >= to) return;  // no payload byte in this read
  if (connection.status_slot == StatusSlotPool::kNone) {
    connection.status_slot = status_slots_.take();
    if (connection.status_slot == StatusSlotPool::kNone) {
      connection.status_slot = kStatusRefused;
      EngineStats::add(counters_, TcpReactorCounter::kStatusSlotsFull, 1);
    }
  }
  if (connection.status_slot == kStatusRefused) return;
  std::memcpy(status_slots_.bytes(connection.status_slot) + (from - kHeartbeatHeaderBytes), begin + (from - offset),
              to - from);
}

void TcpReactor::carry_status(const Connection& connection, ShardMessage& message, uint32_t size,
                              const uint8_t* begin, uint32_t offset) noexcept {
  const uint32_t owner = shard_of(message.heartbeat.key, static_cast<uint32_t>(rings_.size()));
  // Longer than the limit: its size alone (carry() reads no byte).
  if (size > max_status_bytes_) return statuses_.carry(owner, message, size, nullptr, 0, nullptr, false);
  // Payload bytes that came in earlier reads, now in the slot; the rest start at `begin`.
  const uint32_t held = offset > kHeartbeatHeaderBytes ? std::min<uint32_t>(offset - kHeartbeatHeaderBytes, size) : 0;
  if (held == 0) {
    statuses_.carry(owner, message, size, begin + (kHeartbeatHeaderBytes - offset), size, nullptr, true);
  } else if (connection.status_slot != kStatusRefused) {
    // hold_status() took a slot with the first payload byte of an earlier read.
    assert(connection.status_slot < StatusSlotPool::kSlots);
    statuses_.carry(owner, message, size, status_slots_.bytes(connection.status_slot), held, begin, true);
  }
  // Refused (no slot was free): the beat goes on without it, counted when it was refused.
}

void TcpReactor::release_status(Connection& connection) noexcept {
  if (connection.status_slot != StatusSlotPool::kNone && connection.status_slot != kStatusRefused) {
    status_slots_.release(connection.status_slot);
  }
  connection.status_slot = StatusSlotPool::kNone;
}

void TcpReactor::stage(const ShardMessage& message) {
  const uint32_t owner = shard_of(message.heartbeat.key, static_cast<uint32_t>(rings_.size()));
  staged_[owner * kStageFrames + staged_counts_[owner]++] = message;
  if (staged_counts_[owner] == kStageFrames) flush(owner);
}

void TcpReactor::flush(uint32_t worker) {
  const uint32_t staged = staged_counts_[worker];
  if (staged == 0) return;
  const size_t pushed = rings_[worker]->push_batch(&staged_[worker * kStageFrames], staged);
  staged_counts_[worker] = 0;
  if (pushed < staged) statuses_.unwind(worker, &staged_[worker * kStageFrames], staged, pushed);
  if (pushed < staged) EngineStats::add(counters_, TcpReactorCounter::kRingDrops, staged - pushed);
  if (pushed > 0) wake_[worker]->notify();
}

uint64_t TcpReactor::deadline_of(const Connection& connection, uint64_t now_ms) const noexcept {
  uint64_t deadline = connection.framed ? now_ms - age_ms(connection.last_frame_ms, now_ms) + tcp_.idle_timeout_ms
                                        : now_ms - age_ms(connection.opened_ms, now_ms) + tcp_.handshake_timeout_ms;
  if (connection.reader.mid_frame()) {
    deadline = std::min(deadline, now_ms - age_ms(connection.frame_started_ms, now_ms) + tcp_.frame_timeout_ms);
  }
  return deadline;
}

void TcpReactor::expire(uint32_t id, uint64_t now_ms) {
  const Connection& connection = connections_[id];
  if (!connection.framed && age_ms(connection.opened_ms, now_ms) >= tcp_.handshake_timeout_ms) {
    EngineStats::add(counters_, TcpReactorCounter::kHandshakeTimeouts, 1);
  } else if (connection.reader.mid_frame() && age_ms(connection.frame_started_ms, now_ms) >= tcp_.frame_timeout_ms) {
    EngineStats::add(counters_, TcpReactorCounter::kSlowFrames, 1);
  } else {
    EngineStats::add(counters_, TcpReactorCounter::kIdleTimeouts, 1);
  }
  close_connection(id, true);
}

// `reset`: close with SO_LINGER 0 (an RST, no TIME_WAIT left on this side) when this side gives
// up on the peer; a peer that closed first gets an ordinary close.
void TcpReactor::close_connection(uint32_t id, bool reset) {
  Connection& connection = connections_[id];
  if (reset) {
    const linger hard{1, 0};
    setsockopt(connection.fd, SOL_SOCKET, SO_LINGER, &hard, sizeof(hard));
  }
  close(connection.fd);  // also leaves the epoll set
  connection.fd = -1;
  release_tag(connection);
  release_status(connection);
  wheel_.disarm(id);
  free_ids_.push_back(id);
  closed_.try_push(connection.ip_key);
  if (tcp_.close_means_down) report_close(connection);
}

// Staged behind the connection's frames on the same ring, so the worker sees it after all of
// them; a full ring drops it like a frame (counted in ringDrops), and the host then times out.
void TcpReactor::report_close(const Connection& connection) {
  if (connection.carried_key == 0) return;
  // With keys, only an authenticated connection may down a host: else any peer could send one
  // forged beat for a host (accepted without auth.required) and hang up.
  if (auth_.keyed() && !connection.carried_authenticated) return;
  ShardMessage message{};
  message.heartbeat.key = connection.carried_key;
  sockaddr_storage source{};
  std::memcpy(&source, &connection.peer, sizeof(connection.peer));
  to_peer_address(source, message.heartbeat.address);
  message.heartbeat.authenticated = connection.carried_authenticated;
  message.kind = MessageKind::kClosed;
  stage(message);
}

}  // namespace heartwatch
