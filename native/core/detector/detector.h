// The failure detector of one shard: which hosts are up, which stopped sending heartbeats.
//
// A HostTable maps keys to 32-byte HostEntry records in a SlabPool; an expiry index (ExpiryFifo for
// one uniform timeout, TimingWheel for per-host timeouts) orders the records by deadline. A
// heartbeat is one table probe plus O(1) index work; expire() does work only for hosts that
// are due, in deadline order, at most `budget` units per call. No call allocates per host
// once the pool and table have grown to the working set. See docs/detector.md.
//
// Time: every `now_ms` is the receiver's monotonic clock in ms and must not go backwards (an
// earlier value is treated as the latest one seen). Records keep the low 32 bits of the clock
// and read ages with wrapping arithmetic, so a host's age must stay below 2^32 ms (49.7 days):
// true for up hosts as long as expire() runs, for forgotten hosts since forget_after_ms is at
// most 2^31 ms; a down host that is never forgotten and silent for longer reports a last_seen
// that is a multiple of 49.7 days too recent.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <variant>
#include <vector>

#include "core/detector/expiry_fifo.h"
#include "core/detector/heartbeat.h"
#include "core/detector/host_event.h"
#include "core/detector/host_entry.h"
#include "core/detector/host_table.h"
#include "core/detector/peer_address.h"
#include "core/detector/slab_pool.h"
#include "core/detector/status_store.h"
#include "core/detector/timing_wheel.h"

namespace heartwatch {

enum class ExpiryIndexKind : uint8_t { kFifo, kWheel };

// The most hosts one detector (one shard) tracks: the 24-bit record indices less the expiry
// index's list heads and the null record. The addon exports it (`contract.limits`);
// lib/options.ts checks maxHosts against it times the worker count.
inline constexpr uint32_t kMaxHostsPerShard =
    kMaxRecords - std::max(ExpiryFifo::kSentinels, TimingWheel::kSentinels) - 1;

struct DetectorConfig {
  uint32_t timeout_ms = 5000;      // timeout when a host announces no interval; 1..kMaxTimeoutMs
  uint32_t missed_beats = 3;       // timeout = interval_ms * missed_beats when announced; 0 = ignore announced intervals
  uint32_t max_hosts = 1u << 20;   // hard cap; past it new hosts are refused and counted, unless:
  bool reclaim_down = true;        // at the cap a new host takes a down host's place (make_room())
  uint32_t forget_after_ms = 0;    // forget hosts down this long; 0 = never; at most 2^31
  ExpiryIndexKind index = ExpiryIndexKind::kWheel;  // kFifo needs missed_beats == 0
  uint32_t initial_capacity = 1024;  // hosts the table and pool are sized for up front
  bool lazy_rearm = true;            // wheel only: a later deadline leaves the record where it is
  // Added to every timeout. A caller whose clock is whole milliseconds rounded down sets 1: a
  // heartbeat stamped m arrived in [m, m+1), so only at m + timeout + 1 has a full timeout
  // surely passed in real time. Snapshots report the timeout without it.
  uint32_t clock_guard_ms = 0;
  // Statuses (docs/detector.md, "Statuses"): the longest kept, 0..kMaxStatusBytes (0: payloads
  // are ignored), and the bytes of status blocks this detector may hold.
  uint32_t max_status_bytes = 0;
  uint64_t status_budget_bytes = 0;
};

// How far one expire() call may go. `until_ms` is the receive watermark: deadlines after it
// wait, because heartbeats that arrived before them may still be on their way to the detector.
// A deadline in the lossy window (lossy_from_ms, lossy_until_ms], where datagrams were lost,
// moves to one timeout after the window's end (once per silence): a live host whose heartbeats
// were lost is heard again by then; if it stays silent its down is `uncertain`.
struct ExpiryHorizon {
  uint64_t until_ms = UINT64_MAX;
  uint64_t lossy_from_ms = 0;
  uint64_t lossy_until_ms = 0;
};

struct DetectorStats {
  uint64_t tracked, up, down, refused, forgotten;
  uint64_t replayed;  // authenticated heartbeats and leaves dropped by the replay check
  uint64_t deferred;   // deadlines given one more timeout for a lossy window
  uint64_t uncertain;  // downs that followed such a deferral
  uint64_t bytes_allocated;  // every block the detector holds (pool, side pool, table, replay windows, statuses)
  uint64_t statuses;            // hosts with a status
  uint64_t status_bytes;        // bytes of the blocks holding them
  uint64_t status_oversize;     // statuses refused: longer than max_status_bytes
  uint64_t status_over_budget;  // statuses refused: status_budget_bytes reached
  // Heartbeats from another source (ip:port) than their host's last one: two senders sharing a
  // host id, when it keeps rising. last_moved_key: the latest such host (valid once counted).
  uint64_t address_changes;
  uint64_t last_moved_key;
};

struct HostSnapshot {
  uint64_t key;
  PeerAddress address;
  bool up;  // else down
  uint64_t last_seen_ms;
  uint32_t incarnation;
  uint32_t timeout_ms;
  std::span<const uint8_t> status;  // empty: none; valid until the detector is next changed
};

class Detector {
 public:
  // Up to this many bytes of records, table and statuses the detector is taken to sit in the
  // core's caches (10K hosts: about 0.5 MiB), where a batch is applied in order without the
  // prefetching pipeline: its prefetches would find every line in cache, and its stage
  // bookkeeping cost about 40 instructions per heartbeat (bench/README.md).
  static constexpr uint64_t kCacheResidentBytes = uint64_t{1} << 20;

