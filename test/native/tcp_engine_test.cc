// The TCP transport end to end on loopback with the engine's real threads: the accept thread,
// reactors, worker rings and detector. Under TSan this checks the accept->reactor hand-off.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <algorithm>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "core/auth/key_ring.h"
#include "core/engine/engine.h"
#include "core/engine/status_slot_pool.h"

namespace heartwatch {
namespace {

std::vector<uint8_t> frame(uint64_t host_id, uint16_t payload_len = 0) {
  std::vector<uint8_t> d(28 + payload_len, 0x5a);
  d[0] = 0x48;
  d[1] = 0x57;
  d[2] = 1;
  d[3] = 0;
  for (int i = 0; i < 8; ++i) d[4 + i] = static_cast<uint8_t>(host_id >> (56 - 8 * i));
  for (int i = 12; i < 24; ++i) d[i] = 0;
  d[15] = 9;  // incarnation 9
  d[24] = static_cast<uint8_t>(payload_len >> 8);
  d[25] = static_cast<uint8_t>(payload_len);
  d[26] = d[27] = 0;
  return d;
}

int connect_to(uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof(to)), 0);
  return fd;
}

void send_all(int fd, const std::vector<uint8_t>& bytes) {
  ASSERT_EQ(send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL), static_cast<ssize_t>(bytes.size()));
}

