// Statuses: the StatusStore on its own, and the detector's status rules (issue 13).
#include "core/detector/status_store.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/detector/detector.h"

namespace heartwatch {
namespace {

constexpr uint64_t kT0 = 1'000'000;

StatusView view(const std::string& s) {
  return StatusView{reinterpret_cast<const uint8_t*>(s.data()), static_cast<uint32_t>(s.size())};
}

std::string text(std::span<const uint8_t> bytes) { return std::string(bytes.begin(), bytes.end()); }

bool put(StatusStore& store, uint32_t record, const std::string& s) {
  const uint32_t hash = status_hash(reinterpret_cast<const uint8_t*>(s.data()), s.size());
  if (store.check(record, view(s), hash) != StatusChange::kChanged) return false;
  store.put(record, view(s), hash);
  return true;
}

TEST(StatusStore, SizeClassesArePowersOfTwoWithTheHeader) {
  EXPECT_EQ(StatusStore::class_of(1), 0u);
  EXPECT_EQ(StatusStore::class_of(24), 0u);
  EXPECT_EQ(StatusStore::class_of(25), 1u);
  EXPECT_EQ(StatusStore::block_bytes(StatusStore::class_of(64)), 128u);
  EXPECT_EQ(StatusStore::block_bytes(StatusStore::class_of(kMaxStatusBytes)), 128u * 1024);
}

TEST(StatusStore, KeepsReplacesAndErases) {
  StatusStore store(1024, 1 << 20);
  EXPECT_TRUE(put(store, 5, "ready"));
  EXPECT_EQ(text(store.get(5)), "ready");
  EXPECT_FALSE(put(store, 5, "ready"));  // unchanged
  EXPECT_TRUE(put(store, 5, std::string(100, 'x')));
  EXPECT_EQ(text(store.get(5)), std::string(100, 'x'));
  EXPECT_EQ(store.bytes_in_use(), 128u);
  EXPECT_EQ(store.count(), 1u);
  EXPECT_TRUE(store.erase(5));
  EXPECT_FALSE(store.erase(5));
  EXPECT_TRUE(store.get(5).empty());
  EXPECT_EQ(store.bytes_in_use(), 0u);
  EXPECT_EQ(store.count(), 0u);
}

TEST(StatusStore, RefusesOversizeAndOverBudgetAndKeepsTheOld) {
  StatusStore store(64, 64);  // two 32-byte blocks
  const std::string big(65, 'b');
  EXPECT_EQ(store.check(1, view(big), status_hash(reinterpret_cast<const uint8_t*>(big.data()), big.size())),
            StatusChange::kOversize);
  EXPECT_TRUE(put(store, 1, "a"));
  EXPECT_TRUE(put(store, 2, "b"));
  const std::string third = "c";
  EXPECT_EQ(store.check(3, view(third), status_hash(reinterpret_cast<const uint8_t*>(third.data()), 1)),
            StatusChange::kOverBudget);
  // Replacing within the same block size fits the budget: the old block is freed.
  EXPECT_TRUE(put(store, 2, "B"));
  EXPECT_EQ(text(store.get(2)), "B");
}

TEST(StatusStore, MatchesAMapUnderRandomChurn) {
  StatusStore store(300, 1 << 24);
  std::unordered_map<uint32_t, std::string> model;
  std::mt19937 rng(42);
  for (int step = 0; step < 50'000; ++step) {
    const uint32_t record = 1 + rng() % 2000;
    if (rng() % 4 == 0) {
      EXPECT_EQ(store.erase(record), model.erase(record) == 1);
      continue;
    }
    const std::string s(1 + rng() % 300, static_cast<char>('a' + rng() % 3));
    const bool changed = put(store, record, s);
    auto it = model.find(record);
    EXPECT_EQ(changed, it == model.end() || it->second != s);
    model[record] = s;
  }
  EXPECT_EQ(store.count(), model.size());
  for (const auto& [record, s] : model) EXPECT_EQ(text(store.get(record)), s) << record;
  for (const auto& [record, s] : model) store.erase(record);
  EXPECT_EQ(store.bytes_in_use(), 0u);
}

DetectorConfig status_config() {
  DetectorConfig c;
  c.timeout_ms = 1000;
  c.missed_beats = 3;
  c.max_status_bytes = 64;
  c.status_budget_bytes = 4096;
  c.forget_after_ms = 5000;
  return c;
}

Heartbeat beat(uint64_t key, uint32_t incarnation = 1) {
  Heartbeat hb{};
  hb.key = key;
  hb.address.family = 4;
  hb.address.port = 9000;
  hb.address.ip[3] = static_cast<uint8_t>(key);
  hb.incarnation = incarnation;
  return hb;
}

std::string status_of(const Detector& d, const HostEvent& e) {
  return std::string(d.event_bytes().begin() + e.status_offset,
                     d.event_bytes().begin() + e.status_offset + e.status_size);
}

std::string previous_of(const Detector& d, const HostEvent& e) {
  const auto start = d.event_bytes().begin() + e.status_offset + e.status_size;
  return std::string(start, start + e.previous_size);
}

TEST(DetectorStatus, AStatusOnTheFirstBeatIsPartOfUp) {
  Detector d(status_config());
  std::vector<HostEvent> out;
  d.heartbeat(beat(7), kT0, out, view("booting"));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].type, HostEventType::kUp);
  EXPECT_EQ(status_of(d, out[0]), "booting");
  EXPECT_EQ(out[0].previous_size, 0u);
  EXPECT_EQ(text(d.host(7)->status), "booting");
}

