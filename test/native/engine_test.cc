// The engine end to end on loopback, with its real threads: receivers, rings, sharded workers,
// the JS-side drain and commands. Under TSan this checks every hand-off between threads.
#include "core/engine/engine.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <thread>
#include <vector>

#include "core/auth/key_ring.h"
#include "core/common/system_error.h"
#include "receive_backend_env.h"

namespace heartwatch {
namespace {

// A v1 heartbeat, encoded from the spec here rather than with the server's code.
std::vector<uint8_t> heartbeat(uint64_t host_id, uint32_t incarnation, bool leave = false) {
  std::vector<uint8_t> d(28, 0);
  d[0] = 0x48;
  d[1] = 0x57;
  d[2] = 1;
  d[3] = leave ? 1 : 0;
  for (int i = 0; i < 8; ++i) d[4 + i] = static_cast<uint8_t>(host_id >> (56 - 8 * i));
  for (int i = 0; i < 4; ++i) d[12 + i] = static_cast<uint8_t>(incarnation >> (24 - 8 * i));
  return d;
}

class Sender {
 public:
  explicit Sender(uint16_t port) : fd_(socket(AF_INET, SOCK_DGRAM, 0)) {
    to_.sin_family = AF_INET;
    to_.sin_port = htons(port);
    inet_pton(AF_INET, "127.0.0.1", &to_.sin_addr);
  }
  ~Sender() { close(fd_); }
  void send(const std::vector<uint8_t>& d) {
    ASSERT_EQ(sendto(fd_, d.data(), d.size(), 0, reinterpret_cast<sockaddr*>(&to_), sizeof(to_)),
              static_cast<ssize_t>(d.size()));
  }

