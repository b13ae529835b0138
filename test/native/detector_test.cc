#include "core/detector/detector.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

namespace heartwatch {
namespace {

constexpr uint64_t kT0 = 1'000'000;

PeerAddress v4(uint8_t last, uint16_t port = 9000) {
  PeerAddress a{};
  a.family = 4;
  a.port = port;
  a.ip[0] = 10;
  a.ip[3] = last;
  return a;
}

Heartbeat beat(uint64_t key, uint32_t incarnation = 1, uint32_t interval_ms = 0) {
  Heartbeat hb{};
  hb.key = key;
  hb.address = v4(static_cast<uint8_t>(key));
  hb.incarnation = incarnation;
  hb.interval_ms = interval_ms;
  return hb;
}

DetectorConfig wheel_config() {
  DetectorConfig c;
  c.timeout_ms = 1000;
  c.missed_beats = 3;
  return c;
}

size_t drain(Detector& d, uint64_t now, std::vector<HostEvent>& out, size_t budget = 1 << 20) {
  size_t calls = 1;
  while (d.expire(now, budget, out) == budget) ++calls;
  return calls;
}

TEST(Detector, ANewHostComesUp) {
  Detector d(wheel_config());
  std::vector<HostEvent> out;
  d.heartbeat(beat(7, 3), kT0, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].type, HostEventType::kUp);
  EXPECT_FALSE(out[0].recovered);
  EXPECT_EQ(out[0].key, 7u);
  EXPECT_EQ(out[0].at_ms, kT0);
  EXPECT_EQ(out[0].last_seen_ms, kT0);
  EXPECT_EQ(out[0].incarnation, 3u);
  EXPECT_TRUE(out[0].address == v4(7));
  out.clear();
  d.heartbeat(beat(7, 3), kT0 + 10, out);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(d.stats().up, 1u);
}

TEST(Detector, GoesDownAtItsDeadlineAndNotAMillisecondBefore) {
  Detector d(wheel_config());
  std::vector<HostEvent> out;
  d.heartbeat(beat(1), kT0, out);
  d.heartbeat(beat(2, 1, 200), kT0, out);  // announces 200 ms: timeout 600 ms
  out.clear();
  drain(d, kT0 + 599, out);
  EXPECT_TRUE(out.empty());
  drain(d, kT0 + 600, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].key, 2u);
  EXPECT_EQ(out[0].type, HostEventType::kDown);
  EXPECT_EQ(out[0].reason, DownReason::kTimeout);
  EXPECT_EQ(out[0].last_seen_ms, kT0);
  out.clear();
  drain(d, kT0 + 999, out);
  EXPECT_TRUE(out.empty());
  drain(d, kT0 + 1005, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].key, 1u);
  EXPECT_EQ(out[0].at_ms, kT0 + 1005);  // decided at the expire() call
}

TEST(Detector, HeartbeatsKeepAHostUp) {
  for (ExpiryIndexKind kind : {ExpiryIndexKind::kFifo, ExpiryIndexKind::kWheel}) {
    DetectorConfig c = wheel_config();
    c.index = kind;
    c.missed_beats = kind == ExpiryIndexKind::kFifo ? 0 : 3;
    Detector d(c);
    std::vector<HostEvent> out;
    for (uint64_t t = 0; t < 10'000; t += 500) {
      d.heartbeat(beat(1), kT0 + t, out);
      drain(d, kT0 + t + 1, out);
    }
    ASSERT_EQ(out.size(), 1u);  // only the first up
    // The FIFO knows the exact deadline; the wheel gives its slot's start, never later.
    if (kind == ExpiryIndexKind::kFifo) {
      EXPECT_EQ(d.next_deadline_ms(), kT0 + 9500 + 1000);
    } else {
      EXPECT_LE(d.next_deadline_ms(), kT0 + 9500 + 1000);
      EXPECT_GT(d.next_deadline_ms(), kT0 + 9500 + 1);
    }
  }
}

