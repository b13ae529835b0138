// The engine's only clock: CLOCK_MONOTONIC in milliseconds. Senders' clocks are never used.
// Readings round down; the detector adds a one-millisecond guard to every timeout, so a host is
// never declared down before a full timeout has passed in real time.
#pragma once

#include <time.h>

#include <cstdint>

namespace heartwatch {

// All of these run on: any thread (vDSO reads, no syscall).

inline uint64_t monotonic_ns() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
}

// The last whole millisecond that has fully passed.
inline uint64_t monotonic_ms_floor() noexcept { return monotonic_ns() / 1'000'000u; }

// Milliseconds to add to a monotonic reading to get Unix epoch milliseconds, measured now.
inline double monotonic_to_epoch_offset_ms() noexcept {
  timespec real;
  clock_gettime(CLOCK_REALTIME, &real);
  const uint64_t mono = monotonic_ns();
  const double real_ms = static_cast<double>(real.tv_sec) * 1e3 + static_cast<double>(real.tv_nsec) / 1e6;
  return real_ms - static_cast<double>(mono) / 1e6;
}

}  // namespace heartwatch
