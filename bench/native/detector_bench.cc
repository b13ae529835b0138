// Side-by-side micro-benchmark of failure detectors on the same work, one pinned thread.
//
// Contenders: heartwatch's Detector (FIFO index; timing wheel with lazy re-arm; wheel that
// relinks on every heartbeat), std::unordered_map + std::list (the textbook FIFO), a min-heap
// of deadlines with an index (etcd's lease queue) and a full scan every 500 ms (Eureka's
// evictor, at a far shorter period than its 60 s); and bench-harness, the same loop with no
// detector, whose figure is the harness's own share of every row.
//
// Work per size N: every host registers, then R rounds in which each host sends one heartbeat
// (period 1 s, random order, batches of 64 as recvmmsg delivers them) while the clock advances
// and expire() runs every simulated millisecond; then all hosts fall silent and the clock runs
// on, 1 ms per expire(), until every host is down (timeout 3 s). Reported, in CPU time of the
// measuring thread: ns per heartbeat (rounds, expire ticks included), ns per expiry (the
// silent phase); and bytes per host (the structure's own accounting of every block it holds,
// malloc headers included for the std containers; the RSS growth is printed beside it as a
// cross-check).
//
// A churn scenario (hosts leave and new ones join continuously) compares allocators: run it
// with HEARTWATCH_ALLOCATOR=system, and with LD_PRELOAD=libtcmalloc_minimal.so.4 for the std
// baseline.
//
// Usage: detector_bench [--cpu N] [--quick] [--sizes 10000,1000000] [--no-churn] [--churn-only]
//                       [--only CONTENDER]
#include <dlfcn.h>
#include <malloc.h>
#include <sched.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <list>
#include <memory>
#include <new>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/common/chunk_allocator.h"
#include "core/detector/detector.h"

