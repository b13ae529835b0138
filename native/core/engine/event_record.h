// The fixed-size record a worker publishes for each host event, and the JS thread decodes from a
// shared buffer (lib/engine/native-engine.ts, decodeEventRecords, at the offsets the addon exports
// as `contract.eventRecord`). Little-endian, 72 bytes (the last 4 padding):
//
// | offset | size | field                                                      |
// |--------|------|------------------------------------------------------------|
// | 0      | 8    | key (u64: host id, or the key derived from the address)     |
// | 8      | 8    | at (f64, Unix epoch ms, when the worker decided)            |
// | 16     | 8    | last_seen (f64, Unix epoch ms of the last heartbeat)        |
// | 24     | 4    | incarnation (u32)                                          |
// | 28     | 4    | previous_incarnation (u32, restart only)                    |
// | 32     | 1    | type: HostEventType (1 up, 2 down, 3 restart, 4 update)     |
// | 33     | 1    | reason: DownReason (0 none, 1 timeout, 2 left, 3 disconnected) |
// | 34     | 1    | recovered (0/1)                                            |
// | 35     | 1    | family: kFamilyUnknown, kFamilyIpv4, kFamilyIpv6 (0, 4, 6)  |
// | 36     | 2    | port (u16)                                                 |
// | 38     | 1    | uncertain (0/1, down only)                                 |
// | 39     | 1    | worker (u8): whose status byte ring holds the status bytes  |
// | 40     | 16   | ip (network order; IPv4 in the first 4 bytes)               |
// | 56     | 4    | status_end (u32): where the status bytes end in that ring   |
// | 60     | 2    | status_size (u16; 0: no status)                            |
// | 62     | 2    | previous_size (u16, update only; 0: none)                  |
// | 64     | 4    | timeout_ms (u32, down only: the timeout that applied)       |
//
// The status bytes, then the previous status's, run contiguously up to status_end (modulo the
// ring's power-of-two size) in the worker's status byte ring, which the addon shows JS as an
// ArrayBuffer; JS copies them out before the next drain() releases them (ShardWorker).
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "core/detector/host_event.h"

namespace heartwatch {

struct EventRecord {
  uint64_t key;
  double at_epoch_ms;
  double last_seen_epoch_ms;
  uint32_t incarnation;
  uint32_t previous_incarnation;
  uint8_t type;
  uint8_t reason;
  uint8_t recovered;
  uint8_t family;
  uint16_t port;
  uint8_t uncertain;
  uint8_t worker;
  uint8_t ip[16];
  uint32_t status_end;
  uint16_t status_size;
  uint16_t previous_size;
  uint32_t timeout_ms;

  static EventRecord from(const HostEvent& event, double epoch_offset_ms) noexcept {
    EventRecord record{};
    record.key = event.key;
    record.at_epoch_ms = static_cast<double>(event.at_ms) + epoch_offset_ms;
    record.last_seen_epoch_ms = static_cast<double>(event.last_seen_ms) + epoch_offset_ms;
    record.incarnation = event.incarnation;
    record.previous_incarnation = event.previous_incarnation;
    record.type = static_cast<uint8_t>(event.type);
    record.reason = static_cast<uint8_t>(event.reason);
    record.recovered = event.recovered ? 1 : 0;
    record.uncertain = event.uncertain ? 1 : 0;
    record.family = event.address.family;
    record.port = event.address.port;
    std::memcpy(record.ip, event.address.ip, sizeof(record.ip));
    record.status_size = event.status_size;
    record.previous_size = event.previous_size;
    record.timeout_ms = event.timeout_ms;
    return record;
  }
};
static_assert(sizeof(EventRecord) == 72);
static_assert(std::is_trivially_copyable_v<EventRecord>);
static_assert(offsetof(EventRecord, type) == 32 && offsetof(EventRecord, ip) == 40);
static_assert(offsetof(EventRecord, uncertain) == 38 && offsetof(EventRecord, worker) == 39 &&
              offsetof(EventRecord, status_end) == 56 && offsetof(EventRecord, previous_size) == 62 &&
              offsetof(EventRecord, timeout_ms) == 64);

}  // namespace heartwatch