  // Throws std::invalid_argument for a config outside the documented ranges.
  // Runs on: worker thread (the one that owns the shard; so does every method below).
  explicit Detector(const DetectorConfig& config);
  ~Detector();
  Detector(const Detector&) = delete;
  Detector& operator=(const Detector&) = delete;

  // Each call that decides events appends them to `out`; the caller owns and clears it.
  //
  // Statuses: a heartbeat may carry one (its payload; `status.size` 0: none). The host keeps
  // its latest status; a beat without one leaves it as it is. A changed status on an up host is
  // an update event (new and previous bytes); a status on the beat that makes a host up is part
  // of that up event, whose bytes are the status after the beat. A leave, forget or remove
  // clears it. Event bytes go to event_bytes(), which the caller clears with the events.

  // Runs on: worker thread.
  void heartbeat(const Heartbeat& hb, uint64_t now_ms, std::vector<HostEvent>& out, StatusView status = {});
  // Same as heartbeat() for each, in order; hashes and prefetches the batch first so the
  // table and record cache misses overlap. `statuses`, when not null, has `count` entries.
  // Runs on: worker thread.
  void heartbeat_batch(const Heartbeat* hbs, size_t count, uint64_t now_ms, std::vector<HostEvent>& out,
                       const StatusView* statuses = nullptr);
  // The status bytes of the events decided since the last clear_event_bytes().
  // Runs on: worker thread.
  const std::vector<uint8_t>& event_bytes() const { return event_bytes_; }
  void clear_event_bytes() { event_bytes_.clear(); }
  // Graceful shutdown: an up host goes down (reason left) now; otherwise nothing happens.
  // Runs on: worker thread.
  void leave(uint64_t key, const PeerAddress& from, uint64_t now_ms, std::vector<HostEvent>& out);
  // The same for a leave datagram; an authenticated one must pass the replay check first.
  // Runs on: worker thread.
  void leave(const Heartbeat& hb, uint64_t now_ms, std::vector<HostEvent>& out);
  // The TCP connection `from` (its peer address) that carried host `key` closed without a LEAVE
  // (tcp.closeMeansDown): an up host whose latest heartbeat came from `from` goes down now
  // (reason disconnected); otherwise nothing happens. The peer address tells the connections
  // apart with no per-host state: a connection's (IP, port) is unique while it is open, and a
  // host that reconnected has beaten from a new port, so the old connection's close leaves it
  // be. A UDP sender on the same IP and port counts as that connection (see docs/protocol.md).
  // Runs on: worker thread.
  void disconnect(uint64_t key, const PeerAddress& from, uint64_t now_ms, std::vector<HostEvent>& out);
  // Marks down the hosts whose deadline has come (and is within `horizon`) and forgets hosts
  // down for forget_after_ms, in deadline order, doing at most `budget` units of work. Returns
  // the work done; a return equal to `budget` means there may be more.
  // Runs on: worker thread.
  size_t expire(uint64_t now_ms, size_t budget, std::vector<HostEvent>& out,
                const ExpiryHorizon& horizon = {});
  // Forgets a host without an event. False if unknown.
  // Runs on: worker thread.
  bool remove(uint64_t key);
  // Earliest time expire() can have work, UINT64_MAX if none; never later than any deadline.
  // Runs on: worker thread.
  uint64_t next_deadline_ms() const;
  // Runs on: worker thread.
  DetectorStats stats() const;
  // Whether what the detector touches (every record ever handed out, the table, the statuses)
  // fits in kCacheResidentBytes, so that batches are applied without the pipeline.
  // Runs on: worker thread.
  bool cache_resident() const {
    return uint64_t{pool_.end()} * sizeof(HostEntry) + table_.bytes_allocated() + statuses_.bytes_allocated() <=
           kCacheResidentBytes;
  }
  // Runs on: worker thread.
  std::optional<HostSnapshot> host(uint64_t key) const;
  // fn(const HostSnapshot&) for every tracked host, in no particular order.
  // Runs on: worker thread.
  template <class Fn>
  void for_each_host(Fn&& fn) const {
    for (uint32_t i = 1; i < pool_.end(); ++i) {
      if (pool_.get<HostEntry>(i).has(HostEntry::kLive)) fn(snapshot(i));
    }
  }

