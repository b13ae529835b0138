// The TCP transport end to end on loopback with the engine's real threads: the accept thread,
// reactors, worker rings and detector. Under TSan this checks the accept->reactor hand-off.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <thread>
#include <vector>

#include "core/auth/key_ring.h"
#include "core/engine/engine.h"

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

}  // namespace
}  // namespace heartwatch