TEST(Detector, IncarnationChangeWhileUpIsARestart) {
  Detector d(wheel_config());
  std::vector<HostEvent> out;
  d.heartbeat(beat(5, 1), kT0, out);
  out.clear();
  d.heartbeat(beat(5, 2), kT0 + 5, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].type, HostEventType::kRestart);
  EXPECT_EQ(out[0].incarnation, 2u);
  EXPECT_EQ(out[0].previous_incarnation, 1u);
  EXPECT_EQ(d.host(5)->incarnation, 2u);
}

TEST(Detector, TheClockGuardDelaysEveryDeadlineByItsMillisecondsButNotTheReportedTimeout) {
  for (ExpiryIndexKind kind : {ExpiryIndexKind::kFifo, ExpiryIndexKind::kWheel}) {
    DetectorConfig config = wheel_config();
    config.index = kind;
    config.missed_beats = 0;
    config.timeout_ms = 100;
    config.clock_guard_ms = 1;
    Detector d(config);
    std::vector<HostEvent> out;
    d.heartbeat(beat(3), kT0, out);
    out.clear();
    drain(d, kT0 + 100, out);
    EXPECT_TRUE(out.empty());
    drain(d, kT0 + 101, out);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].type, HostEventType::kDown);
    EXPECT_EQ(d.host(3)->timeout_ms, 100u);
  }
}

TEST(Detector, AnUnknownIncarnationKeepsTheKnownOneAndIsNoRestart) {
  Detector d(wheel_config());
  std::vector<HostEvent> out;
  d.heartbeat(beat(5, 7), kT0, out);
  out.clear();
  d.heartbeat(beat(5, kUnknownIncarnation), kT0 + 5, out);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(d.host(5)->incarnation, 7u);
  drain(d, kT0 + 2000, out);
  out.clear();
  d.heartbeat(beat(5, kUnknownIncarnation), kT0 + 3000, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0].recovered);
  EXPECT_EQ(out[0].incarnation, 7u);
}

TEST(Detector, ADownHostHeardAgainRecoversWithoutARestart) {
  Detector d(wheel_config());
  std::vector<HostEvent> out;
  d.heartbeat(beat(5, 1), kT0, out);
  drain(d, kT0 + 1000, out);
  out.clear();
  d.heartbeat(beat(5, 9), kT0 + 2000, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].type, HostEventType::kUp);
  EXPECT_TRUE(out[0].recovered);
  EXPECT_EQ(out[0].incarnation, 9u);
  EXPECT_EQ(out[0].previous_incarnation, 0u);
  EXPECT_EQ(d.stats().up, 1u);
  EXPECT_EQ(d.stats().down, 0u);
}

TEST(Detector, LeaveTakesAnUpHostDownAtOnce) {
  Detector d(wheel_config());
  std::vector<HostEvent> out;
  d.heartbeat(beat(3), kT0, out);
  out.clear();
  d.leave(3, v4(99), kT0 + 40, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].type, HostEventType::kDown);
  EXPECT_EQ(out[0].reason, DownReason::kLeft);
  EXPECT_EQ(out[0].last_seen_ms, kT0 + 40);
  EXPECT_TRUE(out[0].address == v4(99));
  out.clear();
  d.leave(3, v4(99), kT0 + 50, out);  // already down
  d.leave(4, v4(99), kT0 + 50, out);  // unknown
  drain(d, kT0 + 100'000, out);      // and no timeout later
  EXPECT_TRUE(out.empty());
}