TEST(DetectorStatus, UnchangedCostsNoEventChangedGivesExactlyOne) {
  Detector d(status_config());
  std::vector<HostEvent> out;
  d.heartbeat(beat(7), kT0, out, view("a"));
  out.clear();
  d.clear_event_bytes();
  d.heartbeat(beat(7), kT0 + 1, out, view("a"));
  d.heartbeat(beat(7), kT0 + 2, out);  // no payload: the status stays
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(text(d.host(7)->status), "a");
  d.heartbeat(beat(7), kT0 + 3, out, view("b"));
  d.heartbeat(beat(7), kT0 + 4, out, view("b"));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].type, HostEventType::kUpdate);
  EXPECT_EQ(status_of(d, out[0]), "b");
  EXPECT_EQ(previous_of(d, out[0]), "a");
  // Same length and a different byte: still a change.
  d.heartbeat(beat(7), kT0 + 5, out, view("c"));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(previous_of(d, out[1]), "b");
}

TEST(DetectorStatus, OversizeAndBudgetAreRefusedCountedAndTheHostStaysTracked) {
  DetectorConfig c = status_config();
  c.status_budget_bytes = 64;  // two 32-byte blocks
  Detector d(c);
  std::vector<HostEvent> out;
  d.heartbeat(beat(1), kT0, out, StatusView{nullptr, 65});  // a producer passes only the size
  d.heartbeat(beat(2), kT0, out, view("two"));
  d.heartbeat(beat(3), kT0, out, view("three"));
  d.heartbeat(beat(4), kT0, out, view("four"));
  ASSERT_EQ(out.size(), 4u);  // four ups
  EXPECT_EQ(out[0].status_size, 0u);
  EXPECT_EQ(out[3].status_size, 0u);  // refused: budget
  const DetectorStats s = d.stats();
  EXPECT_EQ(s.tracked, 4u);
  EXPECT_EQ(s.up, 4u);
  EXPECT_EQ(s.status_oversize, 1u);
  EXPECT_EQ(s.status_over_budget, 1u);
  EXPECT_EQ(s.statuses, 2u);
  EXPECT_TRUE(d.host(1)->status.empty());
  EXPECT_TRUE(d.host(4)->status.empty());
}

TEST(DetectorStatus, ARestartWithANewStatusIsRestartThenUpdate) {
  Detector d(status_config());
  std::vector<HostEvent> out;
  d.heartbeat(beat(7, 1), kT0, out, view("v1"));
  out.clear();
  d.heartbeat(beat(7, 2), kT0 + 10, out, view("v2"));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].type, HostEventType::kRestart);
  EXPECT_EQ(out[1].type, HostEventType::kUpdate);
  EXPECT_EQ(status_of(d, out[1]), "v2");
  EXPECT_EQ(previous_of(d, out[1]), "v1");
}

TEST(DetectorStatus, ARecoveryCarriesTheStatusInItsUp) {
  Detector d(status_config());
  std::vector<HostEvent> out;
  d.heartbeat(beat(7), kT0, out, view("old"));
  d.expire(kT0 + 3000, 100, out);
  out.clear();
  d.heartbeat(beat(7), kT0 + 3500, out, view("new"));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0].recovered);
  EXPECT_EQ(status_of(d, out[0]), "new");
  out.clear();
  d.expire(kT0 + 7000, 100, out);
  d.heartbeat(beat(7), kT0 + 7500, out);  // no payload: up carries the kept status
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(status_of(d, out[1]), "new");
}

