// Everything the engine needs, already validated by lib/options.ts.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/auth/key_ring.h"
#include "core/auth/source_allow_list.h"
#include "core/detector/detector.h"
#include "core/net/tcp_listener.h"
#include "core/protocol/heartbeat_parser.h"

namespace heartwatch {

// The engine's limits. lib/options.ts checks options against them (the addon exports them as
// `contract.limits`), so the engine only ever receives values inside them.
//
// A worker's clock is whole milliseconds rounded down; each timeout gets this guard on top, so
// the longest timeout an option may ask for is the detector's 24-bit maximum less the guard.
inline constexpr uint32_t kWorkerClockGuardMs = 1;
inline constexpr uint32_t kMaxOptionTimeoutMs = kMaxTimeoutMs - kWorkerClockGuardMs;
// Slots per ring (receiver-to-worker and worker-to-JS): powers of two in this range.
inline constexpr uint32_t kMinRingCapacity = 1u << 10, kMaxRingCapacity = 1u << 24;
// Datagrams per recvmmsg call: the kernel takes at most UIO_MAXIOV (1024) messages per call.
inline constexpr uint32_t kMaxBatchSize = 1024;

// The TCP transport (docs/protocol.md, "Over TCP"); off unless `enabled`.
struct TcpConfig {
  bool enabled = false;
  TcpSocketOptions socket;
  uint32_t reactors = 1;
  uint32_t max_connections = 10'000;
  uint32_t max_connections_per_ip = 0;  // 0: no per-IP cap (a NAT may hide thousands of hosts)
  uint32_t handshake_timeout_ms = 10'000;  // first complete frame due within this of accept
  uint32_t idle_timeout_ms = 60'000;       // some frame due within this of the last one
  uint32_t frame_timeout_ms = 10'000;      // a frame's last byte due within this of its first
  // A connection closing without a LEAVE downs the host whose latest heartbeat it carried
  // (reason disconnected; TcpReactor::report_close, Detector::disconnect).
  bool close_means_down = false;
};

// How receivers read their sockets: recvmmsg batches, or a multishot io_uring recvmsg into
// provided buffers (core/net/uring_reader.h); both run one per-datagram path and publish the
// receive watermark (UdpReceiver). kAuto picks per kAutoPrefersIoUring and falls back to recvmmsg
// where io_uring is refused; kIoUring refused fails the engine's construction.
enum class ReceiveBackend : uint8_t { kAuto, kRecvmmsg, kIoUring };

struct EngineConfig {
  std::string host = "::";
  uint16_t port = 7700;
  uint32_t receivers = 1;
  uint32_t workers = 1;
  std::vector<int> cpus;              // thread k (receivers first, then workers) runs on cpus[k % size]; empty: not pinned
  IdentityMode identity = IdentityMode::kId;
  DetectorConfig detector;            // max_hosts is per worker shard here
  uint32_t batch_size = 64;           // datagrams per recvmmsg
  ReceiveBackend receive_backend = ReceiveBackend::kAuto;
  uint32_t recv_buffer_bytes = 8u << 20;
  uint32_t ring_capacity = 1u << 16;  // heartbeats per (receiver, worker) ring
  uint32_t event_ring_capacity = 1u << 16;  // events per worker ring towards JS
  uint32_t expire_budget = 4096;      // detector work per expire() call
  uint32_t max_idle_sleep_ms = 50;    // longest a worker sleeps with nothing due
  bool spin = false;                  // workers busy-poll instead of sleeping
  std::vector<AuthKey> auth_keys;     // the first signs, all verify; empty: no authentication
  bool auth_required = false;         // drop datagrams without a valid tag
  std::vector<AddressPrefix> allow;   // sources accepted; empty: all
  TcpConfig tcp;                      // threads after the workers: accept, then reactors
};

}  // namespace heartwatch