// tcp.closeMeansDown: a close downs the host only from the address its latest beat came from.
TEST(Detector, DisconnectDownsOnlyFromTheLatestSource) {
  DetectorConfig fifo = wheel_config();
  fifo.index = ExpiryIndexKind::kFifo;
  fifo.missed_beats = 0;
  for (DetectorConfig c : {wheel_config(), fifo}) {
    c.forget_after_ms = 5000;
    Detector d(c);
    std::vector<HostEvent> out;
    d.heartbeat(beat(3), kT0, out);
    Heartbeat moved = beat(3);
    moved.address = v4(3, 9001);  // the host reconnected: a new port
    d.heartbeat(moved, kT0 + 10, out);
    out.clear();
    d.disconnect(3, v4(3), kT0 + 20, out);  // the old connection closes late
    d.disconnect(4, v4(4), kT0 + 20, out);  // unknown
    EXPECT_TRUE(out.empty());
    EXPECT_EQ(d.stats().up, 1u);
    d.disconnect(3, v4(3, 9001), kT0 + 30, out);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].type, HostEventType::kDown);
    EXPECT_EQ(out[0].reason, DownReason::kDisconnected);
    EXPECT_EQ(out[0].at_ms, kT0 + 30);
    EXPECT_EQ(out[0].last_seen_ms, kT0 + 10);  // its last heartbeat, not the close
    EXPECT_EQ(out[0].timeout_ms, 1000u);
    EXPECT_TRUE(out[0].address == v4(3, 9001));
    EXPECT_EQ(d.host(3)->last_seen_ms, kT0 + 30);  // the forget clock runs from the close
    EXPECT_EQ(d.stats().down, 1u);
    out.clear();
    d.disconnect(3, v4(3, 9001), kT0 + 40, out);  // already down
    drain(d, kT0 + 5029, out);                    // no timeout, not forgotten before +5030
    EXPECT_TRUE(out.empty());
    EXPECT_TRUE(d.host(3).has_value());
    drain(d, kT0 + 5030, out);
    EXPECT_FALSE(d.host(3).has_value());
    d.heartbeat(beat(5), kT0 + 6000, out);
    d.leave(5, v4(5), kT0 + 6010, out);
    out.clear();
    d.disconnect(5, v4(5), kT0 + 6020, out);  // left before its connection closed
    EXPECT_TRUE(out.empty());
  }
}

TEST(Detector, ForgetsHostsDownLongEnough) {
  DetectorConfig c = wheel_config();
  c.forget_after_ms = 5000;
  Detector d(c);
  std::vector<HostEvent> out;
  d.heartbeat(beat(1), kT0, out);  // down at +1000 by timeout: forgotten at +6000
  d.heartbeat(beat(2), kT0, out);
  d.leave(2, v4(2), kT0 + 2000, out);  // down at +2000: forgotten at +7000
  drain(d, kT0 + 5999, out);
  EXPECT_EQ(d.stats().tracked, 2u);
  drain(d, kT0 + 6000, out);
  EXPECT_FALSE(d.host(1).has_value());
  EXPECT_TRUE(d.host(2).has_value());
  drain(d, kT0 + 7000, out);
  EXPECT_FALSE(d.host(2).has_value());
  EXPECT_EQ(d.stats().forgotten, 2u);
  EXPECT_EQ(d.stats().tracked, 0u);
  EXPECT_EQ(d.next_deadline_ms(), std::numeric_limits<uint64_t>::max());
}

TEST(Detector, RefusesNewHostsPastTheCap) {
  DetectorConfig c = wheel_config();
  c.max_hosts = 3;
  Detector d(c);
  std::vector<HostEvent> out;
  for (uint64_t key = 1; key <= 5; ++key) d.heartbeat(beat(key), kT0, out);
  EXPECT_EQ(out.size(), 3u);
  EXPECT_EQ(d.stats().tracked, 3u);
  EXPECT_EQ(d.stats().refused, 2u);
  EXPECT_TRUE(d.remove(2));
  EXPECT_FALSE(d.remove(2));
  d.heartbeat(beat(4), kT0, out);
  EXPECT_EQ(d.stats().tracked, 3u);
  EXPECT_TRUE(d.host(4).has_value());
}

