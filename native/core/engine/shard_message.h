// What a receiver hands a worker: one parsed, keyed heartbeat or leave, copied into an SPSC ring.
#pragma once

#include <cstdint>
#include <type_traits>

#include "core/detector/detector.h"
#include "core/protocol/heartbeat_parser.h"

namespace heartwatch {

struct ShardMessage {
  Heartbeat heartbeat;
  bool leave;
};
static_assert(std::is_trivially_copyable_v<ShardMessage>);

// The worker that owns a key: multiply-shift maps the hash's high half onto [0, workers)
// without a division.
inline uint32_t shard_of(uint64_t key, uint32_t workers) noexcept {
  return static_cast<uint32_t>(((shard_hash(key) >> 32) * workers) >> 32);
}

// A request from the JS thread to one worker, and the worker's answer.
enum class CommandKind : uint8_t { kRemove = 1, kSnapshot = 2 };

struct WorkerCommand {
  uint64_t request_id;
  uint64_t key;
  CommandKind kind;
};

struct CommandResult {
  uint64_t request_id;
  uint64_t value;  // remove: 1 if the host was tracked; snapshot: number of records
  uint32_t worker;
};

// One tracked host as hw.hosts() reports it; decoded by lib/engine/native-engine.ts at the
// offsets the addon exports as `contract.hostSnapshotRecord`.
// | 0 key u64 | 8 last_seen f64 epoch ms | 16 incarnation u32 | 20 timeout_ms u32 |
// | 24 state u8 (HostSnapshotState) | 25 family u8 | 26 port u16 | 28 ip[16] | 44 zero u32 |
enum class HostSnapshotState : uint8_t { kUp = 1, kDown = 2 };

struct HostSnapshotRecord {
  uint64_t key;
  double last_seen_epoch_ms;
  uint32_t incarnation;
  uint32_t timeout_ms;
  uint8_t state;
  uint8_t family;
  uint16_t port;
  uint8_t ip[16];
  uint32_t zero;
};
static_assert(sizeof(HostSnapshotRecord) == 48);
static_assert(std::is_trivially_copyable_v<HostSnapshotRecord>);

}  // namespace heartwatch
