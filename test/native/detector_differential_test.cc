// Randomized differential test: millions of operations against the Detector and against a
// reference model written the obvious way (std::map of hosts, a full scan per expire), comparing
// every event and, regularly, every host's state and the counters.
//
// HW_DIFF_OPS sets the operations per configuration, HW_DIFF_SEED the seed.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <ostream>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "core/detector/detector.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define HW_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define HW_SANITIZED 1
#endif
#endif

namespace heartwatch {
namespace {

#ifdef HW_SANITIZED
constexpr uint64_t kDefaultOps = 500'000;
#else
constexpr uint64_t kDefaultOps = 1'000'000;
#endif

uint64_t env_u64(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::strtoull(v, nullptr, 10) : fallback;
}

struct RefHost {
  PeerAddress address;
  bool up;
  bool left;
  uint64_t last_seen;
  uint32_t incarnation;
  uint32_t timeout;
};

// The specification, executed literally.
class Reference {
 public:
  explicit Reference(const DetectorConfig& c) : c_(c) {}

  uint32_t timeout_for(uint32_t interval) const {
    if (interval == 0 || c_.missed_beats == 0) return c_.timeout_ms;
    return static_cast<uint32_t>(std::min<uint64_t>(uint64_t{interval} * c_.missed_beats, kMaxTimeoutMs));
  }

  uint64_t deadline(const RefHost& h) const {
    if (h.up) return h.last_seen + h.timeout;
    if (c_.forget_after_ms == 0) return std::numeric_limits<uint64_t>::max();
    return (h.left ? h.last_seen : h.last_seen + h.timeout) + c_.forget_after_ms;
  }

  static void set_address(RefHost& h, const PeerAddress& a) {
    if (a.family != 0) h.address = a;
  }

  HostEvent event(uint64_t key, const RefHost& h, HostEventType type, uint64_t now) const {
    HostEvent e{};
    e.key = key;
    e.at_ms = now;
    e.last_seen_ms = h.last_seen;
    e.address = h.address;
    e.incarnation = h.incarnation;
    e.type = type;
    return e;
  }

  void heartbeat(const Heartbeat& hb, uint64_t now, std::vector<HostEvent>& out) {
    auto it = hosts_.find(hb.key);
    const uint32_t timeout = timeout_for(hb.interval_ms);
    if (it == hosts_.end()) {
      if (hosts_.size() >= c_.max_hosts) {
        ++refused;
        return;
      }
      RefHost h{};
      h.up = true;
      h.last_seen = now;
      h.incarnation = hb.incarnation;
      h.timeout = timeout;
      set_address(h, hb.address);
      hosts_[hb.key] = h;
      out.push_back(event(hb.key, h, HostEventType::kUp, now));
      return;
    }
    RefHost& h = it->second;
    const bool was_up = h.up;
    const uint32_t previous = h.incarnation;
    h.up = true;
    h.left = false;
    h.last_seen = now;
    h.timeout = timeout;
    if (hb.incarnation != 0) h.incarnation = hb.incarnation;  // 0: not known, keep the old one
    set_address(h, hb.address);
    if (!was_up) {
      HostEvent e = event(hb.key, h, HostEventType::kUp, now);
      e.recovered = true;
      out.push_back(e);
    } else if (hb.incarnation != 0 && previous != hb.incarnation) {
      HostEvent e = event(hb.key, h, HostEventType::kRestart, now);
      e.previous_incarnation = previous;
      out.push_back(e);
    }
  }

  void leave(uint64_t key, const PeerAddress& from, uint64_t now, std::vector<HostEvent>& out) {
    auto it = hosts_.find(key);
    if (it == hosts_.end() || !it->second.up) return;
    RefHost& h = it->second;
    h.up = false;
    h.left = true;
    h.last_seen = now;
    set_address(h, from);
    HostEvent e = event(key, h, HostEventType::kDown, now);
    e.reason = DownReason::kLeft;
    out.push_back(e);
  }

  // Returns the down events sorted by (deadline, key).
  std::vector<std::pair<uint64_t, HostEvent>> expire(uint64_t now) {
    std::vector<std::pair<uint64_t, HostEvent>> downs;
    for (auto& [key, h] : hosts_) {
      if (!h.up || deadline(h) > now) continue;
      const uint64_t d = deadline(h);
      h.up = false;
      HostEvent e = event(key, h, HostEventType::kDown, now);
      e.reason = DownReason::kTimeout;
      downs.emplace_back(d, e);
    }
    for (auto it = hosts_.begin(); it != hosts_.end();) {
      if (!it->second.up && deadline(it->second) <= now) {
        it = hosts_.erase(it);
        ++forgotten;
      } else {
        ++it;
      }
    }
    std::sort(downs.begin(), downs.end(),
              [](const auto& a, const auto& b) { return std::tie(a.first, a.second.key) < std::tie(b.first, b.second.key); });
    return downs;
  }