TEST(Detector, AFullTableTakesANewHostInTheOldestDownHostsPlace) {
  for (ExpiryIndexKind kind : {ExpiryIndexKind::kFifo, ExpiryIndexKind::kWheel}) {
    for (uint32_t forget : {0u, 600'000u}) {
      DetectorConfig c = wheel_config();
      c.index = kind;
      c.missed_beats = 0;
      c.forget_after_ms = forget;
      c.max_hosts = 64;
      Detector d(c);
      std::vector<HostEvent> out;
      // A flood of made-up ids fills the table, then stops; host 1000 + 1 is heard from first.
      for (uint64_t key = 1; key <= 64; ++key) d.heartbeat(beat(1000 + key), kT0 + key, out);
      d.heartbeat(beat(5000), kT0 + 100, out);
      EXPECT_EQ(d.stats().refused, 1u);
      drain(d, kT0 + 2000, out);
      ASSERT_EQ(d.stats().down, 64u);
      out.clear();
      d.heartbeat(beat(7), kT0 + 2000, out);
      ASSERT_EQ(out.size(), 1u);
      EXPECT_EQ(out[0].type, HostEventType::kUp);  // no event for the host it replaced
      EXPECT_TRUE(d.host(7).has_value());
      EXPECT_FALSE(d.host(1001).has_value());
      EXPECT_TRUE(d.host(1002).has_value());
      EXPECT_EQ(d.stats().tracked, 64u);
      EXPECT_EQ(d.stats().forgotten, 1u);
      // Its deadline stays armed, and the one it replaced left none behind.
      drain(d, kT0 + 3000, out);
      EXPECT_FALSE(d.host(7)->up);
      EXPECT_EQ(d.stats().down, 64u);
    }
  }
}

// A batch looks its records up before it applies them: here the first heartbeat takes the
// record the second one's lookup found (host 11's, reclaimed for host 22), so the second must
// find that host 11 is gone, not beat host 22's record.
TEST(Detector, ABatchDoesNotApplyABeatToARecordAnEarlierBeatHandedToAnotherHost) {
  for (ExpiryIndexKind kind : {ExpiryIndexKind::kFifo, ExpiryIndexKind::kWheel}) {
    DetectorConfig c = wheel_config();
    c.index = kind;
    c.missed_beats = 0;
    c.max_hosts = 1;
    Detector d(c);
    std::vector<HostEvent> out;
    d.heartbeat(beat(11), kT0, out);
    drain(d, kT0 + 2000, out);
    ASSERT_FALSE(d.host(11)->up);
    out.clear();
    const Heartbeat batch[] = {beat(22), beat(11)};
    d.heartbeat_batch(batch, 2, kT0 + 2000, out);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].key, 22u);
    EXPECT_EQ(out[0].type, HostEventType::kUp);
    EXPECT_FALSE(d.host(11).has_value());
    EXPECT_TRUE(d.host(22)->address == v4(22));
    EXPECT_EQ(d.stats().refused, 1u);
  }
}

// A batch applies a known host's beat that brings nothing new on a short path (last_seen only);
// every beat that brings something must leave it for the full one. Each case here is one beat
// in a batch of its own, after a quiet beat has taken the short path, on both indices and in
// both in-order loops (a batch with statuses and one without).
class QuietBeat : public ::testing::TestWithParam<std::tuple<ExpiryIndexKind, bool>> {
 protected:
  QuietBeat() : d_(config(std::get<0>(GetParam()))) {
    d_.heartbeat(beat(5), kT0, out_);
    out_.clear();
    batch(beat(5), kT0 + 100);  // quiet: nothing happens, last_seen moves
    EXPECT_TRUE(out_.empty());
    EXPECT_EQ(d_.host(5)->last_seen_ms, kT0 + 100);
  }
  static DetectorConfig config(ExpiryIndexKind kind) {
    DetectorConfig c = wheel_config();
    c.index = kind;
    if (kind == ExpiryIndexKind::kFifo) c.missed_beats = 0;
    c.max_status_bytes = 64;
    c.status_budget_bytes = 1 << 16;
    return c;
  }
  static bool fifo() { return std::get<0>(GetParam()) == ExpiryIndexKind::kFifo; }
  static bool with_statuses() { return std::get<1>(GetParam()); }
  void batch(const Heartbeat& hb, uint64_t now, StatusView status = {}) {
    ASSERT_TRUE(status.size == 0 || with_statuses());
    d_.heartbeat_batch(&hb, 1, now, out_, with_statuses() ? &status : nullptr);
  }
  Detector d_;
  std::vector<HostEvent> out_;
};

