// A host state transition decided by the detector. Fixed size and trivially copyable: the
// pipeline copies batches of these through rings and into JS without per-event work.
#pragma once

#include <cstdint>
#include <type_traits>

#include "core/detector/peer_address.h"

namespace heartwatch {

// kUpdate: the host's status bytes changed (see Detector, "Statuses").
enum class HostEventType : uint8_t { kUp = 1, kDown = 2, kRestart = 3, kUpdate = 4 };
// kDisconnected: the TCP connection that carried the host's latest heartbeat closed without a
// LEAVE, with tcp.closeMeansDown on (Detector::disconnect).
enum class DownReason : uint8_t { kNone = 0, kTimeout = 1, kLeft = 2, kDisconnected = 3 };

struct HostEvent {
  uint64_t key;
  uint64_t at_ms;         // detector's monotonic ms when the transition was decided
  uint64_t last_seen_ms;  // monotonic ms of the last heartbeat (or leave)
  PeerAddress address;
  uint32_t incarnation;           // current (for restart: the new one)
  uint32_t previous_incarnation;  // restart only, else 0
  HostEventType type;
  DownReason reason;  // down only
  bool recovered;     // up only: a down host heard again
  bool uncertain;     // down only: its deadline fell where datagrams were lost, and it stayed
                      // silent one more timeout (ExpiryHorizon)
  // Status bytes (update, and up when the host has a status) at status_offset in the
  // detector's event_bytes(), followed by the previous status (update only; 0 bytes: none).
  uint32_t status_offset;
  uint16_t status_size;
  uint16_t previous_size;
  uint32_t timeout_ms;  // the host's timeout (announced interval x missed beats, or the default)
};

static_assert(std::is_trivially_copyable_v<HostEvent>);
static_assert(std::is_standard_layout_v<HostEvent>);
// The worker copies these into EventRecords (core/engine/event_record.h), which JS decodes.
static_assert(sizeof(HostEvent) == 72);
static_assert(sizeof(PeerAddress) == 20);

}  // namespace heartwatch
