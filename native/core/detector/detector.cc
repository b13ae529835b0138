#include "core/detector/detector.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

namespace heartwatch {
namespace {

constexpr uint32_t kMaxForgetAfterMs = 1u << 31;
constexpr uint32_t kSentinels = std::max(ExpiryFifo::kSentinels, TimingWheel::kSentinels);
// Heartbeats between the stages of batch()'s pipeline (slot to record prefetch, record prefetch
// to apply), and its ring of per-heartbeat state (a power of two above the longest lag,
// kProbeAhead + 2 * kApplyAhead). 8 to 24 for either measured alike at 1M hosts within the
// noise of the shared VM (bench/README.md, "Detector at 1M and 10M hosts").
constexpr size_t kProbeAhead = 16;
constexpr size_t kApplyAhead = 16;
constexpr size_t kPipeline = 64;
static_assert(kPipeline > kProbeAhead + 2 * kApplyAhead && (kPipeline & (kPipeline - 1)) == 0);
// Records make_room() looks at per new host when the table is full.
constexpr uint32_t kRoomScan = 64;
// The flags quiet_beat() checks, and the values a quiet host has: live, up, IPv4, not deferred.
// (An up host is never kLeft; kLinked and kStatus do not matter to a quiet beat.)
constexpr uint32_t kQuietChecked = HostEntry::kLive | HostEntry::kUp | HostEntry::kDeferred | HostEntry::kFamilyV4;
constexpr uint32_t kQuietFlags = HostEntry::kLive | HostEntry::kUp | HostEntry::kFamilyV4;
// The bits of HostEntry::addr_timeout_flags() that quiet_beat() compares: all but the flags it
// does not check.
constexpr uint64_t kQuietWordMask = ~HostEntry::pack_addr_timeout_flags(0, 0, 0xFF & ~kQuietChecked);

// A heartbeat's interval_ms and authenticated as one little-endian word (interval in the low
// half, the flag in the byte above; the padding after it is masked off where it is used), so
// that the common beat, no interval that counts and not authenticated, is one test.
static_assert(offsetof(Heartbeat, authenticated) == offsetof(Heartbeat, interval_ms) + 4 && sizeof(bool) == 1);
static_assert(offsetof(Heartbeat, interval_ms) + 8 <= sizeof(Heartbeat));
constexpr uint64_t kAuthenticatedBits = uint64_t{0xFF} << 32;
uint64_t interval_and_authenticated(const Heartbeat& hb) {
  uint64_t word;
  std::memcpy(&word, reinterpret_cast<const unsigned char*>(&hb) + offsetof(Heartbeat, interval_ms), sizeof word);
  return word;
}

const DetectorConfig& validated(const DetectorConfig& c) {
  auto fail = [](const std::string& what) { throw std::invalid_argument("DetectorConfig: " + what); };
  if (c.timeout_ms == 0 || uint64_t{c.timeout_ms} + c.clock_guard_ms > kMaxTimeoutMs) {
    fail("timeout_ms + clock_guard_ms must be in 1.." + std::to_string(kMaxTimeoutMs));
  }
  if (c.max_hosts == 0 || c.max_hosts > kMaxHostsPerShard) {
    fail("max_hosts must be in 1.." + std::to_string(kMaxHostsPerShard));
  }
  if (c.forget_after_ms > kMaxForgetAfterMs) fail("forget_after_ms must be at most 2^31");
  if (c.max_status_bytes > kMaxStatusBytes) fail("max_status_bytes must be at most " + std::to_string(kMaxStatusBytes));
  if (c.index == ExpiryIndexKind::kFifo && c.missed_beats != 0) {
    fail("the FIFO index needs one uniform timeout (missed_beats == 0)");
  }
  return c;
}

std::variant<ExpiryFifo, TimingWheel> make_index(const DetectorConfig& c, SlabPool& pool) {
  if (c.index == ExpiryIndexKind::kFifo) return std::variant<ExpiryFifo, TimingWheel>(std::in_place_type<ExpiryFifo>, pool);
  return std::variant<ExpiryFifo, TimingWheel>(std::in_place_type<TimingWheel>, pool, c.lazy_rearm);
}

}  // namespace

Detector::Detector(const DetectorConfig& config)
    : config_(validated(config)),
      pool_(sizeof(HostEntry), config_.max_hosts + kSentinels + 1,
            std::min(config_.initial_capacity, config_.max_hosts) + kSentinels),
      table_(pool_, std::min(config_.initial_capacity, config_.max_hosts), config_.max_hosts),
      statuses_(config_.max_status_bytes, config_.status_budget_bytes),
      index_(make_index(config_, pool_)),
      default_timeout_(config_.timeout_ms + config_.clock_guard_ms),
      first_record_(pool_.end()),
      room_cursor_(first_record_) {}

Detector::~Detector() = default;

template <class Fn>
decltype(auto) Detector::with_index(Fn&& fn) {
  if (auto* wheel = std::get_if<TimingWheel>(&index_)) return fn(*wheel);
  return fn(std::get<ExpiryFifo>(index_));
}

template <class Fn>
decltype(auto) Detector::with_index(Fn&& fn) const {
  if (const auto* wheel = std::get_if<TimingWheel>(&index_)) return fn(*wheel);
  return fn(std::get<ExpiryFifo>(index_));
}

uint32_t Detector::announced_timeout(uint32_t interval_ms) const {
  const uint64_t timeout = uint64_t{interval_ms} * config_.missed_beats;
  return static_cast<uint32_t>(std::min<uint64_t>(timeout + config_.clock_guard_ms, kMaxTimeoutMs));
}

// A source that differs from the stored one is counted where it is stored, without a copy: a
// new host has no family flag yet, so only a known host's source can change.
void Detector::store_other_address(HostEntry& r, const PeerAddress& address) {
  if (address.family == 4) {
    uint32_t ip;
    std::memcpy(&ip, address.ip, 4);
    if (r.has(HostEntry::kFamilyV4)) {
      if (r.addr != ip || r.port != address.port) moved(r);
    } else if (r.has(HostEntry::kFamilyV6)) {
      moved(r);
      v6_pool_->release(r.addr);
    }
    r.addr = ip;
    r.flags = (r.flags & ~(HostEntry::kFamilyV6)) | HostEntry::kFamilyV4;
    r.port = address.port;
  } else if (address.family == 6) {
    if (!r.has(HostEntry::kFamilyV6)) {
      if (r.has(HostEntry::kFamilyV4)) moved(r);
      if (!v6_pool_) v6_pool_ = std::make_unique<SlabPool>(16, config_.max_hosts + 1, 0);
      r.addr = v6_pool_->allocate();
      r.flags = (r.flags & ~(HostEntry::kFamilyV4)) | HostEntry::kFamilyV6;
    } else if (r.port != address.port || std::memcmp(v6_pool_->at(r.addr), address.ip, 16) != 0) {
      moved(r);
    }
    std::memcpy(v6_pool_->at(r.addr), address.ip, 16);
    r.port = address.port;
  }
}

PeerAddress Detector::load_address(const HostEntry& r) const {
  PeerAddress a{};
  if (r.has(HostEntry::kFamilyV4)) {
    a.family = 4;
    std::memcpy(a.ip, &r.addr, 4);
  } else if (r.has(HostEntry::kFamilyV6)) {
    a.family = 6;
    std::memcpy(a.ip, v6_pool_->at(r.addr), 16);
  } else {
    return a;
  }
  a.port = static_cast<uint16_t>(r.port);
  return a;
}

HostEvent Detector::event(const HostEntry& r, HostEventType type) const {
  HostEvent e{};
  e.key = r.key;
  e.at_ms = now_;
  e.last_seen_ms = last_seen(r);
  e.address = load_address(r);
  e.incarnation = r.incarnation;
  e.type = type;
  // As snapshots report it: the timeout that set the deadline, without the clock guard.
  e.timeout_ms = r.timeout_ms - config_.clock_guard_ms;
  return e;
}

void Detector::apply_status(uint32_t index, StatusView status, bool update, std::vector<HostEvent>& out) {
  if (status.size == 0 || config_.max_status_bytes == 0) return;
  // Before hashing: an oversize status may have come as its size alone, without bytes.
  if (status.size > config_.max_status_bytes) {
    ++status_oversize_;
    return;
  }
  const uint32_t hash = status_hash(status.data, status.size);
  switch (statuses_.check(index, status, hash)) {
    case StatusChange::kUnchanged:
      return;
    case StatusChange::kOversize:
      ++status_oversize_;
      return;
    case StatusChange::kOverBudget:
      ++status_over_budget_;
      return;
    case StatusChange::kChanged:
      break;
  }
  HostEntry& r = pool_.get<HostEntry>(index);
  if (!update) {
    statuses_.put(index, status, hash);
    r.set(HostEntry::kStatus);
    return;
  }
  HostEvent e = event(r, HostEventType::kUpdate);
  const size_t mark = event_bytes_.size();
  e.status_offset = static_cast<uint32_t>(mark);
  e.status_size = static_cast<uint16_t>(status.size);
  event_bytes_.insert(event_bytes_.end(), status.data, status.data + status.size);
  // The previous bytes are copied before put() overwrites or frees their block.
  const std::span<const uint8_t> previous = statuses_.get(index);
  e.previous_size = static_cast<uint16_t>(previous.size());
  event_bytes_.insert(event_bytes_.end(), previous.begin(), previous.end());
  try {
    statuses_.put(index, status, hash);
  } catch (...) {
    event_bytes_.resize(mark);
    throw;
  }
  r.set(HostEntry::kStatus);
  out.push_back(e);
}

void Detector::attach_status(uint32_t index, HostEvent& e) {
  if (!pool_.get<HostEntry>(index).has(HostEntry::kStatus)) return;
  const std::span<const uint8_t> status = statuses_.get(index);
  e.status_offset = static_cast<uint32_t>(event_bytes_.size());
  e.status_size = static_cast<uint16_t>(status.size());
  event_bytes_.insert(event_bytes_.end(), status.begin(), status.end());
}

void Detector::clear_status(uint32_t index) {
  HostEntry& r = pool_.get<HostEntry>(index);
  if (!r.has(HostEntry::kStatus)) return;
  statuses_.erase(index);
  r.clear(HostEntry::kStatus);
}

void Detector::drop(uint32_t index) {
  clear_status(index);
  HostEntry& r = pool_.get<HostEntry>(index);
  table_.erase(r.key, HostTable::hash(r.key));
  if (r.has(HostEntry::kFamilyV6)) v6_pool_->release(r.addr);
  if (r.has(HostEntry::kUp)) {
    --up_;
  } else {
    --down_;
  }
  r.flags = 0;  // no longer kLive: for_each_host skips it
  if (index < replay_.size()) replay_[index].seen = 0;
  pool_.release(index);
}

// Incarnations only go up under authentication (senders that sign use their start time), so a
// lower one is an earlier life of the host; within one, a seq must be new to the window.
bool Detector::fresh(uint32_t index, const Heartbeat& hb) {
  if (index >= replay_.size()) {
    replay_.resize(std::max<size_t>({size_t{index} + 1, replay_.size() * 2, 1024}), ReplayWindow{});
  }
  ReplayWindow& w = replay_[index];
  if (w.seen == 0 || hb.incarnation > w.incarnation) {
    w = {hb.incarnation, hb.seq, 1};
    return true;
  }
  if (hb.incarnation < w.incarnation) return false;
  const int32_t ahead = static_cast<int32_t>(hb.seq - w.top);
  if (ahead > 0) {
    w.seen = ahead >= 64 ? 1 : (w.seen << ahead) | 1;
    w.top = hb.seq;
    return true;
  }
  const uint32_t behind = w.top - hb.seq;
  if (behind >= 64 || (w.seen >> behind & 1) != 0) return false;
  w.seen |= uint64_t{1} << behind;
  return true;
}

// A full table takes a new host in place of a down one, so hosts that stopped (a flood of
// made-up ids among them) cannot keep new hosts out until restart; up hosts never lose their
// place. It looks at the next kRoomScan records from a cursor that moves on each time (so
// repeated tries cover the whole table) and forgets, without an event, the down host among them
// heard from longest ago. Bounded work per refused heartbeat: kRoomScan sequential 32-byte reads.
template <class Index>
bool Detector::make_room(Index& index) {
  const uint32_t end = pool_.end();
  if (end <= first_record_) return false;
  uint32_t victim = kNoIndex;
  uint32_t victim_age = 0;
  for (uint32_t n = 0; n < kRoomScan; ++n) {
    if (++room_cursor_ >= end) room_cursor_ = first_record_;
    const HostEntry& r = pool_.get<HostEntry>(room_cursor_);
    if (!r.has(HostEntry::kLive) || r.has(HostEntry::kUp)) continue;
    const uint32_t age = static_cast<uint32_t>(now_) - r.last_seen;
    if (victim == kNoIndex || age > victim_age) {
      victim = room_cursor_;
      victim_age = age;
    }
  }
  if (victim == kNoIndex) return false;
  if (pool_.get<HostEntry>(victim).has(HostEntry::kLinked)) index.remove(victim);
  drop(victim);
  ++forgotten_;
  return true;
}

template <class Index>
void Detector::admit(Index& index, const Heartbeat& hb, uint64_t hash, uint32_t timeout,
                     std::vector<HostEvent>& out, StatusView status) {
  if (table_.size() >= config_.max_hosts && !(config_.reclaim_down && make_room(index))) {
    ++refused_;
    return;
  }
  const uint32_t i = pool_.allocate();
  HostEntry& r = pool_.get<HostEntry>(i);
  r.key = hb.key;
  r.last_seen = static_cast<uint32_t>(now_);
  r.incarnation = hb.incarnation;
  r.timeout_ms = timeout;
  r.flags = HostEntry::kLive | HostEntry::kUp;
  store_address(r, hb.address);
  try {
    table_.insert(i, hash);
  } catch (...) {
    if (r.has(HostEntry::kFamilyV6)) v6_pool_->release(r.addr);
    pool_.release(i);
    throw;
  }
  index.insert(i, now_ + timeout, ExpiryLane::kAlive, now_);
  if (hb.authenticated) fresh(i, hb);
  ++up_;
  HostEvent e = event(r, HostEventType::kUp);
  apply_status(i, status, false, out);
  attach_status(i, e);
  out.push_back(e);
}

Detector::QuietExpectation Detector::quiet_expectation() const {
  return {now_, HostEntry::pack_addr_timeout_flags(0, default_timeout_, kQuietFlags),
          kAuthenticatedBits | (config_.missed_beats != 0 ? 0xFFFFFFFF : 0)};
}

template <class Index>
bool Detector::quiet_beat(Index& index, const Heartbeat& hb, uint32_t hint, const QuietExpectation& quiet) {
  HostEntry& r = pool_.get<HostEntry>(hint);
  uint64_t expected = quiet.default_timeout_flags;
  if ((interval_and_authenticated(hb) & quiet.interval_and_authenticated_mask) != 0) {
    if (hb.authenticated) return false;
    expected = HostEntry::pack_addr_timeout_flags(0, announced_timeout(hb.interval_ms), kQuietFlags);
  }
  uint32_t ip;
  std::memcpy(&ip, hb.address.ip, 4);
  if (r.key != hb.key || ((r.addr_timeout_flags() ^ (expected | ip)) & kQuietWordMask) != 0 ||
      hb.address.family != kFamilyIpv4 || r.port != hb.address.port ||
      (hb.incarnation != r.incarnation && hb.incarnation != kUnknownIncarnation)) {
    return false;
  }
  index.extend(hint, quiet.now + ((expected >> 32) & kMaxTimeoutMs), quiet.now);
  r.last_seen = static_cast<uint32_t>(quiet.now);
  return true;
}

// `hint` is a record that may hold the key (the batch's first fingerprint match, looked up
// before the earlier beats of the batch ran): taken when its key matches, so the common case
// probes the table once per heartbeat instead of twice. A live record with the key is the
// key's one record, whatever the beats before it changed.
template <class Index>
void Detector::beat(Index& index, const Heartbeat& hb, uint64_t hash, uint32_t hint, const QuietExpectation& quiet,
                    std::vector<HostEvent>& out, StatusView status) {
  if (hint != kNoIndex && status.size == 0 && quiet_beat(index, hb, hint, quiet)) return;
  full_beat(index, hb, hash, hint, out, status);
}

template <class Index>
void Detector::full_beat(Index& index, const Heartbeat& hb, uint64_t hash, uint32_t hint,
                         std::vector<HostEvent>& out, StatusView status) {
  apply_beat(index, hb, hash, hint, out, status);
}

template <class Index>
void Detector::apply_beat(Index& index, const Heartbeat& hb, uint64_t hash, uint32_t hint,
                          std::vector<HostEvent>& out, StatusView status) {
  const uint32_t timeout = timeout_for(hb.interval_ms);
  const bool hit = hint != kNoIndex && pool_.get<HostEntry>(hint).key == hb.key &&
                   pool_.get<HostEntry>(hint).has(HostEntry::kLive);
  const uint32_t i = hit ? hint : table_.find(hb.key, hash);
  if (i == kNoIndex) {
    admit(index, hb, hash, timeout, out, status);
    return;
  }
  if (hb.authenticated && !fresh(i, hb)) {
    ++replayed_;
    return;
  }
  HostEntry& r = pool_.get<HostEntry>(i);
  if (!r.has(HostEntry::kUp)) {
    revive(index, i, hb, timeout, out, status);
    return;
  }
  index.rearm(i, last_seen(r) + r.timeout_ms, now_ + timeout, now_);
  r.clear(HostEntry::kDeferred);
  r.last_seen = static_cast<uint32_t>(now_);
  r.timeout_ms = timeout;
  store_address(r, hb.address);
  if (hb.incarnation != kUnknownIncarnation && r.incarnation != hb.incarnation) restart(r, hb.incarnation, out);
  if (status.size != 0) apply_status(i, status, true, out);
}

void Detector::restart(HostEntry& r, uint32_t incarnation, std::vector<HostEvent>& out) {
  const uint32_t previous = r.incarnation;
  r.incarnation = incarnation;
  HostEvent e = event(r, HostEventType::kRestart);
  e.previous_incarnation = previous;
  out.push_back(e);
}

template <class Index>
void Detector::revive(Index& index, uint32_t i, const Heartbeat& hb, uint32_t timeout, std::vector<HostEvent>& out,
                      StatusView status) {
  HostEntry& r = pool_.get<HostEntry>(i);
  if (r.has(HostEntry::kLinked)) index.remove(i);
  r.clear(HostEntry::kLeft);
  r.set(HostEntry::kUp);
  r.last_seen = static_cast<uint32_t>(now_);
  r.timeout_ms = timeout;
  if (hb.incarnation != kUnknownIncarnation) r.incarnation = hb.incarnation;
  store_address(r, hb.address);
  index.insert(i, now_ + timeout, ExpiryLane::kAlive, now_);
  --down_;
  ++up_;
  HostEvent e = event(r, HostEventType::kUp);
  e.recovered = true;
  apply_status(i, status, false, out);
  attach_status(i, e);
  out.push_back(e);
}

void Detector::heartbeat(const Heartbeat& hb, uint64_t now_ms, std::vector<HostEvent>& out, StatusView status) {
  advance(now_ms);
  table_.migrate(HostTable::kMigrateStep);
  with_index(
      [&](auto& index) { beat(index, hb, HostTable::hash(hb.key), kNoIndex, quiet_expectation(), out, status); });
}

// A pipeline over the batch, so that the cache misses of later heartbeats are in flight while
// one is applied: step t hashes heartbeat t and prefetches its home slot; finds the first
// fingerprint match of heartbeat t - kProbeAhead and prefetches its record (and its status slot,
// for a beat with a status); prefetches the status block of heartbeat t - kProbeAhead -
// kApplyAhead (beats with a status read it to detect a change); and applies the heartbeat `lag`
// behind. A steady stream of misses keeps the core's miss buffers busy without overflowing them,
// where passes over 64 heartbeats at a time issued them in bursts (measured 9% faster at 1M
// hosts, docs/detector.md). The steps in which every stage has a heartbeat run without the
// stage bounds, and a batch without statuses (kStatuses false) without the status stages.
// (Prefetching the list neighbours a relink touches measured slower: those are stores, which
// the store buffer already overlaps.)
template <bool kStatuses, class Index>
void Detector::pipeline(Index& index, const Heartbeat* hbs, size_t count, std::vector<HostEvent>& out,
                        const StatusView* statuses) {
  uint64_t hashes[kPipeline];
  uint32_t candidates[kPipeline];
  const QuietExpectation quiet = quiet_expectation();
  constexpr size_t lag = kProbeAhead + (kStatuses ? 2 : 1) * kApplyAhead;
  auto probe = [&](size_t t) {
    hashes[t % kPipeline] = HostTable::hash(hbs[t].key);
    table_.prefetch(hashes[t % kPipeline]);
  };
  auto find = [&](size_t j) {
    const uint32_t c = candidates[j % kPipeline] = table_.candidate(hashes[j % kPipeline]);
    if (c == kNoIndex) return;
    __builtin_prefetch(pool_.at(c), 1);
    if (kStatuses && statuses[j].size != 0) statuses_.prefetch_slot(c);
  };
  auto block = [&](size_t j) {
    const uint32_t c = candidates[j % kPipeline];
    if (c != kNoIndex && statuses[j].size != 0) statuses_.prefetch_block(c);
  };
  auto apply = [&](size_t j) {
    beat(index, hbs[j], hashes[j % kPipeline], candidates[j % kPipeline], quiet, out,
         kStatuses ? statuses[j] : StatusView{});
  };
  // Steps before the first apply (a batch shorter than the lag runs out of heartbeats to
  // probe first), then those with every stage, then those after the last probe.
  auto early = [&](size_t t) {
    if (t >= kProbeAhead && t - kProbeAhead < count) find(t - kProbeAhead);
    if (kStatuses && t >= kProbeAhead + kApplyAhead && t - kProbeAhead - kApplyAhead < count) {
      block(t - kProbeAhead - kApplyAhead);
    }
  };
  size_t t = 0;
  for (; t < lag && t < count; ++t) {
    probe(t);
    early(t);
  }
  for (; t < lag; ++t) early(t);
  for (; t < count; ++t) {
    probe(t);
    find(t - kProbeAhead);
    if constexpr (kStatuses) block(t - kProbeAhead - kApplyAhead);
    apply(t - lag);
  }
  for (; t < count + lag; ++t) {
    if (t - kProbeAhead < count) find(t - kProbeAhead);
    if (kStatuses && t - kProbeAhead - kApplyAhead < count) block(t - kProbeAhead - kApplyAhead);
    apply(t - lag);
  }
}

// In cache (see kCacheResidentBytes) the heartbeats are applied in order, each with one probe:
// the first fingerprint match is the hint beat() checks, as in the pipeline. Looked up just
// before its beat, a hint of 0 (an empty slot came first) means the host is new: admitted
// without the full probe that would walk the rest of the run to prove it absent. (The
// pipeline's hints are older than the beats before them, which may have admitted the host.)
template <class Index>
void Detector::batch(Index& index, const Heartbeat* hbs, size_t count, std::vector<HostEvent>& out,
                     const StatusView* statuses) {
  if (!cache_resident()) {
    // Without status bytes configured, payloads are ignored: the batch is one without statuses.
    if (statuses != nullptr && config_.max_status_bytes != 0) {
      pipeline<true>(index, hbs, count, out, statuses);
    } else {
      pipeline<false>(index, hbs, count, out, nullptr);
    }
    return;
  }
  const QuietExpectation quiet = quiet_expectation();
  // Two loops, so that without statuses the inlined quiet beat knows there is none.
  if (statuses == nullptr) {
    for (size_t j = 0; j < count; ++j) {
      // Quiet beats in an inner loop without calls, where what they need stays in registers.
      uint64_t hash;
      uint32_t hint;
      for (;; ++j) {
        if (j == count) return;
        hash = HostTable::hash(hbs[j].key);
        hint = table_.candidate(hash);
        if (hint == kNoIndex || !quiet_beat(index, hbs[j], hint, quiet)) break;
      }
      const Heartbeat& hb = hbs[j];
      if (hint == kNoIndex) {
        admit(index, hb, hash, timeout_for(hb.interval_ms), out, StatusView{});
      } else {
        full_beat(index, hb, hash, hint, out, StatusView{});
      }
    }
    return;
  }
  // With statuses, beats that are not quiet are common (a status on every beat is a use the
  // bench measures), so the full path stays inline here.
  for (size_t j = 0; j < count; ++j) {
    const Heartbeat& hb = hbs[j];
    const uint64_t hash = HostTable::hash(hb.key);
    const uint32_t hint = table_.candidate(hash);
    if (hint == kNoIndex) {
      admit(index, hb, hash, timeout_for(hb.interval_ms), out, statuses[j]);
    } else if (statuses[j].size != 0 || !quiet_beat(index, hb, hint, quiet)) {
      apply_beat(index, hb, hash, hint, out, statuses[j]);
    }
  }
}

void Detector::heartbeat_batch(const Heartbeat* hbs, size_t count, uint64_t now_ms, std::vector<HostEvent>& out,
                               const StatusView* statuses) {
  advance(now_ms);
  table_.migrate(HostTable::kMigrateStep * 4);
  with_index([&](auto& index) { batch(index, hbs, count, out, statuses); });
}

template <class Index>
void Detector::depart(Index& index, uint64_t key, const PeerAddress& from, std::vector<HostEvent>& out) {
  const uint32_t i = table_.find(key, HostTable::hash(key));
  if (i == kNoIndex) return;
  HostEntry& r = pool_.get<HostEntry>(i);
  if (!r.has(HostEntry::kUp)) return;
  r.last_seen = static_cast<uint32_t>(now_);
  store_address(r, from);
  take_down(index, i, DownReason::kLeft, out);
}

template <class Index>
void Detector::take_down(Index& index, uint32_t i, DownReason reason, std::vector<HostEvent>& out) {
  HostEntry& r = pool_.get<HostEntry>(i);
  if (r.has(HostEntry::kLinked)) index.remove(i);
  r.clear(HostEntry::kUp);
  r.set(HostEntry::kLeft);
  clear_status(i);
  --up_;
  ++down_;
  HostEvent e = event(r, HostEventType::kDown);
  e.reason = reason;
  out.push_back(e);
  // Down from now: the forget clock runs from last_seen (kLeft), stamped after the event so a
  // disconnect's event still reports its last heartbeat.
  r.last_seen = static_cast<uint32_t>(now_);
  if (config_.forget_after_ms != 0) index.insert(i, deadline_of(i), ExpiryLane::kDownLeft, now_);
}

void Detector::leave(uint64_t key, const PeerAddress& from, uint64_t now_ms, std::vector<HostEvent>& out) {
  advance(now_ms);
  with_index([&](auto& index) { depart(index, key, from, out); });
}

void Detector::leave(const Heartbeat& hb, uint64_t now_ms, std::vector<HostEvent>& out) {
  if (hb.authenticated) {
    const uint32_t i = table_.find(hb.key, HostTable::hash(hb.key));
    if (i != kNoIndex && !fresh(i, hb)) {
      advance(now_ms);
      ++replayed_;
      return;
    }
  }
  leave(hb.key, hb.address, now_ms, out);
}

void Detector::disconnect(uint64_t key, const PeerAddress& from, uint64_t now_ms, std::vector<HostEvent>& out) {
  advance(now_ms);
  const uint32_t i = table_.find(key, HostTable::hash(key));
  if (i == kNoIndex) return;
  const HostEntry& r = pool_.get<HostEntry>(i);
  // Only the connection its latest heartbeat came over: its peer is the host's address then.
  if (!r.has(HostEntry::kUp) || !(load_address(r) == from)) return;
  with_index([&](auto& index) { take_down(index, i, DownReason::kDisconnected, out); });
}

// A record whose deadline (`at`) the index found due: forgotten when down, else down now, or
// deferred or re-filed as the horizon says. Out of line: one call per host going down, and the
// index's drain loop around it, which re-files many more records than it reports, keeps its
// state in registers.
template <class Index>
void Detector::due(Index& index, uint32_t i, uint64_t at, uint64_t limit, const ExpiryHorizon& horizon,
                   std::vector<HostEvent>& out) {
  HostEntry& r = pool_.get<HostEntry>(i);
  if (!r.has(HostEntry::kUp)) {
    drop(i);
    ++forgotten_;
    return;
  }
  if (at > limit) {
    // The wheel's clock can run ahead of a lagging horizon (it jumps when empty); never early.
    index.insert(i, at, ExpiryLane::kAlive, now_);
    return;
  }
  const bool lossy = at > horizon.lossy_from_ms && at <= horizon.lossy_until_ms;
  if (lossy && !r.has(HostEntry::kDeferred)) {
    // A heartbeat that would have kept it up may be among the datagrams lost around its
    // deadline: give it one more timeout from the end of the loss before believing the
    // silence. The stretch lives in timeout_ms until its next heartbeat sets it afresh.
    const uint64_t extended = std::max(at, horizon.lossy_until_ms) + r.timeout_ms;
    r.timeout_ms = static_cast<uint32_t>(std::min<uint64_t>(extended - last_seen(r), kMaxTimeoutMs));
    r.set(HostEntry::kDeferred);
    ++deferred_;
    index.insert(i, deadline_of(i), ExpiryLane::kAlive, now_);
    return;
  }
  const bool uncertain = r.has(HostEntry::kDeferred);
  r.clear(HostEntry::kUp);
  r.clear(HostEntry::kDeferred);
  --up_;
  ++down_;
  if (config_.forget_after_ms != 0) index.insert(i, deadline_of(i), ExpiryLane::kDownTimeout, now_);
  HostEvent e = event(r, HostEventType::kDown);
  e.reason = DownReason::kTimeout;
  e.uncertain = uncertain;
  if (uncertain) ++uncertain_;
  out.push_back(e);
}

template <class Index>
size_t Detector::sweep(Index& index, size_t budget, const ExpiryHorizon& horizon, std::vector<HostEvent>& out) {
  const uint64_t limit = std::min(now_, horizon.until_ms);
  return index.poll(
      limit, budget, [this](uint32_t i) { return deadline_of(i); },
      [&](uint32_t i, uint64_t at) { due(index, i, at, limit, horizon, out); });
}

size_t Detector::expire(uint64_t now_ms, size_t budget, std::vector<HostEvent>& out,
                        const ExpiryHorizon& horizon) {
  advance(now_ms);
  table_.migrate(HostTable::kMigrateStep * 4);
  return with_index([&](auto& index) { return sweep(index, budget, horizon, out); });
}

bool Detector::remove(uint64_t key) {
  const uint32_t i = table_.find(key, HostTable::hash(key));
  if (i == kNoIndex) return false;
  if (pool_.get<HostEntry>(i).has(HostEntry::kLinked)) {
    with_index([&](auto& index) { index.remove(i); });
  }
  drop(i);
  return true;
}

uint64_t Detector::next_deadline_ms() const {
  return with_index([this](const auto& index) {
    return index.next_deadline([this](uint32_t i) { return deadline_of(i); });
  });
}

DetectorStats Detector::stats() const {
  DetectorStats s{};
  s.tracked = table_.size();
  s.up = up_;
  s.down = down_;
  s.refused = refused_;
  s.forgotten = forgotten_;
  s.replayed = replayed_;
  s.deferred = deferred_;
  s.uncertain = uncertain_;
  s.address_changes = address_changes_;
  s.last_moved_key = last_moved_key_;
  s.bytes_allocated = pool_.bytes_allocated() + table_.bytes_allocated() +
                      (v6_pool_ ? v6_pool_->bytes_allocated() : 0) + replay_.capacity() * sizeof(ReplayWindow) +
                      statuses_.bytes_allocated();
  s.statuses = statuses_.count();
  s.status_bytes = statuses_.bytes_in_use();
  s.status_oversize = status_oversize_;
  s.status_over_budget = status_over_budget_;
  return s;
}

HostSnapshot Detector::snapshot(uint32_t index) const {
  const HostEntry& r = pool_.get<HostEntry>(index);
  HostSnapshot s{};
  s.key = r.key;
  s.address = load_address(r);
  s.up = r.has(HostEntry::kUp);
  s.last_seen_ms = last_seen(r);
  s.incarnation = r.incarnation;
  s.timeout_ms = r.timeout_ms - config_.clock_guard_ms;
  if (r.has(HostEntry::kStatus)) s.status = statuses_.get(index);
  return s;
}

std::optional<HostSnapshot> Detector::host(uint64_t key) const {
  const uint32_t i = table_.find(key, HostTable::hash(key));
  if (i == kNoIndex) return std::nullopt;
  return snapshot(i);
}

}  // namespace heartwatch