TEST_P(QuietBeat, KeepsTheHostUpUntilOneTimeoutAfterTheLastQuietBeat) {
  for (uint64_t t = kT0 + 900; t <= kT0 + 2700; t += 900) batch(beat(5), t);
  drain(d_, kT0 + 3699, out_);
  EXPECT_TRUE(out_.empty());
  drain(d_, kT0 + 3700, out_);
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(out_[0].type, HostEventType::kDown);
  EXPECT_EQ(out_[0].last_seen_ms, kT0 + 2700);
}

TEST_P(QuietBeat, AnotherSourceIsStoredAndCounted) {
  Heartbeat hb = beat(5);
  hb.address.port = 9001;
  batch(hb, kT0 + 200);
  EXPECT_EQ(d_.stats().address_changes, 1u);
  EXPECT_TRUE(d_.host(5)->address == v4(5, 9001));
  hb.address = v4(6, 9001);
  batch(hb, kT0 + 300);
  EXPECT_EQ(d_.stats().address_changes, 2u);
  EXPECT_TRUE(d_.host(5)->address == v4(6, 9001));
}

TEST_P(QuietBeat, ANewIncarnationIsARestartAndAnUnknownOneIsQuiet) {
  batch(beat(5, 0), kT0 + 200);
  EXPECT_TRUE(out_.empty());
  EXPECT_EQ(d_.host(5)->incarnation, 1u);
  batch(beat(5, 2), kT0 + 300);
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(out_[0].type, HostEventType::kRestart);
  EXPECT_EQ(out_[0].previous_incarnation, 1u);
  EXPECT_EQ(d_.host(5)->incarnation, 2u);
}

TEST_P(QuietBeat, AStatusIsStoredAndAnnounced) {
  if (!with_statuses()) GTEST_SKIP() << "a batch without statuses";
  const uint8_t bytes[] = {1, 2, 3};
  batch(beat(5), kT0 + 200, StatusView{bytes, sizeof bytes});
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(out_[0].type, HostEventType::kUpdate);
  EXPECT_EQ(d_.host(5)->status.size(), 3u);
}

TEST_P(QuietBeat, AReplayedSeqIsDropped) {
  Heartbeat hb = beat(5);
  hb.authenticated = true;
  hb.seq = 10;
  batch(hb, kT0 + 200);
  batch(hb, kT0 + 300);  // the same seq again
  EXPECT_EQ(d_.stats().replayed, 1u);
  EXPECT_EQ(d_.host(5)->last_seen_ms, kT0 + 200);
}

TEST_P(QuietBeat, AShorterAnnouncedIntervalBringsTheDeadlineForward) {
  if (fifo()) GTEST_SKIP() << "the FIFO keeps one uniform timeout";
  batch(beat(5, 1, 100), kT0 + 200);  // timeout 300 ms
  EXPECT_EQ(d_.host(5)->timeout_ms, 300u);
  drain(d_, kT0 + 499, out_);
  EXPECT_TRUE(out_.empty());
  drain(d_, kT0 + 500, out_);
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(out_[0].type, HostEventType::kDown);
}

TEST_P(QuietBeat, ADownHostRecovers) {
  drain(d_, kT0 + 1100, out_);
  ASSERT_EQ(out_.size(), 1u);
  out_.clear();
  batch(beat(5), kT0 + 1200);
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(out_[0].type, HostEventType::kUp);
  EXPECT_TRUE(out_[0].recovered);
  EXPECT_TRUE(d_.host(5)->up);
}

TEST_P(QuietBeat, ADeferredHostGetsItsOwnTimeoutBack) {
  ExpiryHorizon lossy;
  lossy.lossy_from_ms = kT0 + 1000;
  lossy.lossy_until_ms = kT0 + 1150;
  while (d_.expire(kT0 + 1150, 1 << 20, out_, lossy) == 1 << 20) {
  }
  ASSERT_TRUE(out_.empty());
  ASSERT_EQ(d_.stats().deferred, 1u);
  batch(beat(5), kT0 + 1200);
  EXPECT_EQ(d_.host(5)->timeout_ms, 1000u);
  drain(d_, kT0 + 2200, out_);
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_FALSE(out_[0].uncertain);
  EXPECT_EQ(out_[0].last_seen_ms, kT0 + 1200);
}

