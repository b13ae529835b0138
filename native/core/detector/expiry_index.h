// The contract both expiry indices (ExpiryFifo, TimingWheel) meet. Detector is written once
// against it and instantiated per index, so a heartbeat costs no virtual call.
//
// Records are armed with an absolute deadline (ms). poll(now, budget, deadline_of, on_due)
// visits what is due at `now` in deadline order and spends at most `budget` units of work
// (one unit per record it takes off a list). deadline_of(i) returns record i's current
// deadline: an index may have armed an earlier one (lazy re-arm) and must then re-arm rather
// than report. on_due(i, deadline) gets a record already taken off the index; it may arm it
// again. Nothing is reported before its deadline.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>

namespace heartwatch {

// Which ordered list a FIFO keeps a record on; deadlines on one lane only grow, which is what
// makes a FIFO exact. The wheel ignores lanes.
enum class ExpiryLane : uint8_t { kAlive = 0, kDownTimeout = 1, kDownLeft = 2 };
inline constexpr uint32_t kExpiryLanes = 3;

template <class T>
concept ExpiryIndex = requires(T& index, const T& cindex, uint32_t i, uint64_t t, ExpiryLane lane,
                               size_t budget) {
  index.insert(i, t, lane, t);  // (record, deadline, lane, now)
  index.remove(i);
  index.rearm(i, t, t, t);  // (record, old deadline, new deadline, now); the record stays on kAlive
  index.extend(i, t, t);    // (record, new deadline, now): rearm() to a deadline known to be later
  { cindex.next_deadline([](uint32_t) { return uint64_t{0}; }) } -> std::same_as<uint64_t>;
  {
    index.poll(t, budget, [](uint32_t) { return uint64_t{0}; }, [](uint32_t, uint64_t) {})
  } -> std::same_as<size_t>;
};

}  // namespace heartwatch