TEST(DetectorStatus, LeaveForgetAndRemoveFreeTheStatus) {
  Detector d(status_config());
  std::vector<HostEvent> out;
  d.heartbeat(beat(1), kT0, out, view("one"));
  d.heartbeat(beat(2), kT0, out, view("two"));
  d.heartbeat(beat(3), kT0, out, view("three"));
  EXPECT_EQ(d.stats().statuses, 3u);
  EXPECT_EQ(d.stats().status_bytes, 96u);
  d.leave(1, beat(1).address, kT0 + 1, out);
  EXPECT_TRUE(d.host(1)->status.empty());
  EXPECT_TRUE(d.remove(2));
  EXPECT_EQ(d.stats().statuses, 1u);
  d.expire(kT0 + 3001, 100, out);            // 3 down
  EXPECT_EQ(text(d.host(3)->status), "three");  // a down host keeps its status
  d.expire(kT0 + 3001 + 5000, 100, out);     // 3 forgotten
  EXPECT_FALSE(d.host(3).has_value());
  EXPECT_EQ(d.stats().statuses, 0u);
  EXPECT_EQ(d.stats().status_bytes, 0u);
}

TEST(DetectorStatus, StatusesOffIgnorePayloads) {
  DetectorConfig c = status_config();
  c.max_status_bytes = 0;
  Detector d(c);
  std::vector<HostEvent> out;
  d.heartbeat(beat(7), kT0, out, view("x"));
  d.heartbeat(beat(7), kT0 + 1, out, view("y"));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].status_size, 0u);
  EXPECT_EQ(d.stats().status_oversize, 0u);
}

TEST(DetectorStatus, BatchesCarryOneStatusPerHeartbeat) {
  Detector d(status_config());
  std::vector<HostEvent> out;
  const std::string a = "a", b = "b";
  const Heartbeat hbs[3] = {beat(1), beat(2), beat(1)};
  const StatusView views[3] = {view(a), StatusView{}, view(b)};
  d.heartbeat_batch(hbs, 3, kT0, out, views);
  ASSERT_EQ(out.size(), 3u);  // up 1 (a), up 2, update 1 (b)
  EXPECT_EQ(status_of(d, out[0]), "a");
  EXPECT_EQ(out[1].status_size, 0u);
  EXPECT_EQ(out[2].type, HostEventType::kUpdate);
  EXPECT_EQ(status_of(d, out[2]), "b");
}

// Past the in-cache size a batch takes the prefetching pipeline, whose stages run in separate
// loops at a batch's ends and middle and, with statuses, one stage more (a longer lag). Batches
// of 1 to 100 heartbeats (shorter and longer than either lag, keys repeated within a batch)
// must decide what the same heartbeats one by one decide: the same events with the same bytes.
TEST(DetectorStatus, PipelinedBatchesDecideWhatSingleHeartbeatsDo) {
  DetectorConfig c = status_config();
  c.max_hosts = 60'000;
  c.initial_capacity = 60'000;
  c.status_budget_bytes = uint64_t{60'000} * 256;
  Detector batched(c);
  Detector single(c);
  std::mt19937_64 rng(14);
  std::vector<Heartbeat> hbs;
  std::vector<std::string> texts;
  std::vector<StatusView> views;
  std::vector<HostEvent> got;
  std::vector<HostEvent> want;
  uint64_t now = kT0;
  for (int round = 0; round < 3000; ++round, ++now) {
    const size_t n = 1 + rng() % 100;
    hbs.resize(n);
    texts.resize(n);
    views.resize(n);
    for (size_t i = 0; i < n; ++i) {
      hbs[i] = beat(1 + rng() % 50'000);
      const uint64_t kind = rng() % 4;  // none, a fixed one, one that changes, one too long
      texts[i] = kind == 1 ? std::string("steady") : std::string(kind == 2 ? 1 + rng() % 3 : 65, 'v');
      views[i] = kind == 0 ? StatusView{} : view(texts[i]);
    }
    got.clear();
    want.clear();
    batched.clear_event_bytes();
    single.clear_event_bytes();
    batched.heartbeat_batch(hbs.data(), n, now, got, views.data());
    for (size_t i = 0; i < n; ++i) single.heartbeat(hbs[i], now, want, views[i]);
    ASSERT_EQ(got.size(), want.size()) << "round " << round;
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i].type, want[i].type) << "round " << round << " event " << i;
      EXPECT_EQ(got[i].key, want[i].key) << "round " << round << " event " << i;
      EXPECT_EQ(status_of(batched, got[i]), status_of(single, want[i])) << "round " << round;
      EXPECT_EQ(previous_of(batched, got[i]), previous_of(single, want[i])) << "round " << round;
    }
  }
  EXPECT_FALSE(batched.cache_resident());
  EXPECT_EQ(batched.stats().statuses, single.stats().statuses);
  EXPECT_EQ(batched.stats().status_oversize, single.stats().status_oversize);
  EXPECT_GT(batched.stats().status_oversize, 0u);
}

TEST(DetectorStatus, ConfigOutOfRangeIsRefused) {
  DetectorConfig c = status_config();
  c.max_status_bytes = kMaxStatusBytes + 1;
  EXPECT_THROW(Detector{c}, std::invalid_argument);
}

}  // namespace
}  // namespace heartwatch
