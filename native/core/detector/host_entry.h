// The per-host record (entry) of a detector: 32 bytes, so two share a cache line and none straddles one.
//
// Layout (see docs/detector.md for the memory budget):
//   key           8  host key; the table stores only indices, the key is checked here
//   last_seen     4  low 32 bits of the monotonic ms clock at the last heartbeat or leave
//   incarnation   4
//   addr          4  IPv4 bytes (network order) or, for IPv6, an index into the side pool
//   timeout:24    3  this host's timeout in ms (announced interval x missed beats)
//   flags:8       1  kUp, kLeft, kLinked, kLive, kDeferred and the address family
//                    (addr, timeout and flags: one 8-byte word, see addr_timeout_flags())
//   prev:24,      8  intrusive links of the expiry index list the host is on, and the port
//   next:24,
//   port:16
// 24-bit indices bound one detector (one shard) to kMaxRecords records; 10M hosts fit.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace heartwatch {

inline constexpr uint32_t kIndexBits = 24;
inline constexpr uint32_t kMaxRecords = (1u << kIndexBits) - 1;
inline constexpr uint32_t kNoIndex = 0;  // index 0 is never handed out
inline constexpr uint32_t kMaxTimeoutMs = (1u << 24) - 1;  // 4 h 39 min

struct HostEntry {
  enum Flag : uint8_t {
    kUp = 1 << 0,      // else down
    kLeft = 1 << 1,    // down by leave or disconnect, since last_seen (else by timeout)
    kLinked = 1 << 2,  // on an expiry index list
    kLive = 1 << 3,    // a host (free records and list sentinels lack it)
    kFamilyV4 = 1 << 4,
    kFamilyV6 = 1 << 5,
    kDeferred = 1 << 6,  // up, its deadline fell in a lossy window: given one more timeout
    kStatus = 1 << 7,  // has a status in the detector's StatusStore
  };

  uint64_t key;
  uint32_t last_seen;
  uint32_t incarnation;
  uint32_t addr;
  uint32_t timeout_ms : 24;
  uint32_t flags : 8;
  uint64_t prev : 24;
  uint64_t next : 24;
  uint64_t port : 16;

  // addr, timeout_ms and flags as the one 64-bit word they share: addr in the low half, the
  // timeout above it, the flags in the top byte. A heartbeat that changes nothing is recognised
  // by comparing this word with the one it would store (Detector's quiet beat), one compare
  // where three fields took three loads, masks and compares.
  static constexpr uint64_t pack_addr_timeout_flags(uint32_t addr, uint32_t timeout, uint32_t flags) {
    return uint64_t{addr} | uint64_t{timeout} << 32 | uint64_t{flags} << 56;
  }
  uint64_t addr_timeout_flags() const {
    uint64_t word;
    std::memcpy(&word, reinterpret_cast<const unsigned char*>(this) + offsetof(HostEntry, addr), sizeof word);
    return word;
  }

  bool has(Flag f) const { return (flags & f) != 0; }
  void set(Flag f) { flags = flags | f; }
  void clear(Flag f) { flags = flags & ~static_cast<uint32_t>(f); }
};

static_assert(sizeof(HostEntry) == 32);
static_assert(alignof(HostEntry) == 8);
// addr_timeout_flags() reads an aligned word; that the bit-fields fill it as
// pack_addr_timeout_flags() builds it (their order is the compiler's) is checked by
// detector_test (HostEntry.AddrTimeoutAndFlagsShareOneWord).
static_assert(offsetof(HostEntry, addr) % 8 == 0);

}  // namespace heartwatch