TEST_P(QuietBeat, AnIpv6SourceIsAnotherSourceEvenWithTheSameLeadingBytes) {
  Heartbeat hb = beat(5);
  hb.address.family = kFamilyIpv6;  // ip[0..3] and the port as before
  batch(hb, kT0 + 200);
  EXPECT_EQ(d_.stats().address_changes, 1u);
  EXPECT_TRUE(d_.host(5)->address == hb.address);
  batch(beat(5), kT0 + 300);  // back to IPv4: another source again
  EXPECT_EQ(d_.stats().address_changes, 2u);
  EXPECT_TRUE(d_.host(5)->address == v4(5));
}

TEST_P(QuietBeat, AnAuthenticatedBeatIsCheckedForReplayEvenWithNothingNew) {
  Heartbeat hb = beat(5);
  hb.authenticated = true;
  hb.seq = 10;
  for (int i = 0; i < 2; ++i) batch(hb, kT0 + 200 + 100 * i);  // the second one is a replay
  EXPECT_EQ(d_.stats().replayed, 1u);
  hb.seq = 11;
  batch(hb, kT0 + 400);
  EXPECT_EQ(d_.stats().replayed, 1u);
  EXPECT_EQ(d_.host(5)->last_seen_ms, kT0 + 400);
}

// The quiet path works the timeout out itself: an announced interval that matches the stored
// timeout is quiet, one that does not counts only when missed_beats is not 0.
TEST_P(QuietBeat, AnAnnouncedIntervalSetsTheTimeoutOnlyWhereIntervalsCount) {
  batch(beat(5, 1, 100), kT0 + 200);
  batch(beat(5, 1, 100), kT0 + 300);
  EXPECT_TRUE(out_.empty());
  EXPECT_EQ(d_.host(5)->last_seen_ms, kT0 + 300);
  EXPECT_EQ(d_.host(5)->timeout_ms, fifo() ? 1000u : 300u);
  drain(d_, kT0 + 599, out_);
  EXPECT_TRUE(out_.empty());
  drain(d_, fifo() ? kT0 + 1300 : kT0 + 600, out_);
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(out_[0].type, HostEventType::kDown);
  EXPECT_EQ(out_[0].last_seen_ms, kT0 + 300);
}

INSTANTIATE_TEST_SUITE_P(Indices, QuietBeat,
                         ::testing::Combine(::testing::Values(ExpiryIndexKind::kFifo, ExpiryIndexKind::kWheel),
                                            ::testing::Bool()),
                         [](const ::testing::TestParamInfo<QuietBeat::ParamType>& info) {
                           return std::string(std::get<0>(info.param) == ExpiryIndexKind::kFifo ? "Fifo" : "Wheel") +
                                  (std::get<1>(info.param) ? "WithStatuses" : "WithoutStatuses");
                         });

// An in-order batch admits a host whose lookup met an empty slot before any fingerprint match
// without looking further; the same holds while the table grows (the old table is looked at
// too), and a host twice in one batch is admitted once.
TEST(Detector, AnInOrderBatchAdmitsEachNewHostOnceWhileTheTableGrows) {
  DetectorConfig c = wheel_config();
  c.initial_capacity = 16;
  c.max_hosts = 4096;
  Detector d(c);
  std::vector<HostEvent> out;
  std::vector<Heartbeat> batch;
  for (uint64_t key = 1; key <= 4000; key += 2) {
    batch.push_back(beat(key));
    batch.push_back(beat(key));
    if (batch.size() < 64) continue;
    d.heartbeat_batch(batch.data(), batch.size(), kT0, out);
    batch.clear();
  }
  d.heartbeat_batch(batch.data(), batch.size(), kT0, out);
  EXPECT_EQ(out.size(), 2000u);
  EXPECT_EQ(d.stats().tracked, 2000u);
  out.clear();
  for (uint64_t key = 1; key <= 4000; ++key) {
    const Heartbeat hb = beat(key);
    d.heartbeat_batch(&hb, 1, kT0 + 10, out);
  }
  EXPECT_EQ(out.size(), 2000u);  // the even keys are new, the odd ones quiet
  EXPECT_EQ(d.stats().tracked, 4000u);
  EXPECT_EQ(d.host(3)->last_seen_ms, kT0 + 10);
}