  bool remove(uint64_t key) { return hosts_.erase(key) != 0; }

  uint64_t earliest_deadline() const {
    uint64_t best = std::numeric_limits<uint64_t>::max();
    for (const auto& [key, h] : hosts_) best = std::min(best, deadline(h));
    return best;
  }

  const std::map<uint64_t, RefHost>& hosts() const { return hosts_; }
  const RefHost* find(uint64_t key) const {
    auto it = hosts_.find(key);
    return it == hosts_.end() ? nullptr : &it->second;
  }

  uint64_t refused = 0;
  uint64_t forgotten = 0;

 private:
  DetectorConfig c_;
  std::map<uint64_t, RefHost> hosts_;
};

std::string describe(const HostEvent& e) {
  return "{key " + std::to_string(e.key) + " type " + std::to_string(static_cast<int>(e.type)) + " at " +
         std::to_string(e.at_ms) + " last_seen " + std::to_string(e.last_seen_ms) + " inc " +
         std::to_string(e.incarnation) + " prev " + std::to_string(e.previous_incarnation) + " reason " +
         std::to_string(static_cast<int>(e.reason)) + " recovered " + std::to_string(e.recovered) + " family " +
         std::to_string(e.address.family) + " port " + std::to_string(e.address.port) + "}";
}

bool same(const HostEvent& a, const HostEvent& b) {
  return a.key == b.key && a.at_ms == b.at_ms && a.last_seen_ms == b.last_seen_ms && a.address == b.address &&
         a.incarnation == b.incarnation && a.previous_incarnation == b.previous_incarnation && a.type == b.type &&
         a.reason == b.reason && a.recovered == b.recovered;
}

void expect_same_events(const std::vector<HostEvent>& got, const std::vector<HostEvent>& want, uint64_t op) {
  ASSERT_EQ(got.size(), want.size()) << "op " << op;
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_TRUE(same(got[i], want[i])) << "op " << op << " event " << i << ": got " << describe(got[i])
                                       << " want " << describe(want[i]);
  }
}

void expect_same_host(const std::optional<HostSnapshot>& got, const RefHost* want, uint64_t key, uint64_t op) {
  ASSERT_EQ(got.has_value(), want != nullptr) << "op " << op << " key " << key;
  if (want == nullptr) return;
  ASSERT_EQ(got->key, key);
  ASSERT_EQ(got->up, want->up) << "op " << op << " key " << key;
  ASSERT_EQ(got->last_seen_ms, want->last_seen) << "op " << op << " key " << key;
  ASSERT_EQ(got->incarnation, want->incarnation) << "op " << op << " key " << key;
  ASSERT_EQ(got->timeout_ms, want->timeout) << "op " << op << " key " << key;
  ASSERT_TRUE(got->address == want->address) << "op " << op << " key " << key;
}

struct Scenario {
  const char* name;
  DetectorConfig config;
  uint32_t keyspace;
  uint64_t start_ms;
  bool pipeline = false;  // grown past Detector::kCacheResidentBytes: batches take the pipeline
};

constexpr uint64_t kBallastHosts = 40'000;  // 1.3 MB of records

class Generator {
 public:
  Generator(uint64_t seed, uint32_t keyspace) : rng_(seed), keyspace_(keyspace) {}

  uint64_t key() { return 1 + below(keyspace_) * 0x9E3779B97F4A7C15ULL % (uint64_t{1} << 62); }
  uint64_t below(uint64_t n) { return rng_() % n; }
  bool chance(uint32_t per_million) { return below(1'000'000) < per_million; }

  PeerAddress address(uint64_t key) {
    PeerAddress a{};
    const uint64_t r = below(100);
    if (r < 5) return a;  // unknown: keeps the last address
    a.port = static_cast<uint16_t>(1000 + below(3));
    if (r < 85) {
      a.family = 4;
      const uint32_t ip = static_cast<uint32_t>(key * 2654435761u + below(2));
      std::memcpy(a.ip, &ip, 4);
    } else {
      a.family = 6;
      for (int i = 0; i < 16; ++i) a.ip[i] = static_cast<uint8_t>(key >> (i % 8) ^ below(2));
    }
    return a;
  }