namespace heartwatch {
namespace {

constexpr uint64_t kTimeoutMs = 3000;
constexpr uint64_t kPeriodMs = 1000;
constexpr uint64_t kScanEveryMs = 500;
constexpr size_t kBatch = 64;
constexpr uint64_t kStartMs = 1'000'000;

// ---------------------------------------------------------------------------------------------
// Memory accounting for the std containers: every block they take, as malloc sizes it.

size_t g_counted_bytes = 0;

template <class T>
struct CountingAllocator {
  using value_type = T;
  CountingAllocator() = default;
  template <class U>
  CountingAllocator(const CountingAllocator<U>&) {}
  T* allocate(size_t n) {
    void* p = std::malloc(n * sizeof(T));
    if (p == nullptr) throw std::bad_alloc();
    g_counted_bytes += malloc_usable_size(p) + sizeof(size_t);  // + the chunk header
    return static_cast<T*>(p);
  }
  void deallocate(T* p, size_t) {
    g_counted_bytes -= malloc_usable_size(p) + sizeof(size_t);
    std::free(p);
  }
  template <class U>
  bool operator==(const CountingAllocator<U>&) const {
    return true;
  }
};

template <class K, class V>
using CountingMap = std::unordered_map<K, V, std::hash<K>, std::equal_to<K>, CountingAllocator<std::pair<const K, V>>>;

size_t rss_bytes() {
  long pages = 0;
  long resident = 0;
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
  std::fclose(f);
  return static_cast<size_t>(resident) * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

// ---------------------------------------------------------------------------------------------
// Contenders. Each keeps what a detector must: key, last seen, address, incarnation.

// Statuses (issue 13): which hosts carry a 64-byte status on every heartbeat, and how often it
// changes. kTenthChanging: every 10th host, its status changing every 100th beat (staggered by
// key); kAllUnchanged: every host, never changing (the per-beat cost of an unchanged status).
enum class StatusLoad : uint8_t { kNone, kTenthChanging, kAllUnchanged };
constexpr size_t kStatusBytes = 64;

class HeartwatchContender {
 public:
  HeartwatchContender(ExpiryIndexKind kind, bool lazy, uint32_t hosts, StatusLoad load = StatusLoad::kNone)
      : detector_(config(kind, lazy, hosts, load)), load_(load) {
    events_.reserve(1 << 16);
  }
  void beat(const Heartbeat* hbs, size_t n, uint64_t now) {
    if (load_ == StatusLoad::kNone) {
      detector_.heartbeat_batch(hbs, n, now, events_);
    } else {
      fill_statuses(hbs, n, now);
      detector_.heartbeat_batch(hbs, n, now, events_, views_);
      for (const HostEvent& e : events_) updates_ += e.type == HostEventType::kUpdate ? 1 : 0;
    }
    events_.clear();
    detector_.clear_event_bytes();
  }
  uint64_t updates() const { return updates_; }
  size_t expire(uint64_t now) {
    size_t down = 0;
    while (detector_.expire(now, 1 << 14, events_) == (1 << 14)) {
      down += events_.size();
      events_.clear();
    }
    down += events_.size();
    events_.clear();
    return down;
  }
  void leave(uint64_t key) { detector_.remove(key); }
  size_t bytes() const { return detector_.stats().bytes_allocated; }

 private:
  // The bytes a receiver would hand over: key and version in a 64-byte status.
  void fill_statuses(const Heartbeat* hbs, size_t n, uint64_t now) {
    const uint64_t beat_number = now / kPeriodMs;
    for (size_t i = 0; i < n; ++i) {
      const uint64_t key = hbs[i].key;
      // Keys are odd (bench keys are random | 1): take every 10th by the bits above.
      if (load_ == StatusLoad::kTenthChanging && (key >> 1) % 10 != 0) {
        views_[i] = StatusView{};
        continue;
      }
      const uint64_t version = load_ == StatusLoad::kAllUnchanged ? 0 : (beat_number + key / 10) / 100;
      std::memcpy(statuses_[i], &key, 8);
      std::memcpy(statuses_[i] + 8, &version, 8);
      views_[i] = StatusView{statuses_[i], kStatusBytes};
    }
  }
  static DetectorConfig config(ExpiryIndexKind kind, bool lazy, uint32_t hosts, StatusLoad load) {
    DetectorConfig c;
    if (load != StatusLoad::kNone) {
      c.max_status_bytes = kStatusBytes;
      c.status_budget_bytes = uint64_t{hosts} * 256;
    }
    c.timeout_ms = kTimeoutMs;
    c.missed_beats = 0;
    c.index = kind;
    c.lazy_rearm = lazy;
    c.max_hosts = hosts + 1024;
    c.initial_capacity = hosts;
    return c;
  }
  Detector detector_;
  std::vector<HostEvent> events_;
  StatusLoad load_;
  uint8_t statuses_[kBatch][kStatusBytes] = {};
  StatusView views_[kBatch];
  uint64_t updates_ = 0;
};

struct StdHost {
  uint64_t key;
  uint64_t last_seen;
  uint32_t ip;
  uint16_t port;
  uint32_t incarnation;
};

class MapListContender {
 public:
  explicit MapListContender(uint32_t hosts) { map_.reserve(hosts); }
  void beat(const Heartbeat* hbs, size_t n, uint64_t now) {
    for (size_t i = 0; i < n; ++i) {
      const Heartbeat& hb = hbs[i];
      auto it = map_.find(hb.key);
      if (it == map_.end()) {
        list_.push_back(StdHost{hb.key, now, ip_of(hb), hb.address.port, hb.incarnation});
        map_.emplace(hb.key, std::prev(list_.end()));
        continue;
      }
      list_.splice(list_.end(), list_, it->second);
      it->second->last_seen = now;
      it->second->ip = ip_of(hb);
      it->second->incarnation = hb.incarnation;
    }
  }
  size_t expire(uint64_t now) {
    size_t down = 0;
    while (!list_.empty() && list_.front().last_seen + kTimeoutMs <= now) {
      map_.erase(list_.front().key);
      list_.pop_front();
      ++down;
    }
    return down;
  }
  void leave(uint64_t key) {
    auto it = map_.find(key);
    if (it == map_.end()) return;
    list_.erase(it->second);
    map_.erase(it);
  }
  size_t bytes() const { return g_counted_bytes; }
  static uint32_t ip_of(const Heartbeat& hb) {
    uint32_t ip;
    std::memcpy(&ip, hb.address.ip, 4);
    return ip;
  }

 private:
  using List = std::list<StdHost, CountingAllocator<StdHost>>;
  List list_;
  CountingMap<uint64_t, List::iterator> map_;
};

// etcd's lessor keeps leases in a map and their expiries in a heap with positions (heap.Fix on
// renew), so a renewal is a hash lookup plus an O(log n) sift.
class HeapContender {
 public:
  explicit HeapContender(uint32_t hosts) {
    map_.reserve(hosts);
    leases_.reserve(hosts);
    heap_.reserve(hosts);
  }
  void beat(const Heartbeat* hbs, size_t n, uint64_t now) {
    for (size_t i = 0; i < n; ++i) {
      const Heartbeat& hb = hbs[i];
      auto it = map_.find(hb.key);
      if (it == map_.end()) {
        const uint32_t id = static_cast<uint32_t>(leases_.size());
        leases_.push_back(Lease{StdHost{hb.key, now, MapListContender::ip_of(hb), hb.address.port, hb.incarnation},
                                now + kTimeoutMs, static_cast<uint32_t>(heap_.size())});
        heap_.push_back(id);
        map_.emplace(hb.key, id);
        sift_up(leases_[id].pos);
        continue;
      }
      Lease& l = leases_[it->second];
      l.host.last_seen = now;
      l.host.ip = MapListContender::ip_of(hb);
      l.host.incarnation = hb.incarnation;
      l.deadline = now + kTimeoutMs;
      sift_down(l.pos);
    }
  }
  size_t expire(uint64_t now) {
    size_t down = 0;
    while (!heap_.empty() && leases_[heap_[0]].deadline <= now) {
      const uint32_t id = heap_[0];
      leases_[id].deadline = UINT64_MAX;  // down: parked at the bottom of the heap
      sift_down(0);
      ++down;
      if (leases_[heap_[0]].deadline == UINT64_MAX) break;
    }
    return down;
  }
  size_t bytes() const {
    return g_counted_bytes + leases_.capacity() * sizeof(Lease) + heap_.capacity() * sizeof(uint32_t);
  }

 private:
  struct Lease {
    StdHost host;
    uint64_t deadline;
    uint32_t pos;
  };
  bool less(uint32_t a, uint32_t b) const { return leases_[heap_[a]].deadline < leases_[heap_[b]].deadline; }
  void swap_at(uint32_t a, uint32_t b) {
    std::swap(heap_[a], heap_[b]);
    leases_[heap_[a]].pos = a;
    leases_[heap_[b]].pos = b;
  }
  void sift_up(uint32_t i) {
    while (i > 0 && less(i, (i - 1) / 2)) {
      swap_at(i, (i - 1) / 2);
      i = (i - 1) / 2;
    }
  }
  void sift_down(uint32_t i) {
    const uint32_t n = static_cast<uint32_t>(heap_.size());
    for (;;) {
      uint32_t best = i;
      const uint32_t l = 2 * i + 1;
      if (l < n && less(l, best)) best = l;
      if (l + 1 < n && less(l + 1, best)) best = l + 1;
      if (best == i) return;
      swap_at(i, best);
      i = best;
    }
  }
  CountingMap<uint64_t, uint32_t> map_;
  std::vector<Lease> leases_;
  std::vector<uint32_t> heap_;
};

class FullScanContender {
 public:
  explicit FullScanContender(uint32_t hosts) { map_.reserve(hosts); }
  void beat(const Heartbeat* hbs, size_t n, uint64_t now) {
    for (size_t i = 0; i < n; ++i) {
      const Heartbeat& hb = hbs[i];
      Entry& e = map_[hb.key];
      e.host = StdHost{hb.key, now, MapListContender::ip_of(hb), hb.address.port, hb.incarnation};
      e.up = true;
    }
  }
  size_t expire(uint64_t now) {
    if (now < last_scan_ + kScanEveryMs) return 0;
    last_scan_ = now;
    size_t down = 0;
    for (auto& [key, e] : map_) {
      if (e.up && e.host.last_seen + kTimeoutMs <= now) {
        e.up = false;
        ++down;
      }
    }
    return down;
  }
  size_t bytes() const { return g_counted_bytes; }

 private:
  struct Entry {
    StdHost host;
    bool up;
  };
  CountingMap<uint64_t, Entry> map_;
  uint64_t last_scan_ = 0;
};

// The harness alone: the same batches and expire() ticks, no detector. Its ns/heartbeat is what
// the bench loop itself costs (building the batch, the calls, the clock), in every row above.
class HarnessContender {
 public:
  explicit HarnessContender(uint32_t hosts) : hosts_(hosts) {}
  void beat(const Heartbeat* hbs, size_t n, uint64_t now) {
    for (size_t i = 0; i < n; ++i) keys_ ^= hbs[i].key;
    asm volatile("" : : "r"(keys_));  // consumed, so the batch is really built
    last_beat_ = now;
  }
  // Every host goes down at once, one timeout after the last batch.
  size_t expire(uint64_t now) {
    if (reported_ || now < last_beat_ + kTimeoutMs) return 0;
    reported_ = true;
    return hosts_;
  }
  size_t bytes() const { return 0; }

 private:
  uint32_t hosts_;
  uint64_t keys_ = 0;
  uint64_t last_beat_ = 0;
  bool reported_ = false;
};

// ---------------------------------------------------------------------------------------------

struct Options {
  int cpu = -1;
  bool quick = false;
  bool churn = true;
  bool main = true;
  std::string only;  // run just this contender (and the baseline, for the ratio)
  bool statuses = false;  // add the status contenders (issue 13)
  std::vector<uint32_t> sizes;
};

Options g_options;

struct Result {
  std::string name;
  uint32_t hosts;
  double ns_per_heartbeat;
  double ns_per_expiry;
  double bytes_per_host;
  double rss_per_host;
  size_t expired;
};

// CPU time of this thread: time the shared machine spends running something else does not count.
double cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// Written field by field into the batch slot. Built in a temporary and copied, the struct was
// read back in 16-byte loads over its 1-, 2- and 4-byte stores, which cannot be forwarded: three
// store-forwarding stalls per heartbeat, 18 ns of every contender's ns/heartbeat at 1M hosts.
void fill_heartbeat(Heartbeat& hb, uint64_t key) {
  hb.key = key;
  hb.address.family = 4;
  hb.address.port = static_cast<uint16_t>(key);
  std::memcpy(hb.address.ip, &key, 4);
  std::memset(hb.address.ip + 4, 0, sizeof hb.address.ip - 4);
  hb.seq = 0;
  hb.incarnation = 1;
  hb.interval_ms = 0;
  hb.authenticated = false;
}

// One host's traffic for a round: every key once, random order, spread evenly over the period.
template <class C>
void play_round(C& c, const std::vector<uint64_t>& order, uint64_t round_start, uint64_t& last_tick) {
  Heartbeat batch[kBatch] = {};
  const size_t n = order.size();
  for (size_t base = 0; base < n; base += kBatch) {
    const size_t m = std::min(kBatch, n - base);
    for (size_t j = 0; j < m; ++j) fill_heartbeat(batch[j], order[base + j]);
    const uint64_t now = round_start + base * kPeriodMs / n;
    while (last_tick < now) c.expire(++last_tick);
    c.beat(batch, m, now);
  }
}

template <class C>
Result measure(const char* name, std::unique_ptr<C> (*make)(uint32_t), const std::vector<uint64_t>& keys,
               uint32_t rounds, uint64_t seed) {
  const uint32_t n = static_cast<uint32_t>(keys.size());
  std::mt19937_64 rng(seed);
  std::vector<uint64_t> order = keys;
  malloc_trim(0);
  g_counted_bytes = 0;
  const size_t rss_before = rss_bytes();
  std::unique_ptr<C> c = make(n);

  uint64_t tick = kStartMs;
  std::shuffle(order.begin(), order.end(), rng);
  play_round(*c, order, kStartMs, tick);  // registration, untimed
  const double bytes = static_cast<double>(c->bytes());
  const double rss = static_cast<double>(rss_bytes() - rss_before);

  double beat_seconds = 0;
  for (uint32_t r = 1; r <= rounds; ++r) {
    std::shuffle(order.begin(), order.end(), rng);
    const double t0 = cpu_seconds();
    play_round(*c, order, kStartMs + r * kPeriodMs, tick);
    beat_seconds += cpu_seconds() - t0;
  }

  size_t expired = 0;
  const uint64_t end = tick + kTimeoutMs + kPeriodMs + kScanEveryMs;
  const double t0 = cpu_seconds();
  while (tick < end) expired += c->expire(++tick);
  const double expire_seconds = cpu_seconds() - t0;

  Result res{name, n, beat_seconds * 1e9 / (double{1} * n * rounds), expire_seconds * 1e9 / static_cast<double>(std::max<size_t>(expired, 1)),
             bytes / n, rss / n, expired};
  c.reset();
  return res;
}

void print_results(const std::vector<Result>& results) {
  double baseline = 0;
  for (const Result& r : results) {
    if (r.name == "unordered_map+list") baseline = r.ns_per_heartbeat;
  }
  std::printf("\n%-24s %10s %14s %12s %13s %12s %9s\n", "contender", "hosts", "ns/heartbeat", "ns/expiry", "bytes/host",
              "rss/host", "ratio");
  for (const Result& r : results) {
    std::printf("%-24s %10u %14.1f %12.1f %13.1f %12.1f %9.2f%s\n", r.name.c_str(), r.hosts, r.ns_per_heartbeat,
                r.ns_per_expiry, r.bytes_per_host, r.rss_per_host, baseline > 0 ? r.ns_per_heartbeat / baseline : 0.0,
                r.expired == r.hosts ? "" : "  (not every host expired!)");
  }
  for (const Result& r : results) {
    std::printf(
        "{\"bench\":\"detector\",\"contender\":\"%s\",\"hosts\":%u,\"nsPerHeartbeat\":%.1f,\"nsPerExpiry\":%.1f,"
        "\"bytesPerHost\":%.1f,\"ratioToUnorderedMapList\":%.2f}\n",
        r.name.c_str(), r.hosts, r.ns_per_heartbeat, r.ns_per_expiry, r.bytes_per_host,
        baseline > 0 ? r.ns_per_heartbeat / baseline : 0.0);
  }
  std::fflush(stdout);
}

template <class C>
std::unique_ptr<C> make_plain(uint32_t n) {
  return std::make_unique<C>(n);
}
std::unique_ptr<HeartwatchContender> make_fifo(uint32_t n) {
  return std::make_unique<HeartwatchContender>(ExpiryIndexKind::kFifo, true, n);
}
std::unique_ptr<HeartwatchContender> make_wheel(uint32_t n) {
  return std::make_unique<HeartwatchContender>(ExpiryIndexKind::kWheel, true, n);
}
std::unique_ptr<HeartwatchContender> make_wheel_relink(uint32_t n) {
  return std::make_unique<HeartwatchContender>(ExpiryIndexKind::kWheel, false, n);
}
std::unique_ptr<HeartwatchContender> make_wheel_status_tenth(uint32_t n) {
  return std::make_unique<HeartwatchContender>(ExpiryIndexKind::kWheel, true, n, StatusLoad::kTenthChanging);
}
std::unique_ptr<HeartwatchContender> make_wheel_status_unchanged(uint32_t n) {
  return std::make_unique<HeartwatchContender>(ExpiryIndexKind::kWheel, true, n, StatusLoad::kAllUnchanged);
}

void run_size(uint32_t n, uint32_t rounds) {
  std::mt19937_64 rng(n);
  std::vector<uint64_t> keys(n);
  for (uint64_t& k : keys) k = rng() | 1;  // non-zero; collisions at 64 bits are negligible
  std::vector<Result> results;
  // Each contender runs in a child process of its own: it starts from the same clean heap, and
  // its RSS growth is its own (freed memory that an allocator keeps would hide the next one's).
  auto add = [&](const char* name, auto make) {
    using C = typename decltype(make(0u))::element_type;
    if (!g_options.only.empty() && g_options.only != name) return;
    int fds[2];
    if (pipe(fds) != 0) std::abort();
    std::fflush(stdout);
    const pid_t child = fork();
    if (child == 0) {
      close(fds[0]);
      const Result r = measure<C>(name, make, keys, rounds, 1);
      const double figures[5] = {r.ns_per_heartbeat, r.ns_per_expiry, r.bytes_per_host, r.rss_per_host,
                                 static_cast<double>(r.expired)};
      const bool ok = write(fds[1], figures, sizeof figures) == static_cast<ssize_t>(sizeof figures);
      _exit(ok ? 0 : 1);
    }
    close(fds[1]);
    double figures[5];
    const bool ok = read(fds[0], figures, sizeof figures) == static_cast<ssize_t>(sizeof figures);
    close(fds[0]);
    int status = 0;
    waitpid(child, &status, 0);
    if (!ok || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      std::fprintf(stderr, "contender %s failed\n", name);
      std::exit(1);
    }
    results.push_back(Result{name, n, figures[0], figures[1], figures[2], figures[3], static_cast<size_t>(figures[4])});
  };
  add("unordered_map+list", make_plain<MapListContender>);
  add("heartwatch-fifo", make_fifo);
  add("heartwatch-wheel", make_wheel);
  add("heartwatch-wheel-relink", make_wheel_relink);
  if (g_options.statuses) {
    add("heartwatch-wheel-status10", make_wheel_status_tenth);
    add("heartwatch-wheel-status-same", make_wheel_status_unchanged);
  }
  add("min-heap", make_plain<HeapContender>);
  add("full-scan", make_plain<FullScanContender>);
  add("bench-harness", make_plain<HarnessContender>);
  print_results(results);
}

// Churn: a steady population where every operation is one host leaving and a new one joining,
// among heartbeats from the rest. This is where per-host allocation shows.
template <class C>
double churn(C& c, uint32_t n, uint64_t ops) {
  std::mt19937_64 rng(99);
  std::vector<uint64_t> live(n);
  for (uint64_t& k : live) k = rng() | 1;
  Heartbeat batch[kBatch] = {};
  uint64_t now = kStartMs;
  for (size_t base = 0; base < n; base += kBatch) {
    const size_t m = std::min<size_t>(kBatch, n - base);
    for (size_t j = 0; j < m; ++j) fill_heartbeat(batch[j], live[base + j]);
    c.beat(batch, m, now);
  }
  const double t0 = cpu_seconds();
  for (uint64_t op = 0; op < ops; op += kBatch) {
    for (size_t j = 0; j < kBatch; ++j) {
      const size_t victim = rng() % n;
      c.leave(live[victim]);
      live[victim] = rng() | 1;
      fill_heartbeat(batch[j], live[victim]);
    }
    c.beat(batch, kBatch, ++now);
  }
  return (cpu_seconds() - t0) * 1e9 / static_cast<double>(ops);
}

void run_churn(uint32_t n, uint64_t ops) {
  const bool std_tcmalloc = dlsym(RTLD_DEFAULT, "tc_malloc") != nullptr;  // LD_PRELOADed
  {
    HeartwatchContender c(ExpiryIndexKind::kWheel, true, n);
    const double ns = churn(c, n, ops);
    std::printf("churn  %-24s %10u hosts  %8.1f ns per leave+join  (chunks from %s)\n", "heartwatch-wheel", n, ns,
                ChunkAllocator::backend_name());
    std::printf("{\"bench\":\"detector-churn\",\"contender\":\"heartwatch-wheel\",\"hosts\":%u,\"allocator\":\"%s\","
                "\"nsPerChurnOp\":%.1f}\n",
                n, ChunkAllocator::backend_name(), ns);
  }
  {
    MapListContender c(n);
    const double ns = churn(c, n, ops);
    const char* alloc = std_tcmalloc ? "tcmalloc" : "system";
    std::printf("churn  %-24s %10u hosts  %8.1f ns per leave+join  (malloc: %s)\n", "unordered_map+list", n, ns, alloc);
    std::printf("{\"bench\":\"detector-churn\",\"contender\":\"unordered_map+list\",\"hosts\":%u,\"allocator\":\"%s\","
                "\"nsPerChurnOp\":%.1f}\n",
                n, alloc, ns);
  }
  std::fflush(stdout);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--cpu" && i + 1 < argc) {
      o.cpu = std::atoi(argv[++i]);
    } else if (a == "--quick") {
      o.quick = true;
    } else if (a == "--no-churn") {
      o.churn = false;
    } else if (a == "--only" && i + 1 < argc) {
      o.only = argv[++i];
    } else if (a == "--statuses") {
      o.statuses = true;
    } else if (a == "--churn-only") {
      o.main = false;
    } else if (a == "--sizes" && i + 1 < argc) {
      for (const char* p = argv[++i]; *p != '\0';) {
        char* end = nullptr;
        o.sizes.push_back(static_cast<uint32_t>(std::strtoul(p, &end, 10)));
        p = *end == ',' ? end + 1 : end;
      }
    } else {
      std::fprintf(stderr, "usage: detector_bench [--cpu N] [--quick] [--sizes A,B] [--no-churn] [--churn-only] [--statuses] [--only NAME]\n");
      std::exit(2);
    }
  }
  if (o.sizes.empty()) {
    o.sizes = o.quick ? std::vector<uint32_t>{10'000, 1'000'000} : std::vector<uint32_t>{10'000, 1'000'000, 10'000'000};
  }
  return o;
}

uint32_t rounds_for(uint32_t n, bool quick) {
  if (n <= 100'000) return quick ? 20 : 100;
  if (n <= 2'000'000) return quick ? 2 : 5;
  return 2;
}

}  // namespace
}  // namespace heartwatch

int main(int argc, char** argv) {
  using namespace heartwatch;
  g_options = parse(argc, argv);
  const Options& o = g_options;
  if (o.cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(o.cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0) {
      std::perror("sched_setaffinity");
      return 1;
    }
  }
  std::printf("detector bench: cpu %d, timeout %llu ms, period %llu ms, batches of %zu, chunk allocator %s\n", o.cpu,
              static_cast<unsigned long long>(kTimeoutMs), static_cast<unsigned long long>(kPeriodMs), kBatch,
              ChunkAllocator::backend_name());
  if (o.main) {
    for (uint32_t n : o.sizes) run_size(n, rounds_for(n, o.quick));
  }
  if (o.churn) run_churn(o.quick ? 100'000 : 1'000'000, o.quick ? 2'000'000 : 10'000'000);
  return 0;
}