 private:
  int fd_;
  sockaddr_in to_{};
};

EngineConfig config(uint32_t receivers, uint32_t workers) {
  EngineConfig c;
  c.receive_backend = test_receive_backend();
  c.host = "127.0.0.1";
  c.port = 0;
  c.receivers = receivers;
  c.workers = workers;
  c.detector.timeout_ms = 200;
  c.detector.missed_beats = 0;
  c.detector.index = ExpiryIndexKind::kFifo;
  c.detector.max_hosts = 100000;
  c.recv_buffer_bytes = 4u << 20;
  c.ring_capacity = 4096;
  c.event_ring_capacity = 1024;
  return c;
}

// Drains events as the JS thread does: re-arm the wake-up, then take batches.
struct Collector {
  std::map<uint64_t, std::vector<EventRecord>> by_host;
  size_t total = 0;
  void drain(Engine& engine) {
    std::vector<EventRecord> batch(256);
    engine.begin_drain();
    size_t n;
    while ((n = engine.drain_events(batch.data(), batch.size())) > 0) {
      for (size_t i = 0; i < n; ++i) by_host[batch[i].key].push_back(batch[i]);
      total += n;
    }
  }
};

template <class Done>
bool wait_for(Done done, std::chrono::milliseconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

TEST(Engine, DeliversUpThenDownForEveryHostAcrossShards) {
  std::atomic<int> wakes{0};
  Engine engine(config(2, 2), [&] { wakes.fetch_add(1); });
  engine.start();
  Sender sender(engine.port());
  constexpr uint64_t kHosts = 3000;
  for (uint64_t id = 1; id <= kHosts; ++id) {
    sender.send(heartbeat(id, 5));
    if (id % 200 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  Collector events;
  // The event rings hold 1024 each: draining while hosts expire exercises the overflow path.
  ASSERT_TRUE(wait_for([&] { events.drain(engine); return events.total == 2 * kHosts; },
                       std::chrono::seconds(20)));
  engine.stop();
  events.drain(engine);
  EXPECT_EQ(events.total, 2 * kHosts);
  EXPECT_GT(wakes.load(), 0);
  ASSERT_EQ(events.by_host.size(), kHosts);
  for (const auto& [key, list] : events.by_host) {
    ASSERT_EQ(list.size(), 2u) << key;
    EXPECT_EQ(list[0].type, static_cast<uint8_t>(HostEventType::kUp));
    EXPECT_EQ(list[1].type, static_cast<uint8_t>(HostEventType::kDown));
    EXPECT_EQ(list[1].reason, static_cast<uint8_t>(DownReason::kTimeout));
    EXPECT_GE(list[1].at_epoch_ms, list[1].last_seen_epoch_ms + 200 - 0.001);
    EXPECT_EQ(list[0].family, 4);
  }
  uint64_t received = 0;
  uint64_t processed = 0;
  uint64_t published = 0;
  uint64_t taken = 0;
  for (uint32_t r = 0; r < engine.receiver_count(); ++r) {
    received += EngineStats::get(engine.stats().receiver(r), static_cast<uint32_t>(ReceiverCounter::kReceived));
  }
  for (uint32_t w = 0; w < engine.worker_count(); ++w) {
    const CounterLine& line = engine.stats().worker(w);
    processed += EngineStats::get(line, static_cast<uint32_t>(WorkerCounter::kProcessed));
    published += EngineStats::get(line, static_cast<uint32_t>(WorkerCounter::kEventsPublished));
    taken += EngineStats::get(line, static_cast<uint32_t>(WorkerCounter::kEventsTaken));
  }
  EXPECT_EQ(received, kHosts);
  EXPECT_EQ(processed, kHosts);
  EXPECT_EQ(published, 2 * kHosts);
  EXPECT_EQ(taken, 2 * kHosts);
}

TEST(Engine, LeaveAndRestartAndMalformedAreHandledInOrder) {
  Engine engine(config(1, 2), [] {});
  engine.start();
  Sender sender(engine.port());
  sender.send(heartbeat(7, 1));
  sender.send(heartbeat(7, 2));
  sender.send(heartbeat(7, 2, true));
  sender.send({0x00, 0x01, 0x02});
  Collector events;
  ASSERT_TRUE(wait_for([&] { events.drain(engine); return events.total == 3; }, std::chrono::seconds(5)));
  const auto& list = events.by_host[7];
  ASSERT_EQ(list.size(), 3u);
  EXPECT_EQ(list[0].type, static_cast<uint8_t>(HostEventType::kUp));
  EXPECT_EQ(list[1].type, static_cast<uint8_t>(HostEventType::kRestart));
  EXPECT_EQ(list[1].previous_incarnation, 1u);
  EXPECT_EQ(list[2].type, static_cast<uint8_t>(HostEventType::kDown));
  EXPECT_EQ(list[2].reason, static_cast<uint8_t>(DownReason::kLeft));
  ASSERT_TRUE(wait_for(
      [&] {
        return EngineStats::get(engine.stats().receiver(0), static_cast<uint32_t>(ReceiverCounter::kMalformed)) == 1;
      },
      std::chrono::seconds(5)));
}

// Signs `d` in place under `key` (AUTH flag, 16-byte tag appended).
std::vector<uint8_t> signed_with(std::vector<uint8_t> d, const AuthKey& key) {
  d[3] |= 0x02;
  const size_t length = d.size();
  d.resize(length + kAuthTagBytes);
  KeyRing({key}).sign(d.data(), length, d.data() + length);
  return d;
}

uint64_t receiver_total(Engine& engine, ReceiverCounter field) {
  uint64_t total = 0;
  for (uint32_t r = 0; r < engine.receiver_count(); ++r) {
    total += EngineStats::get(engine.stats().receiver(r), static_cast<uint32_t>(field));
  }
  return total;
}

// setKeys() on the JS thread while two receivers verify tags: under TSan this checks the ring
// hand-over; afterwards only the new key verifies.
TEST(Engine, RotatesKeysWhileReceiversVerify) {
  const AuthKey old_key(32, 1), new_key(32, 2);
  EngineConfig c = config(2, 1);
  c.auth_keys = {old_key};
  c.auth_required = true;
  c.detector.timeout_ms = 60'000;
  Engine engine(c, [] {});
  engine.start();
  Sender sender(engine.port());
  std::atomic<bool> stop{false};
  std::thread rotator([&] {
    for (int i = 0; !stop.load(); ++i) {
      engine.set_keys(i % 2 == 0 ? std::vector<AuthKey>{new_key, old_key} : std::vector<AuthKey>{old_key});
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  });
  for (uint32_t seq = 0; seq < 2000; ++seq) {
    std::vector<uint8_t> d = heartbeat(1 + seq % 50, 9);
    d[16] = static_cast<uint8_t>(seq >> 24), d[17] = static_cast<uint8_t>(seq >> 16);
    d[18] = static_cast<uint8_t>(seq >> 8), d[19] = static_cast<uint8_t>(seq);
    sender.send(signed_with(d, old_key));
  }
  stop.store(true);
  rotator.join();
  ASSERT_TRUE(wait_for([&] { return receiver_total(engine, ReceiverCounter::kReceived) == 2000; },
                       std::chrono::seconds(10)));
  EXPECT_EQ(receiver_total(engine, ReceiverCounter::kAuthFailed), 0u);
  engine.set_keys({new_key});
  sender.send(signed_with(heartbeat(1, 9), old_key));
  sender.send(signed_with(heartbeat(2, 10), new_key));
  sender.send(heartbeat(3, 9));
  ASSERT_TRUE(wait_for([&] { return receiver_total(engine, ReceiverCounter::kReceived) == 2003; },
                       std::chrono::seconds(10)));
  EXPECT_EQ(receiver_total(engine, ReceiverCounter::kAuthFailed), 1u);
  EXPECT_EQ(receiver_total(engine, ReceiverCounter::kUnauthenticated), 1u);
  EXPECT_THROW(engine.set_keys({AuthKey(4, 1)}), std::invalid_argument);
}

TEST(Engine, RemoveAndSnapshotCommandsAreAnsweredByTheOwningWorker) {
  Engine engine(config(1, 2), [] {});
  engine.start();
  Sender sender(engine.port());
  for (uint64_t id = 1; id <= 50; ++id) sender.send(heartbeat(id, 1));
  Collector events;
  ASSERT_TRUE(wait_for([&] { events.drain(engine); return events.total == 50; }, std::chrono::seconds(5)));

  const WorkerCommand remove_9{
      .request_id = 1, .key = 9, .kind = CommandKind::kRemove, .with_statuses = false};
  ASSERT_TRUE(engine.post(engine.owner_of(9), remove_9));
  for (uint32_t w = 0; w < engine.worker_count(); ++w) {
    const WorkerCommand snapshot{
        .request_id = 2, .key = 0, .kind = CommandKind::kSnapshot, .with_statuses = false};
    ASSERT_TRUE(engine.post(w, snapshot));
  }
  std::vector<CommandResult> results;
  ASSERT_TRUE(wait_for(
      [&] {
        CommandResult batch[8];
        engine.begin_drain();
        const size_t n = engine.drain_results(batch, 8);
        results.insert(results.end(), batch, batch + n);
        return results.size() == 1 + engine.worker_count();
      },
      std::chrono::seconds(5)));
  uint64_t snapshot_total = 0;
  for (const CommandResult& r : results) {
    if (r.request_id == 1) {
      EXPECT_EQ(r.value, 1u);
      continue;
    }
    const std::vector<HostSnapshotRecord> records = engine.worker(r.worker).take_snapshot();
    EXPECT_EQ(records.size(), r.value);
    EXPECT_TRUE(engine.worker(r.worker).take_snapshot().empty());
    for (const HostSnapshotRecord& record : records) {
      EXPECT_NE(record.key, 9u);
      EXPECT_EQ(record.state, 1);
    }
    snapshot_total += r.value;
  }
  EXPECT_EQ(snapshot_total, 49u);
}

TEST(Engine, OwnsItsPortUntilStopReleasesIt) {
  for (uint32_t receivers : {1u, 3u}) {
    Engine first(config(receivers, 1), [] {});
    first.start();
    EXPECT_EQ(first.foreign_sockets(), 0u);
    for (uint32_t others : {1u, 2u}) {
      EngineConfig same = config(others, 1);
      same.port = first.port();
      try {
        Engine second(same, [] {});
        FAIL() << "a second engine shared the port of one with " << receivers << " receivers";
      } catch (const SystemError& error) {
        EXPECT_STREQ(error.code(), "EADDRINUSE");
      }
    }
    first.stop();
    EngineConfig again = config(receivers, 1);
    again.port = first.port();
    Engine next(again, [] {});  // stop() closed every socket: the port is free at once
    EXPECT_EQ(next.port(), first.port());
  }
}

TEST(Engine, RefusesAPortInUseAndACpuItMayNotUse) {
  Engine first(config(1, 1), [] {});
  EngineConfig taken = config(1, 1);
  taken.port = first.port();
  // A socket of another owner (here a plain one) holds the port.
  const int plain = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = 0;
  inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
  ASSERT_EQ(bind(plain, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  socklen_t length = sizeof(address);
  getsockname(plain, reinterpret_cast<sockaddr*>(&address), &length);
  taken.port = ntohs(address.sin_port);
  try {
    Engine second(taken, [] {});
    FAIL() << "bound a port that is in use";
  } catch (const SystemError& error) {
    EXPECT_STREQ(error.code(), "EADDRINUSE");
    EXPECT_STREQ(error.syscall(), "bind");
  }
  close(plain);

  EngineConfig bad_cpu = config(1, 1);
  bad_cpu.cpus = {CPU_SETSIZE - 1};
  try {
    Engine engine(bad_cpu, [] {});
    FAIL() << "accepted a CPU outside the affinity mask";
  } catch (const SystemError& error) {
    EXPECT_STREQ(error.code(), "EINVAL");
  }
}

TEST(Engine, StopsPromptlyWhileIdleAndUnderLoad) {
  Engine idle(config(2, 2), [] {});
  idle.start();
  const auto before = std::chrono::steady_clock::now();
  idle.stop();
  EXPECT_LT(std::chrono::steady_clock::now() - before, std::chrono::seconds(2));

  Engine busy(config(2, 2), [] {});
  busy.start();
  std::atomic<bool> sending{true};
  std::thread blaster([&] {
    Sender sender(busy.port());
    uint64_t id = 1;
    while (sending.load()) sender.send(heartbeat(id++ % 5000 + 1, 1));
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  busy.stop();
  sending.store(false);
  blaster.join();
}

}  // namespace
}  // namespace heartwatch