// True once the server has closed `fd` (read sees end of stream or a reset).
bool closed_by_server(int fd, std::chrono::milliseconds limit) {
  timeval timeout{0, 20'000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    uint8_t byte;
    const ssize_t got = recv(fd, &byte, 1, 0);
    // EINTR is no close: with a receive timeout set, recv() is not restarted after an
    // interruption, and this thread sees some with no signal delivered (strace shows none; io_uring
    // task work from an earlier test's engine would do it).
    if (got < 0 && errno == EINTR) continue;
    if (got == 0 || (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) return true;
  }
  return false;
}

EngineConfig config() {
  EngineConfig c;
  c.host = "127.0.0.1";
  c.port = 0;
  c.workers = 2;
  c.detector.timeout_ms = 300;
  c.detector.missed_beats = 0;
  c.detector.index = ExpiryIndexKind::kFifo;
  c.ring_capacity = 4096;
  c.event_ring_capacity = 1024;
  c.tcp.enabled = true;
  c.tcp.socket.host = "127.0.0.1";
  c.tcp.reactors = 2;
  c.tcp.max_connections = 64;
  return c;
}

std::map<uint64_t, std::vector<uint8_t>> drain(Engine& engine) {
  std::map<uint64_t, std::vector<uint8_t>> types;
  std::vector<EventRecord> batch(256);
  engine.begin_drain();
  size_t n;
  while ((n = engine.drain_events(batch.data(), batch.size())) > 0) {
    for (size_t i = 0; i < n; ++i) types[batch[i].key].push_back(batch[i].type);
  }
  return types;
}

uint64_t reactor_total(Engine& engine, TcpReactorCounter field) {
  uint64_t sum = 0;
  for (uint32_t k = 0; k < engine.tcp_reactor_count(); ++k) {
    sum += EngineStats::get(engine.stats().tcp_reactor(k), static_cast<uint32_t>(field));
  }
  return sum;
}

uint64_t acceptor(Engine& engine, TcpAcceptorCounter field) {
  return EngineStats::get(engine.stats().tcp_acceptor(), static_cast<uint32_t>(field));
}

template <class Done>
bool wait_for(Done done, std::chrono::milliseconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

// Frames split at every byte and many in one write, from two connections, with `c`.
void frames_become_heartbeats(const EngineConfig& c) {
  Engine engine(c, [] {});
  engine.start();
  ASSERT_GT(engine.tcp_port(), 0);
  const int a = connect_to(engine.tcp_port());
  const int b = connect_to(engine.tcp_port());
  // a: 40 hosts in one write; b: a 65,479-byte payload, then one byte at a time.
  std::vector<uint8_t> many;
  for (uint64_t id = 1; id <= 40; ++id) {
    const auto f = frame(id, static_cast<uint16_t>(id));
    many.insert(many.end(), f.begin(), f.end());
  }
  send_all(a, many);
  send_all(b, frame(100, 65479));
  for (uint8_t byte : frame(101)) send_all(b, {byte});
  std::map<uint64_t, std::vector<uint8_t>> seen;
  ASSERT_TRUE(wait_for([&] {
    for (auto& [key, list] : drain(engine)) seen[key].insert(seen[key].end(), list.begin(), list.end());
    return seen.size() == 42;
  }, std::chrono::seconds(10)));
  EXPECT_EQ(seen[100][0], static_cast<uint8_t>(HostEventType::kUp));
  EXPECT_EQ(reactor_total(engine, TcpReactorCounter::kFrames), 42u);
  EXPECT_EQ(acceptor(engine, TcpAcceptorCounter::kAccepted), 2u);
  EXPECT_GT(acceptor(engine, TcpAcceptorCounter::kDescriptorLimit), 0u);
  close(a);
  close(b);
  engine.stop();
}

TEST(TcpEngine, FramesSplitAndCoalescedBecomeHeartbeatsOfTheirHosts) { frames_become_heartbeats(config()); }

// `spin`: the reactor never pauses between thin turns (TcpReactor::coalesce), and reads the same.
TEST(TcpEngine, FramesBecomeHeartbeatsWhenTheReactorSpins) {
  EngineConfig c = config();
  c.spin = true;
  c.workers = 1;  // spinning workers take a core each
  frames_become_heartbeats(c);
}

TEST(TcpEngine, ABadFrameClosesOnlyItsConnection) {
  Engine engine(config(), [] {});
  engine.start();
  const int good = connect_to(engine.tcp_port());
  const int bad = connect_to(engine.tcp_port());
  send_all(good, frame(1));
  auto broken = frame(2);
  broken[2] = 9;  // version 9
  send_all(bad, broken);
  EXPECT_TRUE(closed_by_server(bad, std::chrono::seconds(5)));
  send_all(good, frame(3));
  std::map<uint64_t, std::vector<uint8_t>> seen;
  ASSERT_TRUE(wait_for([&] {
    for (auto& [key, list] : drain(engine)) seen[key] = list;
    return seen.count(1) && seen.count(3);
  }, std::chrono::seconds(5)));
  EXPECT_EQ(seen.count(2), 0u);
  EXPECT_EQ(reactor_total(engine, TcpReactorCounter::kProtocolErrors), 1u);
  close(good);
  close(bad);
  engine.stop();
}

// tcp.closeMeansDown: each connection's close reaches the worker after its frames, on both
// reactors and both workers: a host that sent LEAVE is down by `left` alone, the others by
// `disconnected`, a host whose frames all came over another connection is untouched, and the
// engine's own stop downs nobody.
TEST(TcpEngine, ACloseDownsTheHostItCarriedAfterItsFrames) {
  EngineConfig c = config();
  c.detector.timeout_ms = 60'000;
  c.tcp.close_means_down = true;
  Engine engine(c, [] {});
  engine.start();
  std::vector<int> fds;
  for (uint64_t id = 1; id <= 20; ++id) {
    fds.push_back(connect_to(engine.tcp_port()));
    std::vector<uint8_t> bytes = frame(id);
    if (id % 2 == 0) {
      auto leave = frame(id);
      leave[3] = kHeartbeatFlagLeave;
      bytes.insert(bytes.end(), leave.begin(), leave.end());
    }
    send_all(fds.back(), bytes);
  }
  const int kept = connect_to(engine.tcp_port());
  send_all(kept, frame(50));
  for (int fd : fds) close(fd);
  std::map<uint64_t, std::vector<std::pair<uint8_t, uint8_t>>> seen;  // key -> (type, reason)
  std::vector<EventRecord> batch(256);
  auto downs = [&] {
    size_t n = 0;
    for (auto& [key, list] : seen) n += list.size() == 2 ? 1 : 0;
    return n;
  };
  ASSERT_TRUE(wait_for([&] {
    engine.begin_drain();
    size_t n;
    while ((n = engine.drain_events(batch.data(), batch.size())) > 0) {
      for (size_t i = 0; i < n; ++i) seen[batch[i].key].emplace_back(batch[i].type, batch[i].reason);
    }
    return downs() == 20;
  }, std::chrono::seconds(10)));
  const auto up = std::make_pair(static_cast<uint8_t>(HostEventType::kUp), uint8_t{0});
  for (uint64_t id = 1; id <= 20; ++id) {
    const DownReason reason = id % 2 == 0 ? DownReason::kLeft : DownReason::kDisconnected;
    const auto down = std::make_pair(static_cast<uint8_t>(HostEventType::kDown), static_cast<uint8_t>(reason));
    EXPECT_EQ(seen[id], (std::vector{up, down})) << "host " << id;
  }
  EXPECT_EQ(seen[50], (std::vector{up}));
  engine.stop();  // closes `kept` from this side: no down for host 50
  EventRecord last{};
  EXPECT_EQ(engine.drain_events(&last, 1), 0u);
  close(kept);
}

TEST(TcpEngine, DeadlinesCloseSilentStalledAndIdleConnectionsByReason) {
  EngineConfig c = config();
  c.tcp.handshake_timeout_ms = 200;
  c.tcp.frame_timeout_ms = 300;
  c.tcp.idle_timeout_ms = 400;
  Engine engine(c, [] {});
  engine.start();
  const int silent = connect_to(engine.tcp_port());
  const int stalled = connect_to(engine.tcp_port());
  const int idle = connect_to(engine.tcp_port());
  send_all(stalled, {0x48, 0x57, 1});  // half a header, then nothing
  send_all(idle, frame(7));
  EXPECT_TRUE(closed_by_server(silent, std::chrono::seconds(5)));
  EXPECT_TRUE(closed_by_server(stalled, std::chrono::seconds(5)));
  EXPECT_TRUE(closed_by_server(idle, std::chrono::seconds(5)));
  EXPECT_EQ(reactor_total(engine, TcpReactorCounter::kHandshakeTimeouts), 2u);  // silent, stalled
  EXPECT_EQ(reactor_total(engine, TcpReactorCounter::kIdleTimeouts), 1u);
  close(silent);
  close(stalled);
  close(idle);
  engine.stop();
}

TEST(TcpEngine, SlowFrameAfterTheFirstIsClosedAsSlow) {
  EngineConfig c = config();
  c.tcp.frame_timeout_ms = 200;
  c.tcp.idle_timeout_ms = 5000;
  Engine engine(c, [] {});
  engine.start();
  const int fd = connect_to(engine.tcp_port());
  send_all(fd, frame(8));
  send_all(fd, {0x48});  // a second frame begins, and stalls
  EXPECT_TRUE(closed_by_server(fd, std::chrono::seconds(5)));
  EXPECT_EQ(reactor_total(engine, TcpReactorCounter::kSlowFrames), 1u);
  close(fd);
  engine.stop();
}

TEST(TcpEngine, MaxConnectionsAndPerIpCapsRefuseAndCount) {
  EngineConfig c = config();
  c.tcp.max_connections = 5;
  Engine engine(c, [] {});
  engine.start();
  std::vector<int> fds;
  for (int i = 0; i < 8; ++i) fds.push_back(connect_to(engine.tcp_port()));
  ASSERT_TRUE(wait_for([&] {
    return acceptor(engine, TcpAcceptorCounter::kRefusedMaxConnections) == 3;
  }, std::chrono::seconds(5)));
  EXPECT_EQ(acceptor(engine, TcpAcceptorCounter::kAccepted), 5u);
  for (int i = 5; i < 8; ++i) EXPECT_TRUE(closed_by_server(fds[i], std::chrono::seconds(2)));
  // Closing one frees a place.
  close(fds[0]);
  ASSERT_TRUE(wait_for([&] { return reactor_total(engine, TcpReactorCounter::kClosedByPeer) == 1; },
                       std::chrono::seconds(5)));
  const int again = connect_to(engine.tcp_port());
  ASSERT_TRUE(wait_for([&] { return acceptor(engine, TcpAcceptorCounter::kAccepted) == 6; },
                       std::chrono::seconds(5)));
  for (int i = 1; i < 8; ++i) close(fds[i]);
  close(again);
  engine.stop();

  c.tcp.max_connections = 100;
  c.tcp.max_connections_per_ip = 2;
  Engine per_ip(c, [] {});
  per_ip.start();
  std::vector<int> more;
  for (int i = 0; i < 4; ++i) more.push_back(connect_to(per_ip.tcp_port()));
  ASSERT_TRUE(wait_for([&] { return acceptor(per_ip, TcpAcceptorCounter::kRefusedPerIp) == 2; },
                       std::chrono::seconds(5)));
  for (int fd : more) close(fd);
  per_ip.stop();
}

TEST(TcpEngine, AThousandSilentConnectionsAreHeldThenReaped) {
  EngineConfig c = config();
  c.tcp.max_connections = 2000;
  c.tcp.handshake_timeout_ms = 500;
  Engine engine(c, [] {});
  engine.start();
  std::vector<int> fds;
  for (int i = 0; i < 1000; ++i) fds.push_back(connect_to(engine.tcp_port()));
  ASSERT_TRUE(wait_for([&] { return acceptor(engine, TcpAcceptorCounter::kAccepted) == 1000; },
                       std::chrono::seconds(10)));
  ASSERT_TRUE(wait_for([&] { return reactor_total(engine, TcpReactorCounter::kHandshakeTimeouts) == 1000; },
                       std::chrono::seconds(10)));
  for (int fd : fds) close(fd);
  engine.stop();
}

// A signed frame: AUTH set, `seq`, and the tag of header and payload under `ring`'s first key.
std::vector<uint8_t> signed_frame(const KeyRing& ring, uint64_t host_id, uint32_t seq, uint16_t payload_len = 0) {
  std::vector<uint8_t> d = frame(host_id, payload_len);
  d[3] = kHeartbeatFlagAuth;
  for (int i = 0; i < 4; ++i) d[16 + i] = static_cast<uint8_t>(seq >> (24 - 8 * i));
  d.resize(d.size() + kAuthTagBytes);
  ring.sign(d.data(), d.size() - kAuthTagBytes, d.data() + d.size() - kAuthTagBytes);
  return d;
}

const AuthKey kKey(32, 0x11);
const AuthKey kOtherKey(32, 0x22);

EngineConfig signed_config() {
  EngineConfig c = config();
  c.auth_keys = {kKey};
  c.auth_required = true;
  c.tcp.reactors = 1;
  return c;
}

void send_bytewise(int fd, const std::vector<uint8_t>& bytes) {
  for (uint8_t byte : bytes) {
    send_all(fd, {byte});
    std::this_thread::sleep_for(std::chrono::microseconds(200));  // most bytes get reads of their own
  }
}

TEST(TcpAuth, SignedFramesAreVerifiedWholeOrSplitAndOthersDroppedAndCounted) {
  Engine engine(signed_config(), [] {});
  engine.start();
  const KeyRing ring({kKey});
  const KeyRing other({kOtherKey});
  const int fd = connect_to(engine.tcp_port());
  send_all(fd, signed_frame(ring, 1, 1, 40));           // in one read: verified in place
  send_bytewise(fd, signed_frame(ring, 2, 1, 300));     // split at every byte
  send_bytewise(fd, signed_frame(other, 3, 1, 10));     // split, wrong key
  auto flipped = signed_frame(ring, 4, 1, 500);
  flipped[100] ^= 1;
  send_all(fd, std::vector<uint8_t>(flipped.begin(), flipped.begin() + 200));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  send_all(fd, std::vector<uint8_t>(flipped.begin() + 200, flipped.end()));  // split, altered
  send_all(fd, frame(5));                                  // unsigned under required
  std::map<uint64_t, std::vector<uint8_t>> seen;
  ASSERT_TRUE(wait_for([&] {
    for (auto& [key, list] : drain(engine)) seen[key].insert(seen[key].end(), list.begin(), list.end());
    return reactor_total(engine, TcpReactorCounter::kFrames) == 5 && seen.size() == 2;
  }, std::chrono::seconds(10)));
  EXPECT_EQ(seen.count(1), 1u);
  EXPECT_EQ(seen.count(2), 1u);
  EXPECT_EQ(reactor_total(engine, TcpReactorCounter::kAuthFailed), 2u);
  EXPECT_EQ(reactor_total(engine, TcpReactorCounter::kUnauthenticated), 1u);
  EXPECT_EQ(reactor_total(engine, TcpReactorCounter::kAuthUnsupported), 0u);
  EXPECT_EQ(reactor_total(engine, TcpReactorCounter::kProtocolErrors), 0u);
  close(fd);
  engine.stop();
}

TEST(TcpAuth, AReplayedSignedFrameDoesNotBringADownHostBack) {
  Engine engine(signed_config(), [] {});
  engine.start();
  const KeyRing ring({kKey});
  const int fd = connect_to(engine.tcp_port());
  const auto beat = signed_frame(ring, 9, 5);
  send_all(fd, beat);
  std::vector<uint8_t> types;
  ASSERT_TRUE(wait_for([&] {
    for (auto& [key, list] : drain(engine)) types.insert(types.end(), list.begin(), list.end());
    return types.size() == 2;  // up, then down after 300 ms
  }, std::chrono::seconds(10)));
  EXPECT_EQ(types[1], static_cast<uint8_t>(HostEventType::kDown));
  send_all(fd, beat);
  ASSERT_TRUE(wait_for([&] {
    uint64_t replayed = 0;
    for (uint32_t w = 0; w < 2; ++w) {
      replayed += EngineStats::get(engine.stats().worker(w), static_cast<uint32_t>(WorkerCounter::kReplayed));
    }
    return replayed == 1;
  }, std::chrono::seconds(5)));
  EXPECT_TRUE(drain(engine).empty());
  close(fd);
  engine.stop();
}

TEST(TcpAuth, KeysRotateOverALiveConnection) {
  Engine engine(signed_config(), [] {});
  engine.start();
  const KeyRing other({kOtherKey});
  const int fd = connect_to(engine.tcp_port());
  send_all(fd, signed_frame(other, 1, 1));
  ASSERT_TRUE(wait_for([&] { return reactor_total(engine, TcpReactorCounter::kAuthFailed) == 1; },
                       std::chrono::seconds(5)));
  // Every frame sent after set_keys() returns is checked with the new ring: no restart, no reconnect.
  engine.set_keys({kOtherKey, kKey});
  send_all(fd, signed_frame(other, 2, 1));
  std::map<uint64_t, std::vector<uint8_t>> seen;
  ASSERT_TRUE(wait_for([&] {
    for (auto& [key, list] : drain(engine)) seen[key] = list;
    return seen.count(2) == 1;
  }, std::chrono::seconds(5)));
  engine.set_keys({kKey});
  send_all(fd, signed_frame(other, 3, 1));
  ASSERT_TRUE(wait_for([&] { return reactor_total(engine, TcpReactorCounter::kAuthFailed) == 2; },
                       std::chrono::seconds(5)));
  EXPECT_EQ(seen.count(3), 0u);
  close(fd);
  engine.stop();
}

TEST(TcpAuth, HalfSentSignedFramesCannotTakeMoreThanTheSlotBound) {
  EngineConfig c = signed_config();
  c.tcp.max_connections = 400;
  c.tcp.handshake_timeout_ms = 60'000;
  c.tcp.frame_timeout_ms = 60'000;
  Engine engine(c, [] {});
  engine.start();
  const KeyRing ring({kKey});
  const auto big = signed_frame(ring, 1, 1, 60'000);
  const std::vector<uint8_t> half(big.begin(), big.begin() + 1000);
  std::vector<int> fds;
  for (int i = 0; i < 300; ++i) {
    fds.push_back(connect_to(engine.tcp_port()));
    send_all(fds.back(), half);
  }
  // 256 slots per reactor: the 44 connections past them are closed and counted.
  ASSERT_TRUE(wait_for([&] { return reactor_total(engine, TcpReactorCounter::kAuthSlotsFull) == 44; },
                       std::chrono::seconds(10)));
  // Exactly those: the others still hold their slots (the deadlines are far off).
  auto closed_now = [](int fd) {
    uint8_t byte;
    const ssize_t got = recv(fd, &byte, 1, MSG_DONTWAIT);
    return got == 0 || (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
  };
  int closed = 0;
  ASSERT_TRUE(wait_for([&] {
    closed = 0;
    for (int fd : fds) closed += closed_now(fd) ? 1 : 0;
    return closed >= 44;
  }, std::chrono::seconds(5)));
  EXPECT_EQ(closed, 44);
  // A frame that fits one read needs no slot: still verified and applied.
  const int fresh = connect_to(engine.tcp_port());
  send_all(fresh, signed_frame(ring, 2, 1));
  std::map<uint64_t, std::vector<uint8_t>> seen;
  ASSERT_TRUE(wait_for([&] {
    for (auto& [key, list] : drain(engine)) seen[key] = list;
    return seen.count(2) == 1;
  }, std::chrono::seconds(5)));
  for (int fd : fds) close(fd);
  close(fresh);
  engine.stop();
}

// Statuses over TCP (issue 12): a status wholly inside one read is passed on from the read
// buffer; one that spans reads is gathered in one of the reactor's bounded status slots.
std::vector<uint8_t> status_frame(uint64_t host_id, const std::string& status) {
  std::vector<uint8_t> d = frame(host_id, static_cast<uint16_t>(status.size()));
  std::copy(status.begin(), status.end(), d.begin() + 28);
  return d;
}

// A status unique to `host_id`, `size` bytes long.
std::string status_of(uint64_t host_id, size_t size) {
  std::string s = "host " + std::to_string(host_id) + ":";
  while (s.size() < size) s.push_back(static_cast<char>('a' + (s.size() * 7 + host_id) % 26));
  s.resize(size);
  return s;
}

EngineConfig status_config() {
  EngineConfig c = config();
  c.detector.timeout_ms = 60'000;  // no down while a test runs
  c.detector.max_status_bytes = 1024;
  c.detector.status_budget_bytes = 4u << 20;
  c.tcp.reactors = 1;  // one pool: the bound below is exact
  c.tcp.max_connections = 600;
  c.tcp.handshake_timeout_ms = 60'000;
  c.tcp.frame_timeout_ms = 60'000;
  return c;
}

// Each host's up event and its status, drained as lib/engine/native-engine.ts does (the bytes
// copied out of the worker's ring before the next drain frees them).
struct UpStatuses {
  std::map<uint64_t, std::string> by_host;
  void drain(Engine& engine) {
    std::vector<EventRecord> batch(256);
    engine.begin_drain();
    size_t n;
    while ((n = engine.drain_events(batch.data(), batch.size())) > 0) {
      for (size_t i = 0; i < n; ++i) {
        const EventRecord& r = batch[i];
        ASSERT_EQ(r.type, static_cast<uint8_t>(HostEventType::kUp));
        const ByteRing& ring = *engine.worker(r.worker).event_status_bytes();
        const char* run = reinterpret_cast<const char*>(ring.run(r.status_end, r.status_size));
        ASSERT_EQ(by_host.count(r.key), 0u) << r.key;
        by_host[r.key].assign(run, r.status_size);
      }
    }
  }
  // Drains until `hosts` are up, or 10 s.
  bool wait(Engine& engine, size_t hosts) {
    return wait_for([&] {
      drain(engine);
      return by_host.size() >= hosts;
    }, std::chrono::seconds(10));
  }
};

TEST(TcpStatus, AStatusSplitAtEveryByteBoundaryArrivesExact) {
  Engine engine(status_config(), [] {});
  engine.start();
  const int fd = connect_to(engine.tcp_port());
  // Host k's frame is cut after its k-th byte: inside the header, at the payload's first byte,
  // inside the payload, at its last byte. The longest status fits max_status_bytes exactly.
  constexpr size_t kStatusBytes = 40;
  const size_t frame_bytes = 28 + kStatusBytes;
  for (uint64_t k = 1; k < frame_bytes; ++k) {
    const auto bytes = status_frame(k, status_of(k, kStatusBytes));
    send_all(fd, std::vector<uint8_t>(bytes.begin(), bytes.begin() + static_cast<long>(k)));
    std::this_thread::sleep_for(std::chrono::milliseconds(2));  // most cuts get reads of their own
    send_all(fd, std::vector<uint8_t>(bytes.begin() + static_cast<long>(k), bytes.end()));
  }
  const uint64_t longest = frame_bytes;
  send_bytewise(fd, status_frame(longest, status_of(longest, 1024)));
  UpStatuses seen;  // keys are host ids (identity "id")
  ASSERT_TRUE(seen.wait(engine, frame_bytes));
  for (uint64_t k = 1; k < frame_bytes; ++k) EXPECT_EQ(seen.by_host[k], status_of(k, kStatusBytes)) << k;
  EXPECT_EQ(seen.by_host[longest], status_of(longest, 1024));
  EXPECT_EQ(reactor_total(engine, TcpReactorCounter::kStatusSlotsFull), 0u);
  EXPECT_EQ(reactor_total(engine, TcpReactorCounter::kProtocolErrors), 0u);
  close(fd);
  engine.stop();
}

TEST(TcpStatus, ASignedStatusSentBytewiseArrivesExact) {
  EngineConfig c = status_config();
  c.auth_keys = {kKey};
  c.auth_required = true;
  Engine engine(c, [] {});
  engine.start();
  const KeyRing ring({kKey});
  const int fd = connect_to(engine.tcp_port());
  std::vector<uint8_t> signed_status = status_frame(7, status_of(7, 300));
  signed_status[3] = kHeartbeatFlagAuth;
  signed_status[19] = 1;  // seq 1
  signed_status.resize(signed_status.size() + kAuthTagBytes);
  ring.sign(signed_status.data(), signed_status.size() - kAuthTagBytes,
            signed_status.data() + signed_status.size() - kAuthTagBytes);
  send_bytewise(fd, signed_status);
  UpStatuses seen;
  ASSERT_TRUE(seen.wait(engine, 1));
  EXPECT_EQ(seen.by_host[7], status_of(7, 300));
  EXPECT_EQ(reactor_total(engine, TcpReactorCounter::kAuthFailed), 0u);
  close(fd);
  engine.stop();
}

// Opens `count` connections, each sending the first half of host (first + i)'s frame with a
// 1000-byte status: one pool slot each while the frame is in flight.
std::vector<int> half_send(Engine& engine, uint64_t first, int count) {
  std::vector<int> fds;
  for (int i = 0; i < count; ++i) {
    const auto bytes = status_frame(first + i, status_of(first + i, 1000));
    fds.push_back(connect_to(engine.tcp_port()));
    send_all(fds.back(), std::vector<uint8_t>(bytes.begin(), bytes.begin() + 500));
  }
  return fds;
}

void send_rest(const std::vector<int>& fds, uint64_t first) {
  for (size_t i = 0; i < fds.size(); ++i) {
    const auto bytes = status_frame(first + i, status_of(first + i, 1000));
    send_all(fds[i], std::vector<uint8_t>(bytes.begin() + 500, bytes.end()));
  }
}

TEST(TcpStatus, StatusesBeyondThePoolAreRefusedAndCountedWithTheirBeatsKept) {
  Engine engine(status_config(), [] {});
  engine.start();
  constexpr int kSlots = StatusSlotPool::kSlots;
  // kSlots + 44 statuses in flight at once: 44 find no slot.
  std::vector<int> a = half_send(engine, 1000, kSlots + 44);
  ASSERT_TRUE(wait_for([&] { return reactor_total(engine, TcpReactorCounter::kStatusSlotsFull) == 44; },
                       std::chrono::seconds(10)));
  send_rest(a, 1000);
  UpStatuses seen;
  ASSERT_TRUE(seen.wait(engine, kSlots + 44));
  int exact = 0;
  int without = 0;
  for (int i = 0; i < kSlots + 44; ++i) {
    const std::string& status = seen.by_host[1000 + i];
    exact += status == status_of(1000 + i, 1000) ? 1 : 0;
    without += status.empty() ? 1 : 0;
  }
  EXPECT_EQ(exact, kSlots);
  EXPECT_EQ(without, 44);  // every beat counted: the refused ones are up without a status
  EXPECT_EQ(reactor_total(engine, TcpReactorCounter::kStatusSlotsFull), 44u);
  EXPECT_EQ(reactor_total(engine, TcpReactorCounter::kProtocolErrors), 0u);
  for (int fd : a) close(fd);
  ASSERT_TRUE(wait_for([&] { return reactor_total(engine, TcpReactorCounter::kClosedByPeer) == kSlots + 44u; },
                       std::chrono::seconds(10)));

  // Peers that close mid-status give their slots back: kSlots more in flight are all kept.
  std::vector<int> b = half_send(engine, 2000, kSlots);
  for (int fd : b) close(fd);
  ASSERT_TRUE(wait_for([&] { return reactor_total(engine, TcpReactorCounter::kClosedByPeer) == 2u * kSlots + 44; },
                       std::chrono::seconds(10)));
  std::vector<int> c = half_send(engine, 3000, kSlots);
  send_rest(c, 3000);
  UpStatuses more;
  ASSERT_TRUE(more.wait(engine, kSlots));
  for (int i = 0; i < kSlots; ++i) EXPECT_EQ(more.by_host[3000 + i], status_of(3000 + i, 1000)) << i;
  EXPECT_EQ(reactor_total(engine, TcpReactorCounter::kStatusSlotsFull), 44u);
  for (int fd : c) close(fd);
  engine.stop();
}

}  // namespace
}  // namespace heartwatch