 private:
  // What quiet_beat() compares a beat and its record with besides their own fields, worked out
  // once per batch (from config_ and now_), so that the quiet checks are compares only.
  struct QuietExpectation {
    uint64_t now;
    // pack_addr_timeout_flags() of the default timeout and a quiet host's flags, address 0.
    uint64_t default_timeout_flags;
    // The bits of interval_and_authenticated() (detector.cc) that take a beat off the quiet
    // path: the authenticated flag, and the interval when announced intervals count (not when
    // missed_beats is 0).
    uint64_t interval_and_authenticated_mask;
  };
  QuietExpectation quiet_expectation() const;

  // Inlined into batch() and pipeline(): as a call, passing its arguments and saving registers
  // cost a third of its instructions. Only the quiet beat is inline; the rest is a call, so the
  // loops around it keep their state in registers.
  template <class Index>
  [[gnu::always_inline]] inline void beat(Index& index, const Heartbeat& hb, uint64_t hash, uint32_t hint,
                                          const QuietExpectation& quiet, std::vector<HostEvent>& out,
                                          StatusView status);
  // Every beat that is not quiet: lookup (when `hint` is not the host's record), new host,
  // replay check, recovery, address, restart and status.
  template <class Index>
  [[gnu::noinline]] void full_beat(Index& index, const Heartbeat& hb, uint64_t hash, uint32_t hint,
                                   std::vector<HostEvent>& out, StatusView status);
  // full_beat()'s body, inlined where beats with statuses are applied in order.
  template <class Index>
  [[gnu::always_inline]] inline void apply_beat(Index& index, const Heartbeat& hb, uint64_t hash, uint32_t hint,
                                                std::vector<HostEvent>& out, StatusView status);
  // The common heartbeat, applied when record `hint` is its host's and the beat brings nothing
  // new: the host is up and not deferred, the source (IPv4 address and port), incarnation and
  // timeout are the stored ones, and the beat is neither authenticated nor carries a status. Then
  // only last_seen changes and the index moves the deadline later (for the lazy wheel: nothing).
  // False, having changed nothing, for everything else, which beat() then takes the long way.
  // Address, timeout and flags are checked as one word (HostEntry::addr_timeout_flags()).
  template <class Index>
  [[gnu::always_inline]] inline bool quiet_beat(Index& index, const Heartbeat& hb, uint32_t hint,
                                                const QuietExpectation& quiet);
  // The cold paths of beat(), kept out of line so the common one stays short.
  template <class Index>
  [[gnu::noinline]] void revive(Index& index, uint32_t i, const Heartbeat& hb, uint32_t timeout,
                                std::vector<HostEvent>& out, StatusView status);
  [[gnu::noinline]] void restart(HostEntry& r, uint32_t incarnation, std::vector<HostEvent>& out);
  template <class Index>
  [[gnu::noinline]] void admit(Index& index, const Heartbeat& hb, uint64_t hash, uint32_t timeout,
                               std::vector<HostEvent>& out, StatusView status);
  template <class Index>
  bool make_room(Index& index);
  template <class Index>
  void batch(Index& index, const Heartbeat* hbs, size_t count, std::vector<HostEvent>& out,
             const StatusView* statuses);
  template <bool kStatuses, class Index>
  void pipeline(Index& index, const Heartbeat* hbs, size_t count, std::vector<HostEvent>& out,
                const StatusView* statuses);
  template <class Index>
  void depart(Index& index, uint64_t key, const PeerAddress& from, std::vector<HostEvent>& out);
  // An up host goes down now with `reason` (left or disconnected).
  template <class Index>
  void take_down(Index& index, uint32_t i, DownReason reason, std::vector<HostEvent>& out);
  template <class Index>
  [[gnu::noinline]] void due(Index& index, uint32_t i, uint64_t at, uint64_t limit, const ExpiryHorizon& horizon,
                             std::vector<HostEvent>& out);
  template <class Index>
  size_t sweep(Index& index, size_t budget, const ExpiryHorizon& horizon, std::vector<HostEvent>& out);
  template <class Fn>
  decltype(auto) with_index(Fn&& fn);
  template <class Fn>
  decltype(auto) with_index(Fn&& fn) const;

