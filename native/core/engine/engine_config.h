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
};

// How receivers read their sockets: recvmmsg batches, or a multishot io_uring recvmsg into
// provided buffers (core/net/uring_reader.h). Until the io_uring path publishes the receive
// watermark and runs the allow-list and auth checks, kAuto reads with recvmmsg and kIoUring is
// refused (UdpReceiver).
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