TEST(HostEntry, AddrTimeoutAndFlagsShareOneWord) {
  HostEntry r{};
  r.addr = 0x11223344;
  r.timeout_ms = 0xABCDEF;
  r.flags = 0x5A;
  EXPECT_EQ(r.addr_timeout_flags(), HostEntry::pack_addr_timeout_flags(0x11223344, 0xABCDEF, 0x5A));
}

TEST(Detector, AFullTableOfUpHostsStillRefusesNewOnes) {
  DetectorConfig c = wheel_config();
  c.max_hosts = 4;
  Detector d(c);
  std::vector<HostEvent> out;
  for (uint64_t key = 1; key <= 4; ++key) d.heartbeat(beat(key), kT0, out);
  d.leave(2, v4(2), kT0 + 10, out);
  d.heartbeat(beat(9), kT0 + 20, out);  // takes the place of host 2, the only one down
  EXPECT_FALSE(d.host(2).has_value());
  d.heartbeat(beat(10), kT0 + 30, out);  // every tracked host is up: refused
  EXPECT_FALSE(d.host(10).has_value());
  EXPECT_EQ(d.stats().refused, 1u);
  EXPECT_EQ(d.stats().up, 4u);
}

TEST(Detector, RemoveIsSilentAndCancelsTheDeadline) {
  Detector d(wheel_config());
  std::vector<HostEvent> out;
  d.heartbeat(beat(1), kT0, out);
  out.clear();
  EXPECT_TRUE(d.remove(1));
  drain(d, kT0 + 10'000, out);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(d.stats().tracked, 0u);
}

TEST(Detector, AMassFailureIsSpreadOverBudgetedCallsInDeadlineOrder) {
  for (ExpiryIndexKind kind : {ExpiryIndexKind::kFifo, ExpiryIndexKind::kWheel}) {
    DetectorConfig c = wheel_config();
    c.index = kind;
    c.missed_beats = 0;
    Detector d(c);
    std::vector<HostEvent> out;
    for (uint64_t key = 1; key <= 50'000; ++key) d.heartbeat(beat(key), kT0 + key / 100, out);
    out.clear();
    const size_t calls = drain(d, kT0 + 10'000, out, 1000);
    ASSERT_EQ(out.size(), 50'000u);
    EXPECT_GE(calls, 50u);
    for (size_t i = 1; i < out.size(); ++i) ASSERT_LE(out[i - 1].last_seen_ms, out[i].last_seen_ms);
  }
}

TEST(Detector, KeepsIpv6AddressesInASideTable) {
  Detector d(wheel_config());
  std::vector<HostEvent> out;
  Heartbeat hb = beat(8);
  hb.address = PeerAddress{};
  hb.address.family = 6;
  hb.address.port = 4242;
  for (int i = 0; i < 16; ++i) hb.address.ip[i] = static_cast<uint8_t>(0x20 + i);
  d.heartbeat(hb, kT0, out);
  EXPECT_TRUE(d.host(8)->address == hb.address);
  d.heartbeat(beat(8), kT0 + 1, out);  // back to IPv4
  EXPECT_TRUE(d.host(8)->address == v4(8));
}

TEST(Detector, EveryEventCarriesTheHostsTimeoutWithoutTheClockGuard) {
  DetectorConfig config = wheel_config();
  config.clock_guard_ms = 1;
  Detector d(config);
  std::vector<HostEvent> out;
  d.heartbeat(beat(1, 1, 200), kT0, out);  // announced: 3 x 200 ms
  d.heartbeat(beat(2), kT0, out);          // none: the configured 1000 ms
  drain(d, kT0 + 2000, out);
  ASSERT_EQ(out.size(), 4u);
  for (const HostEvent& e : out) {
    EXPECT_EQ(e.timeout_ms, e.key == 1 ? 600u : 1000u);
    if (e.type == HostEventType::kDown) {
      EXPECT_GE(e.at_ms, e.last_seen_ms + e.timeout_ms);
    }
  }
}

TEST(Detector, CountsHeartbeatsFromAnotherSourceThanTheHostsLast) {
  Detector d(wheel_config());
  std::vector<HostEvent> out;
  Heartbeat a = beat(5);
  Heartbeat b = beat(5);
  b.address = v4(6);
  Heartbeat port = beat(5);
  port.address = v4(5, 9001);
  d.heartbeat(a, kT0, out);  // a new host: no change
  d.heartbeat(a, kT0 + 1, out);
  d.heartbeat(beat(9), kT0 + 1, out);
  EXPECT_EQ(d.stats().address_changes, 0u);
  d.heartbeat(b, kT0 + 2, out);
  d.heartbeat(a, kT0 + 3, out);
  d.heartbeat(port, kT0 + 4, out);  // the port alone counts too
  EXPECT_EQ(d.stats().address_changes, 3u);
  EXPECT_EQ(d.stats().last_moved_key, 5u);
  Heartbeat unknown = beat(9);
  unknown.address = PeerAddress{};  // family 0 keeps the stored address
  d.heartbeat(unknown, kT0 + 5, out);
  EXPECT_EQ(d.stats().address_changes, 3u);
  // IPv6: to it from IPv4, the same again, another port, back to IPv4.
  Heartbeat v6 = beat(9);
  v6.address = PeerAddress{};
  v6.address.family = 6;
  v6.address.port = 4242;
  v6.address.ip[15] = 1;
  d.heartbeat(v6, kT0 + 6, out);
  d.heartbeat(v6, kT0 + 7, out);
  v6.address.port = 4243;
  d.heartbeat(v6, kT0 + 8, out);
  d.heartbeat(beat(9), kT0 + 9, out);
  EXPECT_EQ(d.stats().address_changes, 6u);
  EXPECT_EQ(d.stats().last_moved_key, 9u);
  EXPECT_TRUE(d.host(9)->address == v4(9));
}

TEST(Detector, RejectsConfigsOutsideItsRange) {
  DetectorConfig c;
  c.index = ExpiryIndexKind::kFifo;  // with missed_beats 3: per-host timeouts
  EXPECT_THROW(Detector{c}, std::invalid_argument);
  c = DetectorConfig{};
  c.timeout_ms = 0;
  EXPECT_THROW(Detector{c}, std::invalid_argument);
  c = DetectorConfig{};
  c.timeout_ms = kMaxTimeoutMs + 1;
  EXPECT_THROW(Detector{c}, std::invalid_argument);
  c = DetectorConfig{};
  c.max_hosts = kMaxRecords;
  EXPECT_THROW(Detector{c}, std::invalid_argument);
  c = DetectorConfig{};
  c.forget_after_ms = (1u << 31) + 1;
  EXPECT_THROW(Detector{c}, std::invalid_argument);
}

TEST(Detector, AMillionHostsFitInFortyBytesEach) {
  for (ExpiryIndexKind kind : {ExpiryIndexKind::kFifo, ExpiryIndexKind::kWheel}) {
    DetectorConfig c;
    c.index = kind;
    c.missed_beats = 0;
    c.max_hosts = 1'000'000;
    c.initial_capacity = 1'000'000;
    Detector d(c);
    std::vector<HostEvent> out;
    out.reserve(1'000'000);
    std::vector<Heartbeat> batch(64);
    for (uint64_t key = 1; key <= 1'000'000; key += 64) {
      for (uint64_t j = 0; j < 64; ++j) batch[j] = beat(key + j);
      d.heartbeat_batch(batch.data(), batch.size(), kT0, out);
    }
    const DetectorStats s = d.stats();
    ASSERT_EQ(s.tracked, 1'000'000u);
    EXPECT_LE(static_cast<double>(s.bytes_allocated) / 1e6, 40.0);
  }
}

}  // namespace
}  // namespace heartwatch
