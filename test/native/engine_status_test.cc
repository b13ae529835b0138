// Statuses through the engine's real threads (issue 13): receiver -> status byte ring -> worker ->
// event status ring -> the JS-side drain, which copies the bytes out before the next drain.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "core/engine/engine.h"
#include "core/engine/shard_worker.h"
#include "core/engine/status_carrier.h"
#include "receive_backend_env.h"

namespace heartwatch {
namespace {

std::vector<uint8_t> heartbeat(uint64_t host_id, const std::string& payload) {
  // Sized once for header and payload: growing a 28-byte vector by the payload drew a false
  // -Warray-bounds from GCC 12 (it checked the copy against the buffer before reallocation).
  std::vector<uint8_t> d(28 + payload.size(), 0);
  d[0] = 0x48;
  d[1] = 0x57;
  d[2] = 1;
  for (int i = 0; i < 8; ++i) d[4 + i] = static_cast<uint8_t>(host_id >> (56 - 8 * i));
  d[15] = 1;  // incarnation 1
  d[24] = static_cast<uint8_t>(payload.size() >> 8);
  d[25] = static_cast<uint8_t>(payload.size());
  std::copy(payload.begin(), payload.end(), d.begin() + 28);
  return d;
}

struct Seen {
  uint8_t type;
  std::string status;
  std::string previous;
};

// Drains as lib/engine/native-engine.ts does: records, then each status copied out of the
// worker's ring before the next drain frees it.
struct Collector {
  std::map<uint64_t, std::vector<Seen>> by_host;
  void drain(Engine& engine) {
    std::vector<EventRecord> batch(64);
    engine.begin_drain();
    size_t n;
    while ((n = engine.drain_events(batch.data(), batch.size())) > 0) {
      for (size_t i = 0; i < n; ++i) {
        const EventRecord& r = batch[i];
        Seen seen{r.type, "", ""};
        if (r.status_size > 0) {
          const ByteRing& ring = *engine.worker(r.worker).event_status_bytes();
          const char* run = reinterpret_cast<const char*>(ring.run(r.status_end, r.status_size + r.previous_size));
          seen.status.assign(run, r.status_size);
          seen.previous.assign(run + r.status_size, r.previous_size);
        }
        by_host[r.key].push_back(seen);
      }
    }
  }
};

EngineConfig status_config() {
  EngineConfig c;
  c.receive_backend = test_receive_backend();
  c.host = "127.0.0.1";
  c.port = 0;
  c.receivers = 2;
  c.workers = 3;
  c.detector.timeout_ms = 5000;
  c.detector.missed_beats = 0;
  c.detector.index = ExpiryIndexKind::kFifo;
  c.detector.max_hosts = 10000;
  c.detector.max_status_bytes = 3000;
  c.detector.status_budget_bytes = 3u << 20;
  c.ring_capacity = 4096;
  c.event_ring_capacity = 64;  // small: the overflow and its status bytes get used
  return c;
}

TEST(EngineStatus, StatusesTravelInOrderWithTheirPreviousBytes) {
  Engine engine(status_config(), [] {});
  engine.start();
  const int fd = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(engine.port());
  inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
  auto send = [&](const std::vector<uint8_t>& d) {
    ASSERT_EQ(sendto(fd, d.data(), d.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)),
              static_cast<ssize_t>(d.size()));
  };
  constexpr uint64_t kHosts = 200;
  constexpr int kVersions = 4;
  for (int v = 0; v < kVersions; ++v) {
    for (uint64_t h = 1; h <= kHosts; ++h) {
      // Version 2 repeats version 1: no event. Host 1 sends one long status past the UDP slot.
      const int shown = v == 2 ? 1 : v;
      std::string status = "host " + std::to_string(h) + " v" + std::to_string(shown);
      if (h == 1 && v == 3) status.append(2500, 'z');
      send(heartbeat(h, status));
      send(heartbeat(h, ""));  // a beat without a status leaves it as it is
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
  }
  Collector collector;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  auto complete = [&] {
    size_t n = 0;
    for (auto& [key, seen] : collector.by_host) n += seen.size();
    return n >= kHosts * 3;
  };
  while (!complete() && std::chrono::steady_clock::now() < deadline) {
    collector.drain(engine);
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  engine.stop();
  collector.drain(engine);
  close(fd);
  ASSERT_EQ(collector.by_host.size(), kHosts);
  for (uint64_t h = 1; h <= kHosts; ++h) {
    const std::vector<Seen>& seen = collector.by_host[h];
    const std::string base = "host " + std::to_string(h) + " v";
    ASSERT_EQ(seen.size(), 3u) << h;  // up (v0), update v1, update v3
    EXPECT_EQ(seen[0].type, static_cast<uint8_t>(HostEventType::kUp));
    EXPECT_EQ(seen[0].status, base + "0");
    EXPECT_EQ(seen[1].type, static_cast<uint8_t>(HostEventType::kUpdate));
    EXPECT_EQ(seen[1].status, base + "1");
    EXPECT_EQ(seen[1].previous, base + "0");
    std::string last = base + "3";
    if (h == 1) last.append(2500, 'z');
    EXPECT_EQ(seen[2].status, last) << h;
    EXPECT_EQ(seen[2].previous, base + "1");
  }
  uint64_t statuses = 0;
  for (uint32_t w = 0; w < engine.worker_count(); ++w) {
    statuses += EngineStats::get(engine.stats().worker_status(w), static_cast<uint32_t>(StatusCounter::kStatuses));
  }
  EXPECT_EQ(statuses, kHosts);
}

// A status its producer could not pass on (the byte ring full: StatusCarrier marks it lost) is
// counted, and its beat applied without it: the host keeps the status it had. Driven inline.
TEST(EngineStatus, ALostStatusLeavesTheBeatWithoutItAndIsCounted) {
  const EngineConfig config = status_config();
  EngineStats stats{config.receivers, 1};
  ShardWorker worker{0, config, stats.worker(0), -1, 0.0, [] {}};
  worker.count_statuses_in(stats.worker_status(0));
  StatusCarrier carrier;
  carrier.attach({worker.status_input(0)}, config.detector.max_status_bytes);
  auto beat = [&](uint32_t seq, const std::string& status, bool readable) {
    ShardMessage message{};
    message.heartbeat.key = 5;
    message.heartbeat.seq = seq;
    message.heartbeat.incarnation = 1;
    const auto* bytes = reinterpret_cast<const uint8_t*>(status.data());
    carrier.carry(0, message, static_cast<uint32_t>(status.size()), bytes, status.size(), nullptr, readable);
    ASSERT_EQ(worker.input(0).push_batch(&message, 1), 1u);
    worker.step();
  };
  beat(1, "first", true);
  beat(2, "never read", false);  // lost on the way
  beat(3, "third", true);
  std::vector<Seen> seen;
  std::vector<EventRecord> records(8);
  for (size_t n; (n = worker.drain_events(records.data(), records.size())) > 0;) {
    for (size_t i = 0; i < n; ++i) {
      const EventRecord& r = records[i];
      const char* run =
          reinterpret_cast<const char*>(worker.event_status_bytes()->run(r.status_end, r.status_size + r.previous_size));
      seen.push_back({r.type, std::string(run, r.status_size), std::string(run + r.status_size, r.previous_size)});
    }
  }
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].type, static_cast<uint8_t>(HostEventType::kUp));
  EXPECT_EQ(seen[0].status, "first");
  EXPECT_EQ(seen[1].type, static_cast<uint8_t>(HostEventType::kUpdate));
  EXPECT_EQ(seen[1].status, "third");
  EXPECT_EQ(seen[1].previous, "first");  // the lost status never replaced it
  EXPECT_EQ(EngineStats::get(stats.worker(0), static_cast<uint32_t>(WorkerCounter::kProcessed)), 3u);
  EXPECT_EQ(EngineStats::get(stats.worker_status(0), static_cast<uint32_t>(StatusCounter::kLost)), 1u);
}

}  // namespace
}  // namespace heartwatch
