// The `contract` export: every number lib/ needs to read the engine's shared memory and to
// configure it, taken from the core's own definitions (sizeof, offsetof, enum values, limits),
// so the TypeScript side types none of them by hand. lib/native/contract.ts reads it and checks
// at load that the values it also holds for the pure-TS engine (protocol constants, the longest
// timeout) are the same.
//
//   contract.eventRecord   size and field offsets of EventRecord (core/engine/event_record.h)
//   contract.hostSnapshotRecord  size and field offsets of HostSnapshotRecord (core/engine/shard_message.h)
//   contract.counters      slots per CounterLine and each counter's slot, by name (engine_stats.h)
//   contract.eventType, downReason, hostSnapshotState, family, identity, expiry, command   enum values
//   contract.limits        the engine's limits (engine_config.h, detector.h)
//   contract.protocol      wire protocol v1 constants (core/protocol/heartbeat_parser.h)
//   contract.auth          key ring and allow-list limits (core/auth/)
//   contract.simulator     the fleet simulator's limits (sim/fleet_simulator.h)
//
// Adding a counter or a record field: its line in the core header, one line in contract.cc
// (a static_assert there checks that counters keep distinct slots inside the line), and its
// name in lib/native/contract.ts, which checks at load that both lists are the same.
#pragma once

#include <napi.h>

namespace heartwatch::addon {

// Builds the frozen `contract` object.
// Runs on: JS thread (once per environment, from Init).
Napi::Object Contract(Napi::Env env);

}  // namespace heartwatch::addon