  uint32_t interval() {
    static constexpr uint32_t kChoices[] = {0, 0, 0, 1, 7, 50, 63, 64, 65, 100, 1000, 4096, 20000};
    if (chance(2000)) return 10'000'000;  // clamped to kMaxTimeoutMs
    return kChoices[below(std::size(kChoices))];
  }

  Heartbeat heartbeat() {
    Heartbeat hb{};
    hb.key = key();
    hb.address = address(hb.key);
    hb.seq = static_cast<uint32_t>(rng_());
    hb.incarnation = static_cast<uint32_t>(hb.key & 7) + (chance(20'000) ? 1 + static_cast<uint32_t>(below(3)) : 0);
    hb.interval_ms = interval();
    return hb;
  }

  uint64_t step() {
    if (chance(20)) return 3'600'000 + below(8 * 3'600'000ULL);  // hours: upper wheel levels
    if (chance(2'000)) return 60'000 + below(600'000);
    if (chance(50'000)) return 500 + below(5'000);
    return below(25);
  }

 private:
  std::mt19937_64 rng_;
  uint32_t keyspace_;
};

void run(const Scenario& s, uint64_t ops, uint64_t seed) {
  SCOPED_TRACE(std::string(s.name) + " seed " + std::to_string(seed));
  Detector detector(s.config);
  Reference ref(s.config);
  if (s.pipeline) {
    // Hosts heard once and removed before the run: the records stay handed out (and are
    // reused), so the detector is past its in-cache size while the reference knows none.
    std::vector<HostEvent> ignored;
    Heartbeat hb{};
    for (uint64_t k = 1; k <= kBallastHosts; ++k) {
      hb.key = (uint64_t{1} << 63) + k;
      detector.heartbeat(hb, s.start_ms, ignored);
    }
    for (uint64_t k = 1; k <= kBallastHosts; ++k) ASSERT_TRUE(detector.remove((uint64_t{1} << 63) + k));
  }
  ASSERT_EQ(detector.cache_resident(), !s.pipeline);
  Generator gen(seed, s.keyspace);
  uint64_t now = s.start_ms;
  std::vector<HostEvent> got;
  std::vector<HostEvent> want;
  std::vector<Heartbeat> batch;
  uint64_t events = 0;

  for (uint64_t op = 0; op < ops; ++op) {
    got.clear();
    want.clear();
    const uint64_t kind = gen.below(1000);
    if (kind < 550) {
      const Heartbeat hb = gen.heartbeat();
      detector.heartbeat(hb, now, got);
      ref.heartbeat(hb, now, want);
      expect_same_events(got, want, op);
      expect_same_host(detector.host(hb.key), ref.find(hb.key), hb.key, op);
    } else if (kind < 620) {
      batch.resize(1 + gen.below(100));  // shorter and longer than the pipeline's lag
      for (Heartbeat& hb : batch) hb = gen.heartbeat();
      detector.heartbeat_batch(batch.data(), batch.size(), now, got);
      for (const Heartbeat& hb : batch) ref.heartbeat(hb, now, want);
      expect_same_events(got, want, op);
    } else if (kind < 660) {
      const uint64_t key = gen.key();
      const PeerAddress from = gen.address(key);
      detector.leave(key, from, now, got);
      ref.leave(key, from, now, want);
      expect_same_events(got, want, op);
      expect_same_host(detector.host(key), ref.find(key), key, op);
    } else if (kind < 675) {
      const uint64_t key = gen.key();
      ASSERT_EQ(detector.remove(key), ref.remove(key)) << "op " << op;
    } else if (kind < 850) {
      now += gen.step();
    } else {
      // Drain expire() at one instant in random budgets; the union must be the reference's.
      const size_t budget = gen.chance(500'000) ? 1 + gen.below(8) : std::numeric_limits<size_t>::max();
      for (int calls = 0;; ++calls) {
        const size_t before = got.size();
        const size_t work = detector.expire(now, budget, got);
        ASSERT_LE(work, budget);
        ASSERT_LE(got.size() - before, budget);
        if (work < budget) break;
        ASSERT_LT(calls, 10'000'000) << "expire never finishes";
      }
      const auto downs = ref.expire(now);
      ASSERT_EQ(got.size(), downs.size()) << "op " << op << " now " << now;
      // Deadline order: each event's deadline (from the reference) never decreases.
      std::map<uint64_t, uint64_t> deadline_of;
      for (const auto& [d, e] : downs) deadline_of[e.key] = d;
      for (size_t i = 1; i < got.size(); ++i) {
        ASSERT_LE(deadline_of[got[i - 1].key], deadline_of[got[i].key]) << "op " << op << " out of order";
      }
      std::sort(got.begin(), got.end(), [&](const HostEvent& a, const HostEvent& b) {
        return std::make_pair(deadline_of[a.key], a.key) < std::make_pair(deadline_of[b.key], b.key);
      });
      for (const auto& [d, e] : downs) want.push_back(e);
      expect_same_events(got, want, op);
      // Never later than any deadline, and empty exactly when nothing is armed.
      const uint64_t earliest = ref.earliest_deadline();
      const uint64_t next = detector.next_deadline_ms();
      ASSERT_LE(next, earliest) << "op " << op;
      ASSERT_GT(next, now) << "op " << op << ": work left after a drained expire";
      ASSERT_EQ(next == std::numeric_limits<uint64_t>::max(), earliest == std::numeric_limits<uint64_t>::max());
    }
    events += got.size();

    if (op % 4096 == 0 || op + 1 == ops) {
      const DetectorStats st = detector.stats();
      uint64_t up = 0;
      for (const auto& [key, h] : ref.hosts()) up += h.up ? 1 : 0;
      ASSERT_EQ(st.tracked, ref.hosts().size()) << "op " << op;
      ASSERT_EQ(st.up, up) << "op " << op;
      ASSERT_EQ(st.down, ref.hosts().size() - up) << "op " << op;
      ASSERT_EQ(st.refused, ref.refused) << "op " << op;
      ASSERT_EQ(st.forgotten, ref.forgotten) << "op " << op;
      size_t seen = 0;
      detector.for_each_host([&](const HostSnapshot& h) {
        ++seen;
        expect_same_host(h, ref.find(h.key), h.key, op);
      });
      ASSERT_EQ(seen, ref.hosts().size()) << "op " << op;
    }
  }
  // The run must have exercised the interesting paths, or it proves little.
  EXPECT_GT(events, ops / 20);
  EXPECT_GT(ref.forgotten + ref.refused, 0u);
}

DetectorConfig config(ExpiryIndexKind index, uint32_t missed, uint32_t max_hosts, uint32_t forget, bool lazy) {
  DetectorConfig c;
  c.timeout_ms = 3000;
  c.missed_beats = missed;
  c.max_hosts = max_hosts;
  c.forget_after_ms = forget;
  c.index = index;
  c.initial_capacity = 16;  // growth and incremental rehash happen during the run
  c.lazy_rearm = lazy;
  // The reference refuses every new host at the cap; which down host make_room() picks depends
  // on record placement, so Detector.AFullTableTakesANewHostInTheOldestDownHostsPlace checks it.
  c.reclaim_down = false;
  return c;
}

const Scenario kScenarios[] = {
    // Starts just below 2^32 ms so the records' 32-bit clock wraps during the run.
    {"wheel-lazy", config(ExpiryIndexKind::kWheel, 3, 500, 20'000, true), 600, (uint64_t{1} << 32) - 200'000},
    {"wheel-lazy-no-forget", config(ExpiryIndexKind::kWheel, 3, 550, 0, true), 600, uint64_t{1} << 40},
    {"wheel-relink", config(ExpiryIndexKind::kWheel, 2, 500, 4'000, false), 600, 123'456},
    {"fifo", config(ExpiryIndexKind::kFifo, 0, 500, 10'000, true), 600, (uint64_t{1} << 32) - 50'000},
    {"fifo-no-forget", config(ExpiryIndexKind::kFifo, 0, 450, 0, true), 500, 0},
    {"wheel-lazy-pipeline", config(ExpiryIndexKind::kWheel, 3, 40'500, 20'000, true), 600, 777, true},
    {"fifo-pipeline", config(ExpiryIndexKind::kFifo, 0, 40'500, 10'000, true), 600, 0, true},
};

void PrintTo(const Scenario& s, std::ostream* os) { *os << s.name; }

class DetectorDifferential : public ::testing::TestWithParam<Scenario> {};

TEST_P(DetectorDifferential, MatchesReferenceModel) {
  run(GetParam(), env_u64("HW_DIFF_OPS", kDefaultOps), env_u64("HW_DIFF_SEED", 20261121));
}

INSTANTIATE_TEST_SUITE_P(Scenarios, DetectorDifferential, ::testing::ValuesIn(kScenarios),
                         [](const auto& info) {
                           std::string name = info.param.name;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

}  // namespace
}  // namespace heartwatch
