// The fixed-size record a worker publishes for each host event, and the JS thread decodes from a
// shared buffer (lib/engine/native-engine.ts, decodeEventRecords). Little-endian, 64 bytes:
//
// | offset | size | field                                                      |
// |--------|------|------------------------------------------------------------|
// | 0      | 8    | key (u64: host id, or the key derived from the address)     |
// | 8      | 8    | at (f64, Unix epoch ms, when the worker decided)            |
// | 16     | 8    | last_seen (f64, Unix epoch ms of the last heartbeat)        |
// | 24     | 4    | incarnation (u32)                                          |
// | 28     | 4    | previous_incarnation (u32, restart only)                    |
// | 32     | 1    | type: 1 up, 2 down, 3 restart                               |
// | 33     | 1    | reason: 0 none, 1 timeout, 2 left                           |
// | 34     | 1    | recovered (0/1)                                            |
// | 35     | 1    | family: 0 unknown, 4, 6                                    |
// | 36     | 2    | port (u16)                                                 |
// | 38     | 1    | uncertain (0/1, down only)                                 |
// | 39     | 1    | zero                                                       |
// | 40     | 16   | ip (network order; IPv4 in the first 4 bytes)               |
// | 56     | 8    | zero                                                       |
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
  uint8_t zero0;
  uint8_t ip[16];
  uint64_t zero1;

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
    return record;
  }
};
static_assert(sizeof(EventRecord) == 64);
static_assert(std::is_trivially_copyable_v<EventRecord>);
static_assert(offsetof(EventRecord, type) == 32 && offsetof(EventRecord, ip) == 40);
static_assert(offsetof(EventRecord, uncertain) == 38);

}  // namespace heartwatch