  void advance(uint64_t now_ms) {
    if (now_ms > now_) now_ = now_ms;
  }
  uint32_t timeout_for(uint32_t interval_ms) const {
    return interval_ms == 0 || config_.missed_beats == 0 ? default_timeout_ : announced_timeout(interval_ms);
  }
  uint32_t announced_timeout(uint32_t interval_ms) const;
  uint64_t last_seen(const HostEntry& r) const {
    return now_ - static_cast<uint32_t>(static_cast<uint32_t>(now_) - r.last_seen);
  }
  uint64_t deadline_of(uint32_t index) const {
    const HostEntry& r = pool_.get<HostEntry>(index);
    const uint64_t seen = last_seen(r);
    if (r.has(HostEntry::kUp)) return seen + r.timeout_ms;
    // Down since the deadline it missed, or since it left.
    const uint64_t down_since = r.has(HostEntry::kLeft) ? seen : seen + r.timeout_ms;
    return down_since + config_.forget_after_ms;
  }
  void store_address(HostEntry& r, const PeerAddress& address) {
    // The common case, an IPv4 host heard from over IPv4 again, inline: a compare, two stores.
    if (address.family == kFamilyIpv4 && r.has(HostEntry::kFamilyV4)) {
      uint32_t ip;
      std::memcpy(&ip, address.ip, 4);
      if (r.addr != ip || r.port != address.port) [[unlikely]] moved(r);
      r.addr = ip;
      r.port = address.port;
      return;
    }
    store_other_address(r, address);
  }
  void store_other_address(HostEntry& r, const PeerAddress& address);
  PeerAddress load_address(const HostEntry& r) const;
  void moved(const HostEntry& r) {
    ++address_changes_;
    last_moved_key_ = r.key;
  }
  void drop(uint32_t index);
  bool fresh(uint32_t index, const Heartbeat& hb);
  HostEvent event(const HostEntry& r, HostEventType type) const;
  HostSnapshot snapshot(uint32_t index) const;
  // Stores `status` for record `index` (when it differs); `update` asks for an update event
  // when it changed. Refusals are counted and leave the old status.
  void apply_status(uint32_t index, StatusView status, bool update, std::vector<HostEvent>& out);
  // Adds the host's current status to `e` (an up event).
  void attach_status(uint32_t index, HostEvent& e);
  void clear_status(uint32_t index);

  DetectorConfig config_;
  SlabPool pool_;
  std::unique_ptr<SlabPool> v6_pool_;  // 16-byte IPv6 addresses, created on the first one
  HostTable table_;
  StatusStore statuses_;
  std::vector<uint8_t> event_bytes_;
  uint64_t status_oversize_ = 0;
  uint64_t status_over_budget_ = 0;
  std::variant<ExpiryFifo, TimingWheel> index_;
  uint32_t default_timeout_;  // timeout_ms + clock_guard_ms, validated to fit kMaxTimeoutMs
  uint64_t now_ = 0;
  uint64_t up_ = 0;
  uint64_t down_ = 0;
  uint64_t refused_ = 0;
  uint64_t forgotten_ = 0;
  uint64_t replayed_ = 0;

  // Replay state of authenticated hosts (docs/protocol.md, "Replay protection"): the highest
  // authenticated incarnation, the highest seq seen in it, and a 64-bit bitmap of the seqs
  // top, top-1, ..., top-63 already accepted (IPsec/WireGuard style), so reordering within 64
  // heartbeats is accepted once and everything else is a replay. Indexed by record index and
  // grown only when a host authenticates: 16 bytes per record up to the highest index an
  // authenticated host holds, nothing for a fleet that does not authenticate. seen == 0 means
  // no state (an accepted seq always sets bit 0).
  struct ReplayWindow {
    uint32_t incarnation;
    uint32_t top;
    uint64_t seen;
  };
  std::vector<ReplayWindow> replay_;
  uint64_t deferred_ = 0;
  uint64_t uncertain_ = 0;
  uint64_t address_changes_ = 0;
  uint64_t last_moved_key_ = 0;
  uint32_t first_record_ = 0;  // the first pool index after the expiry index's sentinels
  uint32_t room_cursor_ = 0;   // where make_room() looks next
};

}  // namespace heartwatch
