// What a receiver hands a worker: one parsed, keyed heartbeat or leave, copied into an SPSC ring.
#pragma once

#include <cstdint>
#include <type_traits>

#include "core/detector/detector.h"
#include "core/protocol/heartbeat_parser.h"

namespace heartwatch {

// The status (payload) of a heartbeat rides beside it: its bytes in the (producer, worker)
// ByteRing, ending at status_end, and only their size here, so a beat without one costs nothing
// more (StatusCarrier, status_carrier.h).
enum ShardMessageStatus : uint8_t {
  kStatusCarried = 1 << 0,  // status_size bytes end at status_end in the producer's ByteRing
  kStatusLost = 1 << 1,     // the beat had a status the producer could not pass on (counted)
};

// What a message tells the worker. kClosed (TCP, tcp.closeMeansDown): the connection that
// carried `heartbeat.key` closed without a LEAVE; `heartbeat.address` is its peer and
// `heartbeat.authenticated` whether its last frame was (TcpReactor::close_connection). Pushed on
// the same ring as the connection's frames, so the worker applies it after every one of them.
enum class MessageKind : uint8_t { kBeat = 0, kLeave = 1, kClosed = 2 };

struct ShardMessage {
  Heartbeat heartbeat;
  MessageKind kind;
  uint8_t status_flags;  // ShardMessageStatus bits
  uint16_t status_size;  // the payload's size; without kStatusCarried, larger than the limit
  uint32_t status_end;
};
static_assert(std::is_trivially_copyable_v<ShardMessage>);
// `kind` alone would round the message up to the same size: the status fields fill padding.
static_assert(sizeof(ShardMessage) == sizeof(Heartbeat) + alignof(Heartbeat),
              "statuses ride in the padding: a plain beat costs no more");

// The worker that owns a key: multiply-shift maps the hash's high half onto [0, workers)
// without a division. One worker owns every key, and is told so without the hash.
inline uint32_t shard_of(uint64_t key, uint32_t workers) noexcept {
  if (workers == 1) return 0;
  return static_cast<uint32_t>(((shard_hash(key) >> 32) * workers) >> 32);
}

// A request from the JS thread to one worker, and the worker's answer.
// kSnapshot: every host of the worker; kHost: the host `key` alone, answered by its owner. Both
// leave their records for take_snapshot(), with the hosts' statuses when `with_statuses`.
enum class CommandKind : uint8_t { kRemove = 1, kSnapshot = 2, kHost = 3 };

struct WorkerCommand {
  uint64_t request_id;
  uint64_t key;
  CommandKind kind;
  bool with_statuses;
};

struct CommandResult {
  uint64_t request_id;
  uint64_t value;  // remove, host: 1 if the host was tracked; snapshot: number of records
  uint32_t worker;
};

// One tracked host as hw.hosts() reports it; decoded by lib/engine/native-engine.ts at the
// offsets the addon exports as `contract.hostSnapshotRecord`.
// | 0 key u64 | 8 last_seen f64 epoch ms | 16 incarnation u32 | 20 timeout_ms u32 |
// | 24 state u8 (HostSnapshotState) | 25 family u8 | 26 port u16 | 28 ip[16] |
// | 44 status_size u32 |
// With statuses asked for, the records' status bytes follow one another, in record order, in
// a second buffer (ShardWorker::take_snapshot_statuses); otherwise status_size is 0.
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
  uint32_t status_size;
};
static_assert(sizeof(HostSnapshotRecord) == 48);
static_assert(std::is_trivially_copyable_v<HostSnapshotRecord>);

}  // namespace heartwatch
